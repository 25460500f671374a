"""The SDK and the operator's day: `assign` and `note` for a shop, `HttpApi.operators`, and a
buyer's client that meets the gaps in `seq` the shop's notes leave (live, and resuming after a
server restart) and takes them as they are: nothing asked again, no reconnect loop."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from chatd.client import ChatError, connect, mint
from chatd.client.connection import Backoff
from chatd.client.http import HttpApi
from protocol import frames as f
from protocol.codes import ErrorCode
from tests.client.test_client import take_events
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(90)

_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].translate(_NO_DIGITS)}"


def buyer_token(buyer: str) -> str:
    return mint(SECRET, role="buyer", sub=buyer, name="Люда")


def operator_token(shop: str, operator: str, name: str) -> str:
    return mint(SECRET, role="seller", sub=operator, name=name, seller=shop)


async def test_a_shop_assigns_and_notes_and_lists_its_operators(
    shared_server: ServerProcess,
) -> None:
    buyer, shop, anna, boris = uid("buyer"), uid("shop"), uid("anna"), uid("boris")
    async with (
        connect(shared_server.url, buyer_token(buyer)) as client,
        connect(shared_server.url, operator_token(shop, anna, "Анна")) as operator,
        connect(shared_server.url, operator_token(shop, boris, "Борис")),
    ):
        chat = (await client.open(shop)).chat
        given = await operator.assign(chat, boris)
        noted = await operator.note(chat, "Перезвонить покупательнице", nonce="n-1")
        again = await operator.note(chat, "Перезвонить покупательнице", nonce="n-1")
        assert (given.seq, noted.seq, again.seq) == (2, 3, 3)
        events = await take_events(operator, 3, chat)
        assert [e.kind for e in events] == ["chat.opened", "chat.assigned", "note"]
        page = await operator.chats()
        [summary] = [c for c in page.chats if c.chat == chat]
        assert summary.assignee is not None and summary.assignee.name == "Борис"
        [buyers] = [c for c in (await client.chats()).chats if c.chat == chat]
        assert buyers.assignee is msgspec.UNSET
        with pytest.raises(ChatError) as refused:
            await client.note(chat, "Заметка покупателя")
        assert refused.value.code == ErrorCode.FORBIDDEN
        with pytest.raises(ChatError) as unknown:
            await operator.assign(chat, uid("nobody"))
        assert unknown.value.code == ErrorCode.NOT_FOUND
    http = HttpApi(shared_server.http, operator_token(shop, anna, "Анна"))
    async with http:
        names = [o.name for o in await http.operators()]
    assert names == ["Анна", "Борис"]


async def test_a_buyers_client_takes_the_gaps_as_they_are(own_server: ServerProcess) -> None:
    buyer, shop, anna = uid("buyer"), uid("shop"), uid("anna")
    fast = Backoff(initial=0.05, maximum=0.2)
    async with (
        connect(own_server.url, buyer_token(buyer), backoff=fast) as client,
        connect(own_server.url, operator_token(shop, anna, "Анна"), backoff=fast) as operator,
    ):
        chat = (await client.open(shop)).chat
        await operator.assign(chat, anna)
        await operator.note(chat, "Первая заметка")
        await operator.send(chat, "Здравствуйте!")
        seen = await take_events(client, 2, chat)
        assert [(e.seq, e.kind) for e in seen] == [(1, "chat.opened"), (4, "message")]
        # A restart while the shop writes notes: the buyer resumes from its cursor.
        own_server.kill()
        await asyncio.to_thread(own_server.start)
        await operator.note(chat, "Заметка после перезапуска")
        await operator.send(chat, "Мы здесь")
        [after] = await take_events(client, 1, chat)
        assert (after.seq, after.kind, after.text) == (6, "message", "Мы здесь")
        await asyncio.sleep(0.5)
        assert client.reconnects == 1, client.close_codes
        history = await client.history(chat)
        assert [e.seq for e in history.events] == [1, 4, 6]
        assert isinstance(history.events[0], f.EventFrame)
