"""A node whose PostgreSQL or Redis goes silent (a partition: nothing refused, nothing
closed) still answers its clients within a bound, instead of leaving them in silence
(`python -m chatd.proof.partitions` found both)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import websockets

from chatd.web.answer_deadline import ANSWER_DEADLINE
from tests.backends import REDIS_URL, fresh_database, require_redis
from tests.e2e.harness import ServerProcess, connect, token, uid
from tests.silent_proxy import SilentProxy

pytestmark = pytest.mark.timeout(90)


def _proxied(url: str, proxy: SilentProxy) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def _proxy_for(url: str, default_port: int) -> SilentProxy:
    parts = urlsplit(url)
    proxy = SilentProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    await proxy.start()
    return proxy


@pytest.fixture
async def node_with_silent_database(
    tmp_path: Path,
) -> AsyncIterator[tuple[ServerProcess, SilentProxy]]:
    async with fresh_database() as dsn:
        proxy = await _proxy_for(dsn, 5432)
        node = ServerProcess(
            db=tmp_path / "node.db",
            extra_args=("--store", _proxied(dsn, proxy), "--files", str(tmp_path / "files")),
        )
        await asyncio.to_thread(node.start)
        try:
            yield node, proxy
        finally:
            proxy.thaw()
            await asyncio.to_thread(node.stop)
            await proxy.close()


async def test_a_node_whose_database_goes_silent_answers_unavailable_in_time(
    node_with_silent_database: tuple[ServerProcess, SilentProxy],
) -> None:
    node, proxy = node_with_silent_database
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(node, token("buyer", buyer)) as client:
        opened = await client.request({"type": "open", "seller": shop})
        assert opened["type"] == "ack", opened
        chat = opened["chat"]
        send = {"type": "send", "chat": chat, "text": "вы тут?", "nonce": "n-1"}

        proxy.freeze()
        started = time.monotonic()
        reply = await client.request(send, timeout=30)
        waited = time.monotonic() - started
        # Before: no answer at all, for as long as the partition lasted.
        assert reply["type"] == "error" and reply["code"] == "unavailable", reply
        assert waited < ANSWER_DEADLINE + 2.0, waited
        assert (await client.request({"type": "ping"}, timeout=5))["type"] == "pong"

        # A new socket hears it too: `unavailable`, and 1013 to try again later.
        started = time.monotonic()
        async with websockets.connect(node.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "hello", "token": token("buyer", buyer)}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1013
        assert time.monotonic() - started < ANSWER_DEADLINE + 2.0

        proxy.thaw()
        # The same nonce again, until the node has its database back: written once.
        deadline = time.monotonic() + 30
        while True:
            reply = await client.request(send, timeout=30)
            if reply["type"] == "ack" or time.monotonic() > deadline:
                break
            assert reply["code"] == "unavailable", reply
            await asyncio.sleep(0.5)
        assert reply["type"] == "ack", reply
        page = await client.request({"type": "history", "chat": chat, "limit": 100})
        texts = [event.get("text") for event in page["events"] if event["kind"] == "message"]
        assert texts == ["вы тут?"]


async def test_a_chat_list_does_not_wait_for_a_silent_redis(tmp_path: Path) -> None:
    """Presence (who is online) lives in Redis, and a chat list shows it. With Redis silent,
    a node that knows of other nodes asked Redis anyway, and the list took redis-py's socket
    timeout (5 s), then its connect timeout (2 s) each time."""
    await require_redis()
    async with fresh_database() as dsn:
        proxy = await _proxy_for(REDIS_URL, 6379)

        def node(name: str, hub: str) -> ServerProcess:
            return ServerProcess(
                db=tmp_path / f"{name}.db",
                extra_args=("--store", dsn, "--hub", hub, "--files", str(tmp_path / "files")),
            )

        a, b = node("a", _proxied(REDIS_URL, proxy)), node("b", REDIS_URL)
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        try:
            buyer, shop = uid("buyer"), uid("shop")
            async with (
                connect(a, token("buyer", buyer)) as client,
                connect(b, token("seller", uid("op"), seller=shop)) as operator,
            ):
                opened = await client.request({"type": "open", "seller": shop})
                assert opened["type"] == "ack", opened
                # Node a hears of b (b's presence notice), and asks Redis about b's parties.
                chats = await client.request({"type": "chats"}, timeout=10)
                deadline = time.monotonic() + 15
                while not chats["chats"][0]["online"]["seller"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    chats = await client.request({"type": "chats"}, timeout=10)
                assert chats["chats"][0]["online"]["seller"], chats
                proxy.freeze()
                for _ in range(3):
                    started = time.monotonic()
                    chats = await client.request({"type": "chats"}, timeout=30)
                    waited = time.monotonic() - started
                    assert chats["type"] == "chats", chats
                    assert [c["chat"] for c in chats["chats"]] == [opened["chat"]]
                    assert waited < 1.5, waited
                await operator.close()
        finally:
            proxy.thaw()
            await asyncio.to_thread(a.stop)
            await asyncio.to_thread(b.stop)
            await proxy.close()


async def test_http_requests_are_answered_unavailable_in_time_too(
    node_with_silent_database: tuple[ServerProcess, SilentProxy],
) -> None:
    """Over HTTP, a request behind a silent database waited as long as the partition lasted
    (the socket's frames had their deadline; HTTP had none)."""
    node, proxy = node_with_silent_database
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(node, token("buyer", buyer)) as client:
        opened = await client.request({"type": "open", "seller": shop})
        assert opened["type"] == "ack", opened
    chat = opened["chat"]
    headers = {"Authorization": f"Bearer {token('buyer', buyer)}"}
    message = {
        "url": f"{node.http}/api/v1/chats/{chat}/messages",
        "json": {"text": "по HTTP, пока база молчит"},
        "headers": {**headers, "Idempotency-Key": "k-1"},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        proxy.freeze()
        for request in (
            http.build_request("GET", f"{node.http}/api/v1/chats", headers=headers),
            http.build_request("POST", **message),
        ):
            started = time.monotonic()
            answer = await http.send(request)
            waited = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "unavailable", answer.text
            assert waited < ANSWER_DEADLINE + 2.0, waited

        proxy.thaw()
        # The same key again, until the node has its database back: written once.
        deadline = time.monotonic() + 30
        while (answer := await http.post(**message)).status_code == 503:
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.5)
        assert answer.status_code == 200, answer.text
        page = await http.get(f"{node.http}/api/v1/chats/{chat}/history", headers=headers)
        texts = [e.get("text") for e in page.json()["events"] if e["kind"] == "message"]
        assert texts == ["по HTTP, пока база молчит"]


async def test_a_long_poll_is_not_late_for_waiting(tmp_path: Path) -> None:
    """A long-poll waits on purpose, longer than the deadline: it gets its page, not 503."""
    node = ServerProcess(db=tmp_path / "node.db")
    await asyncio.to_thread(node.start)
    try:
        headers = {"Authorization": f"Bearer {token('buyer', uid('buyer'))}"}
        wait = ANSWER_DEADLINE + 1.5
        async with httpx.AsyncClient(timeout=30) as http:
            started = time.monotonic()
            answer = await http.get(
                f"{node.http}/api/v1/events", params={"wait": wait}, headers=headers
            )
            waited = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["events"] == []
        assert waited >= wait - 0.1, waited
    finally:
        await asyncio.to_thread(node.stop)
