"""The PostgreSQL store: the shared contract, and what only several writers on one database
need (positions that a feed follower can trust, migrations, the database's own checks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from chatd.store import postgres_schema
from chatd.store.base import Appended, Conflict, EventStore, Stored
from chatd.store.postgres import PostgresStore
from chatd.store.postgres_schema import search_query, search_words
from chatd.store.stats import StoreStats
from tests.backends import PG_DSN, drop_schemas, require_postgres, unique_name
from tests.store.contract import (
    EventLogContract,
    KeyStoreContract,
    OpenStore,
    ReadModelContract,
    WebhookStoreContract,
    plain_request,
)
from tests.store.shop_work_contract import HiddenKindsContract, OperatorStoreContract
from tests.store.templates_contract import TemplateStoreContract


@pytest.fixture
async def schema_prefix() -> AsyncIterator[str]:
    """A prefix for this test's schemas; each schema made with it is dropped afterwards."""
    await require_postgres()
    prefix = unique_name()
    yield prefix
    await drop_schemas(*(f"{prefix}_{n}" for n in ("main", "other")))


class TestPostgresStore(
    EventLogContract,
    ReadModelContract,
    KeyStoreContract,
    WebhookStoreContract,
    HiddenKindsContract,
    OperatorStoreContract,
    TemplateStoreContract,
):
    @pytest.fixture
    def open_store(self, schema_prefix: str) -> OpenStore:
        async def open_store(name: str) -> EventStore:
            store = PostgresStore(PG_DSN, schema_name=f"{schema_prefix}_{name}", pool_size=4)
            await store.open()
            return store

        return open_store


# ---- several writers on one database -----------------------------------------------------


@pytest.fixture
async def schema(schema_prefix: str) -> str:
    return f"{schema_prefix}_main"


class CountingStats(StoreStats):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.batches.append(batch_size)


async def open_node(schema: str, stats: StoreStats | None = None) -> PostgresStore:
    """A store as one chatd node opens it: several of them share the schema."""
    store = PostgresStore(PG_DSN, schema_name=schema, pool_size=4, stats=stats)
    await store.open()
    return store


