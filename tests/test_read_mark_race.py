"""A read mark for an event that is committed but not yet in the service's cache of chat
states. A reconnecting socket's replay reads the log itself, so it can show its client an
event whose command has not yet resumed after the commit; the client marks it read at once.
The mark must be taken, not refused as past the chat's end (`python -m chatd.proof.long_run`
saw one such `bad_frame` in 688 784 read marks, on an overloaded loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.service import ChatService, Outcome
from chatd.store.base import Appended, AppendRequest, Stored
from chatd.store.sqlite import SqliteStore
from protocol.codes import ErrorCode

pytestmark = pytest.mark.timeout(30)

BUYER = Actor(role="buyer", id="buyer-1", name="Анна")
SHOP = Actor(role="seller", id="op-1", name="Олег", shop="shop-1")
CHAT = chat_id("buyer-1", "shop-1")


class HeldAfterCommit:
    """Wraps a store's append: the commit happens, and the command resumes only when let go."""

    def __init__(self, store: SqliteStore) -> None:
        self._append = store.append
        self.committed = asyncio.Event()
        self.release = asyncio.Event()
        store.append = self.append  # type: ignore[method-assign]

    async def append(self, request: AppendRequest) -> Appended:
        appended = await self._append(request)
        self.committed.set()
        await self.release.wait()
        return appended


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "chatd.db", synchronous="normal")
    await store.open()
    yield store
    await store.close()


async def a_message_committed_but_not_cached(
    store: SqliteStore,
) -> tuple[ChatService, HeldAfterCommit, asyncio.Task[Outcome]]:
    service = ChatService(store, LocalHub(), Rules())
    assert not isinstance(await service.open_chat(BUYER, "shop-1", None), Rejection)
    held = HeldAfterCommit(store)
    sending = asyncio.create_task(service.send(BUYER, CHAT, "Где мой заказ?", [], "n-1"))
    await held.committed.wait()
    # What a replay would show: the log holds seq 2 already.
    assert [s.event.seq for s in await store.read_stream(CHAT)] == [1, 2]
    return service, held, sending


async def test_a_read_mark_for_a_committed_event_waits_for_its_command(
    store: SqliteStore,
) -> None:
    service, held, sending = await a_message_committed_but_not_cached(store)
    marking = asyncio.create_task(service.mark_read(SHOP, CHAT, 2))
    await asyncio.sleep(0.05)
    assert not marking.done(), "the mark is answered only once the command is done"
    held.release.set()
    assert await marking is None
    assert not isinstance(await sending, Rejection)
    assert (await store.read_marks(CHAT)).get("seller") == 2


async def test_a_read_mark_past_the_log_is_refused_even_while_the_chat_is_busy(
    store: SqliteStore,
) -> None:
    service, held, sending = await a_message_committed_but_not_cached(store)
    marking = asyncio.create_task(service.mark_read(SHOP, CHAT, 3))
    await asyncio.sleep(0.05)
    held.release.set()
    refused = await marking
    assert isinstance(refused, Rejection) and refused.code is ErrorCode.BAD_FRAME, refused
    assert "past the chat's last event (2)" in refused.message
    assert not isinstance(await sending, Rejection)
    assert (await store.read_marks(CHAT)).get("seller", 0) == 0


async def test_a_state_read_on_a_cache_miss_never_replaces_a_newer_one(store: SqliteStore) -> None:
    """A chat out of the cache (evicted, in a server with more chats than it keeps) is read
    from the log by whoever asks first; a command that read it too, committed and remembered
    its new state meanwhile, must not be undone by the slower read."""
    service = ChatService(store, LocalHub(), Rules())
    assert not isinstance(await service.open_chat(BUYER, "shop-1", None), Rejection)
    service.states.forget(CHAT)
    read_stream = store.read_stream
    first_read, release = asyncio.Event(), asyncio.Event()

    async def first_read_held(chat: str, *args: Any, **kwargs: Any) -> list[Stored]:
        events = await read_stream(chat, *args, **kwargs)
        if not first_read.is_set():
            first_read.set()
            await release.wait()
        return events

    store.read_stream = first_read_held  # type: ignore[method-assign, assignment]
    reading = asyncio.create_task(service.states.get(CHAT))
    await first_read.wait()
    assert not isinstance(await service.send(BUYER, CHAT, "Где мой заказ?", [], None), Rejection)
    release.set()
    state = await reading
    assert state is not None and state.seq == 2
    cached = await service.states.get(CHAT)
    assert cached is not None and cached.seq == 2
    assert await service.mark_read(SHOP, CHAT, 2) is None
