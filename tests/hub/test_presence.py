"""Presence and typing in the hubs (chatd.hub.presence, chatd.hub.redis_presence): who is
online, as one process counts it and as nodes sharing a Redis do; the grace before a party's
last socket leaving counts; a node killed without a word dropping out within its TTL; and
typing notices reaching every node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from chatd.hub.local import LocalHub
from chatd.hub.presence import LocalPresence
from chatd.hub.redis import RedisHub
from chatd.store.postgres import PostgresStore
from protocol.frames import TypingNotice
from tests.backends import (
    PG_DSN,
    REDIS_URL,
    drop_schemas,
    require_postgres,
    require_redis,
    unique_name,
)

pytestmark = pytest.mark.timeout(30)


class Heard:
    """A presence listener that keeps what it is told."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool]] = []

    def __call__(self, party: str, online: bool) -> None:
        self.changes.append((party, online))

    async def wait_for(self, change: tuple[str, bool], timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while change not in self.changes:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{change} never came: {self.changes}")
            await asyncio.sleep(0.01)


# ---- one process -----------------------------------------------------------------------------


async def test_one_process_counts_sockets_and_tells_each_change_once() -> None:
    presence = LocalPresence(grace=0)
    heard = Heard()
    presence.on_change(heard)
    presence.arrived("b:lyuda")
    presence.arrived("b:lyuda")
    presence.arrived("s:shop")
    assert await presence.online(["b:lyuda", "s:shop", "b:timur"]) == {"b:lyuda", "s:shop"}
    presence.left("b:lyuda")
    assert await presence.online(["b:lyuda"]) == {"b:lyuda"}  # one socket is left
    presence.left("b:lyuda")
    assert await presence.online(["b:lyuda"]) == frozenset()
    assert heard.changes == [("b:lyuda", True), ("s:shop", True), ("b:lyuda", False)]


async def test_a_party_back_within_the_grace_never_went_offline() -> None:
    presence = LocalPresence(grace=0.2)
    heard = Heard()
    presence.on_change(heard)
    presence.arrived("b:lyuda")
    presence.left("b:lyuda")
    assert await presence.online(["b:lyuda"]) == {"b:lyuda"}  # within the grace
    presence.arrived("b:lyuda")
    await asyncio.sleep(0.3)
    assert heard.changes == [("b:lyuda", True)]
    presence.left("b:lyuda")
    await heard.wait_for(("b:lyuda", False), 1)
    assert await presence.online(["b:lyuda"]) == frozenset()


async def test_the_local_hub_hands_typing_to_its_listeners() -> None:
    hub = LocalHub()
    got: list[TypingNotice] = []
    hub.on_typing(got.append)
    notice = TypingNotice(chat="c1", side="buyer", name="Люда")
    await hub.typing(notice)
    assert got == [notice]


# ---- nodes sharing a Redis -------------------------------------------------------------------


@pytest.fixture
async def pg_log() -> AsyncIterator[PostgresStore]:
    """A fresh log: a new schema, so also a new presence namespace (named after the log)."""
    await require_postgres()
    await require_redis()
    schema = unique_name()
    store = PostgresStore(PG_DSN, schema_name=schema, pool_size=2)
    await store.open()
    yield store
    await store.close()
    await drop_schemas(schema)


@pytest.fixture
async def start(pg_log: PostgresStore) -> AsyncIterator[object]:
    hubs: list[RedisHub] = []

    async def start_node() -> RedisHub:
        hub = RedisHub(
            REDIS_URL,
            pg_log,
            prefix="chatd-test",
            presence_grace=0,
            presence_ttl=1.0,
            presence_heartbeat=0.2,
        )
        await hub.start()
        await asyncio.wait_for(hub.connected.wait(), 5)
        hubs.append(hub)
        return hub

    yield start_node
    for hub in hubs:
        await hub.stop()


async def kill(hub: RedisHub) -> None:
    """As kill -9 would: the node's loops stop and its connection drops, and nothing is
    removed from Redis nor told to anyone."""
    tasks = [*hub._tasks, *hub._presence._tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    hub._tasks, hub._presence._tasks = [], []
    hub._presence._link = None
    await hub._require().aclose()


async def test_a_party_online_on_one_node_is_online_on_every_node(start: object) -> None:
    a, b = await start(), await start()  # type: ignore[operator]
    heard = Heard()
    b.presence.on_change(heard)
    b.presence.watch("s:shop")
    await asyncio.sleep(0.3)  # b learns the party's state first, and tells nothing of it
    a.presence.arrived("s:shop")
    await heard.wait_for(("s:shop", True))
    assert await b.presence.online(["s:shop", "b:lyuda"]) == {"s:shop"}
    # A second socket elsewhere: no change; its leaving neither.
    b.presence.arrived("s:shop")
    a.presence.left("s:shop")
    await asyncio.sleep(0.3)
    assert heard.changes == [("s:shop", True)]
    b.presence.left("s:shop")
    await heard.wait_for(("s:shop", False))
    # Node a reads b's set, which b writes a moment (its batching) after its own change.
    await asyncio.sleep(0.2)
    assert await a.presence.online(["s:shop"]) == frozenset()


async def test_a_node_tells_only_what_is_watched_there(start: object) -> None:
    a, b = await start(), await start()  # type: ignore[operator]
    heard = Heard()
    b.presence.on_change(heard)
    a.presence.arrived("b:nobody-looks")
    await asyncio.sleep(0.3)
    assert heard.changes == []
    assert await b.presence.online(["b:nobody-looks"]) == {"b:nobody-looks"}


async def test_the_parties_of_a_killed_node_drop_out_within_its_ttl(start: object) -> None:
    a, b = await start(), await start()  # type: ignore[operator]
    heard = Heard()
    b.presence.on_change(heard)
    b.presence.watch("b:lyuda")
    await asyncio.sleep(0.3)
    a.presence.arrived("b:lyuda")
    await heard.wait_for(("b:lyuda", True))
    await kill(a)
    started = time.monotonic()
    # The TTL (1 s) and a heartbeat (0.2 s), with room for a slow machine.
    await heard.wait_for(("b:lyuda", False), 4)
    assert time.monotonic() - started < 3
    assert await b.presence.online(["b:lyuda"]) == frozenset()


async def test_a_stopped_node_leaves_at_once(start: object) -> None:
    a, b = await start(), await start()  # type: ignore[operator]
    heard = Heard()
    b.presence.on_change(heard)
    b.presence.watch("b:lyuda")
    await asyncio.sleep(0.3)
    a.presence.arrived("b:lyuda")
    await heard.wait_for(("b:lyuda", True))
    started = time.monotonic()
    await a.stop()
    await heard.wait_for(("b:lyuda", False), 2)
    assert time.monotonic() - started < 0.9  # before its TTL could have ended it


async def test_typing_reaches_every_nodes_listeners(start: object) -> None:
    a, b = await start(), await start()  # type: ignore[operator]
    on_a: list[TypingNotice] = []
    on_b: list[TypingNotice] = []
    a.on_typing(on_a.append)
    b.on_typing(on_b.append)
    notice = TypingNotice(chat="c1", side="seller", name="Анна")
    await a.typing(notice)
    deadline = time.monotonic() + 5
    while not on_b and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert on_a == on_b == [notice]