@pytest.fixture
async def nodes(schema: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first = await open_node(schema)
    second = await open_node(schema)
    yield first, second
    await asyncio.gather(first.close(), second.close())


class Follower:
    """Reads a feed as a reconnecting client does: `after` = the last position it saw."""

    def __init__(self, store: EventStore, keys: list[str]) -> None:
        self.store = store
        self.keys = keys
        self.seen: list[Stored] = []
        self.reads = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            after = self.seen[-1].pos if self.seen else 0
            page = await self.store.read_feed(self.keys, after, 50)
            self.reads += 1
            self.seen.extend(page)
            if stopping and not page:
                return
            if not page:
                await asyncio.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()


async def test_a_feed_follower_misses_nothing_while_two_nodes_write_at_once(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    follower = Follower(first, ["s:shared"])
    following = asyncio.create_task(follower.run())

    async def writer(store: PostgresStore, stream: str, count: int) -> list[Stored]:
        written: list[Stored] = []
        for seq in range(count):
            appended = await store.append(plain_request(stream, seq, keys=("s:shared",)))
            written.extend(appended.events)
        return written

    results = await asyncio.gather(
        *(writer(store, f"{n}-c{w}", 30) for n, store in enumerate(nodes) for w in range(8))
    )
    follower.stop()
    await asyncio.wait_for(following, 10)

    written = sorted((item for result in results for item in result), key=lambda s: s.pos)
    assert len(written) == 2 * 8 * 30
    assert follower.seen == await second.read_feed(["s:shared"], 0, 10_000) == written
    # The follower read while writes were landing, not once at the end.
    assert follower.reads > 20
    # Positions are dense: every one that was handed out was committed.
    assert [item.pos for item in written] == list(range(1, len(written) + 1))


async def test_a_late_commit_holds_back_later_positions_instead_of_being_skipped(
    nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classic gap: A takes position p and commits late, B takes p + 1 and would commit
    first; a follower that moved past p + 1 would never see p. Here B must wait for A."""
    slow, fast = nodes
    follower = Follower(fast, ["b:u1"])
    following = asyncio.create_task(follower.run())
    holding = asyncio.Event()
    release = asyncio.Event()
    write_appends = slow._write_appends

    async def write_then_dawdle(conn: Any, appends: Any) -> Any:
        outcome = await write_appends(conn, appends)
        holding.set()  # rows written, positions taken, transaction still open
        await release.wait()
        return outcome

    monkeypatch.setattr(slow, "_write_appends", write_then_dawdle)
    late = asyncio.create_task(slow.append(plain_request("c1", 0, keys=("b:u1",))))
    try:
        await asyncio.wait_for(holding.wait(), 5)
        early = asyncio.create_task(fast.append(plain_request("c2", 0, keys=("b:u1",))))
        await asyncio.sleep(0.3)
        committed_first = early.done()
        seen_meanwhile = list(follower.seen)
    finally:
        release.set()
    late_pos, early_pos = (await late).pos, (await asyncio.wait_for(early, 5)).pos
    follower.stop()
    await asyncio.wait_for(following, 5)

    assert not committed_first, "a later position committed before an earlier one"
    assert seen_meanwhile == []

    assert early_pos == late_pos + 1
    assert [item.pos for item in follower.seen] == [late_pos, early_pos]


async def test_two_nodes_racing_on_one_seq_give_one_winner(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.append(plain_request("c1", 0))
    racers = [
        store.append(plain_request("c1", 1, 2, text=f"узел {n}"))
        for n, store in enumerate(nodes * 4)
    ]

    results = await asyncio.gather(*racers, return_exceptions=True)

    assert sum(isinstance(r, Appended) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 7
    assert [item.event.seq for item in await second.read_stream("c1")] == [1, 2, 3]


async def test_one_nonce_sent_to_two_nodes_at_once_appends_once(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    request = plain_request("c1", 0, nonce=("u1", "n1"))

    results = await asyncio.gather(*(store.append(request) for store in nodes * 3))

    assert sum(not r.duplicate for r in results) == 1
    assert len(await nodes[0].read_all(0, 100)) == 1


async def test_the_database_refuses_a_second_event_at_one_seq(
    nodes: tuple[PostgresStore, PostgresStore], schema: str
) -> None:
    """Not only the writer's check: a process that skips it still cannot fork a stream."""
    appended = await nodes[0].append(plain_request("c1", 0))
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
                " SELECT pos + 1, stream, seq, kind, side, has_text, body FROM events"
                " WHERE pos = $1",
                appended.pos,
            )
    finally:
        await conn.close()


async def test_concurrent_appends_share_commits(schema: str) -> None:
    stats = CountingStats()
    store = await open_node(schema, stats)
    try:
        appended = await asyncio.gather(
            *(store.append(plain_request(f"c{n}", 0)) for n in range(300))
        )
    finally:
        await store.close()

    assert len(appended) == 300
    assert sum(stats.batches) == 300
    assert len(stats.batches) <= 30
    assert max(stats.batches) >= 10


# ---- schema and migrations ---------------------------------------------------------------


async def schema_version(schema: str) -> int:
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        return int(await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'"))
    finally:
        await conn.close()


async def test_nodes_starting_at_once_create_one_schema_and_share_one_log(schema: str) -> None:
    stores = await asyncio.gather(*(open_node(schema) for _ in range(4)))
    try:
        assert len({store.log_id for store in stores}) == 1
        assert await schema_version(schema) == len(postgres_schema.MIGRATIONS)
        await stores[0].append(plain_request("c1", 0))
        assert len(await stores[3].read_all(0, 10)) == 1
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_new_migration_is_applied_once_on_open(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_node(schema)
    await store.append(plain_request("c1", 0))
    await store.close()
    added = "CREATE TABLE migrated (n integer); INSERT INTO migrated VALUES (1);"
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*postgres_schema.MIGRATIONS, added))

    for _ in range(2):
        store = await open_node(schema)
        await store.close()

    assert await schema_version(schema) == len(postgres_schema.MIGRATIONS)
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        assert await conn.fetchval("SELECT count(*) FROM migrated") == 1
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
    finally:
        await conn.close()


async def test_a_schema_newer_than_this_chatd_is_refused(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await open_node(schema)).close()
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", postgres_schema.MIGRATIONS[:0])

    with pytest.raises(RuntimeError, match="newer"):
        await open_node(schema)


def test_search_words_are_plain_lexemes_and_queries_cannot_inject_syntax() -> None:
    assert search_words("ёлка, Ёлка и ЕЛКА-2 ёлка") == ["елка", "и", "2"]
    assert search_words("x" * 1000) == ["x" * 255]
    assert search_query(["ёлк", "nike"]) == "'ёлк':* & 'nike':*"
