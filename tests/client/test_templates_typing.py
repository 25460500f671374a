"""The SDK's calls for canned replies, typing and presence, against a real server: the typed
templates over HTTP with the refusals as `ChatError`, and `typing` / `presence` frames coming
through `frames()`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from chatd.client import ChatError, Pushed, connect, mint
from chatd.client.http import HttpApi
from protocol import frames as f
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(60)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_shops_templates_through_the_sdk(shared_server: ServerProcess) -> None:
    shop = uid("shop")
    token = mint(SECRET, role="seller", sub="op", name="Анна", seller=shop)
    async with HttpApi(shared_server.http, token) as api:
        defaults = await api.templates()
        assert "support" in [t.shortcut for t in defaults]
        made = await api.create_template("delivery", "Доставка", "Отправим завтра.")
        assert made in await api.templates()
        changed = await api.update_template(made.id, "ship", "Отправка", "Отправили.")
        assert (changed.id, changed.shortcut) == (made.id, "ship")
        with pytest.raises(ChatError) as taken:
            await api.create_template("ship", "Ещё", "Текст")
        assert (taken.value.code, taken.value.status) == ("conflict", 409)
        with pytest.raises(ChatError) as contacts:
            await api.create_template("tg", "Телеграм", "Пишите в телеграм @shop")
        assert contacts.value.code == "contacts_forbidden"
        assert contacts.value.details is not None and contacts.value.details["spans"]
        await api.delete_template(made.id)
        with pytest.raises(ChatError) as gone:
            await api.delete_template(made.id)
        assert gone.value.code == "not_found"


async def test_typing_and_presence_come_through_frames(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = mint(SECRET, role="buyer", sub=buyer, name="Люда")
    shop_token = mint(SECRET, role="seller", sub="op", name="Анна", seller=shop)
    async with connect(shared_server.url, buyer_token) as lyuda:
        chat = (await lyuda.open(shop)).chat
        await lyuda.history(chat)
        pushed = lyuda.frames()
        async with connect(shared_server.url, shop_token) as anna:
            await anna.history(chat)
            came = await asyncio.wait_for(_next(pushed, f.PresenceChange), 5)
            assert came == f.PresenceChange(chat=chat, side="seller", online=True)
            await anna.typing(chat)
            typed = await asyncio.wait_for(_next(pushed, f.TypingNotice), 5)
            assert typed == f.TypingNotice(chat=chat, side="seller", name="Анна")
            summary = (await lyuda.chats()).chats[0]
            assert summary.online == f.Online(buyer=True, seller=True)


async def _next(frames: AsyncIterator[Pushed], kind: type[Pushed]) -> Pushed:
    async for frame in frames:
        if isinstance(frame, kind):
            return frame
    raise AssertionError(f"no {kind.__name__}")
