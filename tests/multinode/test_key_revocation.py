"""An API key revoked on one node is refused at once on every node: the next request on
another node is 401, and the key's sockets on every node close with 4001, through the hub;
a node cut off from Redis closes them too, from the store, a moment later."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.backends import REDIS_URL
from tests.e2e.api_keys import closed_within, create_key, raw_socket, revoke_key, upload
from tests.e2e.harness import ServerProcess, connect, token, uid
from tests.hub.proxy import CuttableProxy
from tests.multinode.cluster import Cluster, cluster_of

pytestmark = pytest.mark.timeout(90)


async def revoke_on_a_and_watch_b(a: ServerProcess, b: ServerProcess) -> tuple[float, float]:
    """Creates a key on node a, opens its sockets on both nodes, revokes it on a; how long
    the sockets on a and on b took to close with 4001."""
    shop = uid("shop")
    operator = token("seller", uid("op"), "Анна", seller=shop)
    created = create_key(a, operator, "CRM", ("chat:read", "chat:write"))
    key = created["key"]
    # Node b reads the key node a wrote, over HTTP and on /ws.
    assert upload(b, key).status_code == 201
    async with (
        raw_socket(a, key) as (on_a, welcome_a),
        raw_socket(b, key) as (on_b, welcome_b),
        connect(b, operator) as anna,
    ):
        assert welcome_a["type"] == welcome_b["type"] == "welcome"
        assert revoke_key(a, operator, created["id"]).status_code == 204
        started = time.monotonic()
        refused = upload(b, key)
        assert refused.status_code == 401, refused.text
        code_a, took_a = await closed_within(on_a, 10)
        code_b, _ = await closed_within(on_b, 10)
        took_b = time.monotonic() - started
        assert (code_a, code_b) == (4001, 4001)
        # The operator's own socket on b stays.
        assert (await anna.request({"type": "ping"}))["type"] == "pong"
    async with raw_socket(b, key) as (_ws, answer):
        assert answer["code"] == "unauthorized", answer
    return took_a, took_b


async def test_a_key_revoked_on_one_node_is_refused_at_once_on_every_node(
    cluster: Cluster,
) -> None:
    took_a, took_b = await revoke_on_a_and_watch_b(cluster.nodes["a"], cluster.nodes["b"])
    assert took_a < 0.5 and took_b < 0.5, (took_a, took_b, cluster.logs())


async def test_a_node_cut_off_from_redis_closes_a_revoked_keys_sockets_from_the_store(
    tmp_path: Path,
) -> None:
    parsed = urlsplit(REDIS_URL)
    proxy = CuttableProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    await proxy.start()
    try:
        async with cluster_of(tmp_path, "a") as cluster:
            b = await cluster.start("b", hub=proxy.url)
            await proxy.cut()
            # b hears nothing from a now; it re-reads its keys in the store every second.
            took_a, took_b = await revoke_on_a_and_watch_b(cluster.nodes["a"], b)
            assert took_a < 0.5, (took_a, cluster.logs())
            assert took_b < 3.0, (took_b, cluster.logs())
    finally:
        await proxy.close()
