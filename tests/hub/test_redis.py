"""The Redis hub: the hub contract, and what several nodes need (events from any node
reaching every node in order, gaps and lost messages filled from the log, Redis outages)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from chatd.hub.base import EventOut, Hub
from chatd.hub.redis import RedisHub
from chatd.store.base import EventStore
from chatd.store.postgres import PostgresStore
from tests.backends import (
    PG_DSN,
    REDIS_URL,
    drop_schemas,
    require_postgres,
    require_redis,
    unique_name,
)
from tests.hub.contract import QUIET, Chats, HubContract, Inbox, OpenHub, read_out
from tests.hub.proxy import CuttableProxy

POLL = 0.2


@pytest.fixture
async def pg_log() -> AsyncIterator[PostgresStore]:
    """A fresh log: a new schema, so also new Redis channels (named after the log)."""
    await require_postgres()
    await require_redis()
    schema = unique_name()
    store = PostgresStore(PG_DSN, schema_name=schema, pool_size=4)
    await store.open()
    yield store
    await store.close()
    await drop_schemas(schema)


class Nodes:
    """Redis hubs on one log, as on several chatd nodes; stops them all at the end."""

    def __init__(self, log: PostgresStore) -> None:
        self.log = log
        self.hubs: list[RedisHub] = []

    async def start(self, url: str = REDIS_URL, *, connected: bool = True) -> RedisHub:
        hub = RedisHub(url, self.log, prefix="chatd-test", poll_interval=POLL)
        await hub.start()
        self.hubs.append(hub)
        if connected:
            await asyncio.wait_for(hub.connected.wait(), 5)
        return hub

    async def stop_all(self) -> None:
        for hub in self.hubs:
            await hub.stop()


@pytest.fixture
async def nodes(pg_log: PostgresStore) -> AsyncIterator[Nodes]:
    nodes = Nodes(pg_log)
    yield nodes
    await nodes.stop_all()


class TestRedisHub(HubContract):
    @pytest.fixture
    def log(self, pg_log: PostgresStore) -> EventStore:
        return pg_log

    @pytest.fixture
    def open_hub(self, nodes: Nodes) -> OpenHub:
        async def open_hub() -> Hub:
            return await nodes.start()

        return open_hub


# ---- several nodes -----------------------------------------------------------------------


@pytest.fixture
def chats(pg_log: PostgresStore) -> Chats:
    return Chats(pg_log)


async def test_events_published_on_one_node_reach_subscribers_on_every_node(
    nodes: Nodes, chats: Chats
) -> None:
    a, b, c = [await nodes.start() for _ in range(3)]
    on_a, on_b, on_c = Inbox(), Inbox(), Inbox()
    a.subscribe(["b:u1"], on_a)
    b.subscribe(["s:s1"], on_b)
    c.subscribe(["b:u2"], on_c)

    await chats.send(a, "c1", ("b:u1", "s:s1"), 2)
    await chats.send(b, "c1", ("b:u1", "s:s1"))
    await b.publish([read_out("c1", 3)], ("b:u1", "s:s1"))

    await on_a.wait_for(4)
    await on_b.wait_for(4)
    await asyncio.sleep(QUIET)
    assert on_a.places() == on_b.places() == [("c1", 1), ("c1", 2), ("c1", 3)]
    assert [m.seq for m in on_a.marks()] == [m.seq for m in on_b.marks()] == [3]
    assert on_c.items == []


async def test_one_chat_written_from_two_nodes_arrives_in_seq_order_everywhere(
    nodes: Nodes, chats: Chats
) -> None:
    writers = [await nodes.start() for _ in range(2)]
    watcher = await nodes.start()
    inboxes = [Inbox() for _ in range(3)]
    for hub, inbox in zip([*writers, watcher], inboxes, strict=True):
        hub.subscribe(["s:s1"], inbox)

    # Alternate nodes write one chat, each append after the last, as racing operators do;
    # their publishes overtake each other on the way.
    for turn in range(40):
        await chats.send(writers[turn % 2], "c1", ("s:s1",))

    for inbox in inboxes:
        await inbox.wait_for(40)
    await asyncio.sleep(QUIET)
    for inbox in inboxes:
        assert inbox.places() == [("c1", seq) for seq in range(1, 41)]


async def test_a_message_that_overtakes_an_earlier_one_waits_for_it(
    nodes: Nodes, chats: Chats
) -> None:
    a, b, c = [await nodes.start() for _ in range(3)]
    inbox = Inbox()
    c.subscribe(["b:u1"], inbox)
    first = await chats.write("c1", ("b:u1",))
    second = await chats.write("c1", ("b:u1",))

    # The second event's message comes first; the first one's only much later.
    await b.publish([EventOut(s, chats.log.log_id) for s in second], ("b:u1",))
    await inbox.wait_for(2)
    await a.publish([EventOut(s, chats.log.log_id) for s in first], ("b:u1",))

    await asyncio.sleep(QUIET)
    assert inbox.places() == [("c1", 1), ("c1", 2)]


async def test_events_whose_message_never_came_arrive_from_the_log(
    nodes: Nodes, chats: Chats
) -> None:
    """A node killed between its commit and its publish: the others still deliver."""
    a, b = await nodes.start(), await nodes.start()
    on_a, on_b = Inbox(), Inbox()
    a.subscribe(["b:u1"], on_a)
    b.subscribe(["b:u1"], on_b)

    lost = await chats.write("c1", ("b:u1",), 2)

    await on_a.wait_for(2, timeout=5 * POLL + 2)
    await on_b.wait_for(2, timeout=5 * POLL + 2)
    assert on_a.places() == on_b.places() == [("c1", 1), ("c1", 2)]
    assert on_a.positions() == [s.pos for s in lost]


async def test_a_node_cut_off_from_redis_delivers_everything_from_the_log_and_resumes(
    nodes: Nodes, chats: Chats
) -> None:
    parsed = urlsplit(REDIS_URL)
    proxy = CuttableProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    await proxy.start()
    try:
        writer = await nodes.start()
        island = await nodes.start(proxy.url)
        inbox = Inbox()
        island.subscribe(["s:s1"], inbox)
        await chats.send(writer, "c1", ("s:s1",))
        await inbox.wait_for(1)

        await proxy.cut()
        await asyncio.wait_for(wait_until_disconnected(island), 5)
        for _ in range(5):
            await chats.send(writer, "c1", ("s:s1",))
        await chats.send(island, "c2", ("s:s1",))  # its own events never need Redis
        await inbox.wait_for(7, timeout=5 * POLL + 2)

        await proxy.restore()
        await asyncio.wait_for(island.connected.wait(), 10)
        await chats.send(writer, "c1", ("s:s1",))
        await inbox.wait_for(8)
        await asyncio.sleep(QUIET)
    finally:
        await proxy.close()

    assert [seq for stream, seq in inbox.places() if stream == "c1"] == list(range(1, 8))
    assert [seq for stream, seq in inbox.places() if stream == "c2"] == [1]
    assert inbox.positions() == sorted(set(inbox.positions()))


async def test_a_node_starts_and_delivers_its_own_events_while_redis_is_down(
    nodes: Nodes, chats: Chats
) -> None:
    hub = await nodes.start("redis://127.0.0.1:1/0", connected=False)
    inbox = Inbox()
    hub.subscribe(["b:u1"], inbox)

    await chats.send(hub, "c1", ("b:u1",), 3)
    await hub.publish([read_out("c1", 3)], ("b:u1",))

    await inbox.wait_for(4)
    assert inbox.places() == [("c1", 1), ("c1", 2), ("c1", 3)]
    assert not hub.connected.is_set()


async def wait_until_disconnected(hub: RedisHub) -> None:
    while hub.connected.is_set():
        await asyncio.sleep(0.01)
