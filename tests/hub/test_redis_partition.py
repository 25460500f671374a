"""The Redis hub when its connection to Redis goes silent, or dies without a word: a node
must find out by itself and subscribe again, since read marks, typing and presence notices
travel only through Redis (`python -m chatd.proof.partitions` found a node that never did).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from chatd.hub.redis import RedisHub
from chatd.store.postgres import PostgresStore
from tests.backends import (
    PG_DSN,
    REDIS_URL,
    drop_schemas,
    require_postgres,
    require_redis,
    unique_name,
)
from tests.hub.contract import Inbox, read_out
from tests.silent_proxy import SilentProxy

pytestmark = pytest.mark.timeout(60)

POLL = 0.2


@pytest.fixture
async def pg_log() -> AsyncIterator[PostgresStore]:
    await require_postgres()
    await require_redis()
    schema = unique_name()
    store = PostgresStore(PG_DSN, schema_name=schema, pool_size=4)
    await store.open()
    yield store
    await store.close()
    await drop_schemas(schema)


@pytest.fixture
async def proxy() -> AsyncIterator[SilentProxy]:
    parts = urlsplit(REDIS_URL)
    silent = SilentProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await silent.start()
    yield silent
    silent.thaw()
    await silent.close()


@pytest.fixture
async def hubs(
    pg_log: PostgresStore, proxy: SilentProxy
) -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    """A node on Redis itself, and one (the island) whose Redis goes through the proxy."""
    writer = RedisHub(REDIS_URL, pg_log, prefix="chatd-test", poll_interval=POLL)
    island = RedisHub(
        f"redis://127.0.0.1:{proxy.port}/0", pg_log, prefix="chatd-test", poll_interval=POLL
    )
    for hub in (writer, island):
        await hub.start()
        await asyncio.wait_for(hub.connected.wait(), 5)
    yield writer, island
    proxy.thaw()
    for hub in (writer, island):
        await hub.stop()


async def marks_arrive(writer: RedisHub, inbox: Inbox, within: float) -> float:
    """Publishes a read mark every 0.2 s until the island has one: the seconds that took.
    A mark is never in the log: only a live subscription brings it."""
    started = time.monotonic()
    seq = 0
    while not inbox.marks():
        if time.monotonic() - started > within:
            raise AssertionError(f"no read mark reached the island within {within:.0f} s")
        seq += 1
        await writer.publish([read_out("c1", seq)], ("s:s1",))
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def test_a_hub_whose_redis_goes_silent_finds_out_and_subscribes_again(
    hubs: tuple[RedisHub, RedisHub], proxy: SilentProxy
) -> None:
    writer, island = hubs
    inbox = Inbox()
    island.subscribe(["s:s1"], inbox)
    await marks_arrive(writer, inbox, 5)

    proxy.freeze()
    started = time.monotonic()
    while island.connected.is_set():  # before: connected for ever, hearing nothing
        assert time.monotonic() - started < 15, "the hub never noticed that Redis went silent"
        await asyncio.sleep(0.05)
    assert not island.stats().connected

    proxy.thaw()
    await asyncio.wait_for(island.connected.wait(), 15)
    inbox.items.clear()
    await marks_arrive(writer, inbox, 10)


async def test_a_hub_whose_connection_died_unheard_subscribes_again(
    hubs: tuple[RedisHub, RedisHub], proxy: SilentProxy
) -> None:
    """Redis restarted, or gave up on the node, while a partition swallowed the close: the
    node's subscription is gone and nothing told it so."""
    writer, island = hubs
    inbox = Inbox()
    island.subscribe(["s:s1"], inbox)
    await marks_arrive(writer, inbox, 5)

    proxy.sever()
    inbox.items.clear()
    # Before: the island's subscription stayed dead until the node restarted.
    await marks_arrive(writer, inbox, 15)
    assert island.stats().reconnections >= 1
