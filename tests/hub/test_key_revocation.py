"""A revoked API key reaches every node: the hub tells each node's listeners at once (in
process, and over Redis between nodes), and a node that missed the message finds the key
revoked in the store (`chatd.web.key_sockets`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatd.credentials import issue_key
from chatd.hub.local import LocalHub
from chatd.store.sqlite import SqliteStore
from chatd.web.key_sockets import REVOKED, KeySockets
from protocol.codes import CloseCode
from tests.hub.contract import QUIET
from tests.hub.test_redis import Nodes, nodes, pg_log  # noqa: F401 (fixtures)

NOW = datetime(2026, 1, 5, tzinfo=UTC)


class Heard:
    """A listener that keeps the key ids it is told of."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, key: str) -> None:
        self.keys.append(key)

    async def wait_for(self, count: int, timeout: float = 5) -> list[str]:
        async with asyncio.timeout(timeout):
            while len(self.keys) < count:
                await asyncio.sleep(0.005)
        return self.keys


async def test_the_local_hub_tells_its_listeners_once() -> None:
    hub = LocalHub()
    first, second = Heard(), Heard()
    hub.on_key_revoked(first)
    hub.on_key_revoked(second)
    await hub.revoke_key("key_1")
    assert first.keys == second.keys == ["key_1"]


async def test_a_key_revoked_on_one_node_is_heard_once_on_every_node(nodes: Nodes) -> None:  # noqa: F811
    a, b, c = [await nodes.start() for _ in range(3)]
    heard = {hub: Heard() for hub in (a, b, c)}
    for hub, listener in heard.items():
        hub.on_key_revoked(listener)
    started = time.monotonic()
    await a.revoke_key("key_1")
    assert heard[a].keys == ["key_1"]  # its own node, before anything leaves for Redis
    await heard[b].wait_for(1)
    await heard[c].wait_for(1)
    assert time.monotonic() - started < 1.0
    await b.revoke_key("key_2")
    await heard[a].wait_for(2)
    await heard[c].wait_for(2)
    await asyncio.sleep(QUIET)
    assert [h.keys for h in heard.values()] == [["key_1", "key_2"]] * 3


# ---- the store behind the hub -----------------------------------------------------------------


class Socket:
    """What KeySockets closes: it keeps the close it was asked for."""

    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "keys.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_revocation_the_hub_never_brought_is_found_in_the_store(
    store: SqliteStore,
) -> None:
    revoked, kept = (issue_key("shop-1", n, ("chat:read",), NOW).record for n in ("a", "b"))
    for record in (revoked, kept):
        await store.create_key(record)
    sockets = KeySockets(store, interval=0.1)
    of_revoked, of_kept = [Socket(), Socket()], Socket()
    for socket in of_revoked:
        sockets.add(revoked.id, socket)
    sockets.add(kept.id, of_kept)
    try:
        assert await sockets.still_live(revoked.id)
        # Revoked in the store by another node whose message was lost: no hub involved.
        assert await store.revoke_key("shop-1", revoked.id, NOW)
        assert not await sockets.still_live(revoked.id)
        async with asyncio.timeout(2):
            while any(s.closed is None for s in of_revoked):
                await asyncio.sleep(0.01)
        assert [s.closed for s in of_revoked] == [(CloseCode.UNAUTHORIZED, REVOKED)] * 2
        await asyncio.sleep(0.3)
        assert of_kept.closed is None
    finally:
        await sockets.stop()


async def test_the_hubs_word_closes_a_keys_sockets_at_once(store: SqliteStore) -> None:
    hub = LocalHub()
    # No re-reading of the store within the test: only the hub can close them.
    sockets = KeySockets(store, interval=3600)
    hub.on_key_revoked(sockets.revoked)
    socket, other = Socket(), Socket()
    sockets.add("key_1", socket)
    sockets.add("key_2", other)
    try:
        await hub.revoke_key("key_1")
        assert socket.closed == (CloseCode.UNAUTHORIZED, REVOKED)
        assert other.closed is None
        # A socket that left is not closed again, and an unknown key closes nothing.
        sockets.remove("key_2", other)
        await hub.revoke_key("key_2")
        await hub.revoke_key("key_x")
        assert other.closed is None
    finally:
        await sockets.stop()
