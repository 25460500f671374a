"""The PostgreSQL store when the network to the database goes silent: a partition, where
nothing is refused and nothing closes (`python -m chatd.proof.partitions` found these)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from chatd.store.base import StoreError, StoreUnavailable
from chatd.store.postgres import IDLE_IN_TRANSACTION, WRITE_DEADLINE, PostgresStore
from tests.backends import PG_DSN, drop_schemas, require_postgres, unique_name
from tests.silent_proxy import SilentProxy
from tests.store.contract import plain_request

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    await require_postgres()
    name = unique_name()
    yield name
    await drop_schemas(name)


@pytest.fixture
async def proxy() -> AsyncIterator[SilentProxy]:
    parts = urlsplit(PG_DSN)
    silent = SilentProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await silent.start()
    yield silent
    await silent.close()


def through(proxy: SilentProxy) -> str:
    parts = urlsplit(PG_DSN)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def test_a_node_gone_silent_inside_its_write_loses_the_log_lock_and_the_others_write_on(
    schema: str, proxy: SilentProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node a takes the log's write lock, and then its network goes silent. PostgreSQL held
    the lock for a's session until TCP gave up on it (minutes), and every other node's writes
    waited that long. The session now ends after IDLE_IN_TRANSACTION, and with it a's
    transaction and the lock."""
    a = PostgresStore(through(proxy), schema_name=schema, pool_size=2)
    b = PostgresStore(PG_DSN, schema_name=schema, pool_size=2)
    await a.open()
    await b.open()
    try:
        locked = asyncio.Event()
        take_lock = a._lock_log

        async def lock_then_go_silent(conn: object) -> int:
            last = await take_lock(conn)  # type: ignore[arg-type]
            proxy.freeze()  # the lock is held; a's next statement never arrives
            locked.set()
            return last

        monkeypatch.setattr(a, "_lock_log", lock_then_go_silent)
        stuck = asyncio.create_task(a.append(plain_request("chat-a", 0, text="от a")))
        await asyncio.wait_for(locked.wait(), 10)
        started = time.monotonic()
        appended = await asyncio.wait_for(b.append(plain_request("chat-b", 0, text="от b")), 20)
        waited = time.monotonic() - started
        assert appended.events and appended.events[0].event.text == "от b 1"
        assert waited < IDLE_IN_TRANSACTION + 3.0, waited

        monkeypatch.setattr(a, "_lock_log", take_lock)
        proxy.thaw()
        # a's transaction was rolled back with its session: the append is written again on a
        # new connection, or fails; never written twice.
        with contextlib.suppress(StoreError):
            await asyncio.wait_for(stuck, 30)
        written = await b.read_stream("chat-a")
        assert [s.event.text for s in written] in ([], ["от a 1"])
        # And a writes again.
        again = await a.append(plain_request("chat-c", 0, text="снова"))
        assert again.events
        assert await b.last_position() == max(s.pos for s in await b.read_stream("chat-c"))
    finally:
        proxy.thaw()
        await a.close()
        await b.close()


async def test_writes_to_a_silent_database_fail_within_the_deadline_and_resume_after(
    schema: str, proxy: SilentProxy
) -> None:
    """Each write waited for asyncpg to give up on its statement (STATEMENT_TIMEOUT), then
    for a cancel request that could not get through either (as long again), and a failed
    batch was then retried append by append, each waiting to connect: the node wrote
    nothing for tens of seconds, and went on failing for seconds after the database was
    back. Now a write fails with StoreUnavailable after WRITE_DEADLINE, its batch at once."""
    store = PostgresStore(through(proxy), schema_name=schema, pool_size=3)
    await store.open()
    try:
        await store.append(plain_request("chat-0", 0))
        proxy.freeze()
        started = time.monotonic()
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(store.append(plain_request(f"chat-{n}", 0)) for n in (1, 2, 3)),
                return_exceptions=True,
            ),
            40,
        )
        waited = time.monotonic() - started
        assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
        assert waited < WRITE_DEADLINE + 2.0, waited

        proxy.thaw()
        started = time.monotonic()
        written = await asyncio.wait_for(store.append(plain_request("chat-4", 0)), 30)
        assert written.events and time.monotonic() - started < 2.0
    finally:
        proxy.thaw()
        await store.close()
