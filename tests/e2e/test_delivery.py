"""Delivery guarantees: cursors across reconnects and restarts, durability of acks,
slow consumers, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.harness import ServerProcess, connect, token

SHOP = token("seller", "op-d", "Оператор", seller="shop-d")
UNLIMITED = (
    "--rate", "100000", "--burst", "100000", "--user-rate", "100000", "--user-burst", "100000"
)  # fmt: skip


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    """These tests write as fast as they can: no per-connection rate limit."""
    process = ServerProcess(db=tmp_path / "chatd.db", extra_args=UNLIMITED)
    process.start()
    yield process
    process.stop()


async def _writer(
    server: ServerProcess, buyer_id: str, count: int, acked: list[tuple[str, int]]
) -> None:
    async with connect(server, token("buyer", buyer_id)) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "shop-d"}))["chat"]
        acked.append((chat, 1))
        for i in range(count):
            ack = await buyer.request({"type": "send", "chat": chat, "text": f"{buyer_id} {i}"})
            assert ack["type"] == "ack", ack
            acked.append((chat, ack["seq"]))
            await asyncio.sleep(random.random() * 0.004)


async def test_reconnecting_with_a_cursor_loses_and_doubles_nothing(server: ServerProcess) -> None:
    """Operators reconnect again and again with their last cursor while buyers write."""
    acked: list[tuple[str, int]] = []
    # From the very beginning of this user's feed: a first socket without a cursor would
    # miss what was written before its hello, and the cursor of what it saw next would skip it.
    async with connect(server, SHOP, read=False) as shop:
        last_cursor = f"{shop.welcome['cursor'].split('.')[0]}.0"
    writers = asyncio.gather(*(_writer(server, f"rb{i}", 60, acked) for i in range(4)))
    seen: list[tuple[str, int]] = []
    reconnects = 0
    while not writers.done() or reconnects < 3:
        async with connect(server, SHOP, since=last_cursor, read=False) as shop:
            frame = await shop.recv()
            while frame["type"] == "event":
                seen.append((frame["chat"], frame["seq"]))
                last_cursor = frame["cursor"]
                frame = await shop.recv()
            assert frame["type"] == "synced", frame
            deadline = asyncio.get_running_loop().time() + random.uniform(0.05, 0.3)
            while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    frame = await shop.recv(timeout=remaining)
                except TimeoutError:
                    break
                assert frame["type"] == "event", frame
                seen.append((frame["chat"], frame["seq"]))
                last_cursor = frame["cursor"]
        reconnects += 1
    await writers
    async with connect(server, SHOP, since=last_cursor, read=False) as shop:
        frame = await shop.recv()
        while frame["type"] == "event":
            seen.append((frame["chat"], frame["seq"]))
            frame = await shop.recv()
        assert frame["type"] == "synced"
    assert reconnects >= 3
    assert len(seen) == len(set(seen)), "an event arrived twice"
    assert sorted(seen) == sorted(acked), "an acked event never arrived"
    # Per chat, events arrived in seq order.
    for chat in {c for c, _ in acked}:
        seqs = [s for c, s in seen if c == chat]
        assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))


async def test_every_acked_event_survives_kill_9(server: ServerProcess) -> None:
    acked: list[tuple[str, int, str]] = []

    async def write(buyer_id: str) -> None:
        async with connect(server, token("buyer", buyer_id)) as buyer:
            chat = (await buyer.request({"type": "open", "seller": "shop-d"}))["chat"]
            with contextlib.suppress(ConnectionError, TimeoutError, websockets.ConnectionClosed):
                for i in range(10_000):
                    text = f"{buyer_id} {i}"
                    ack = await buyer.request({"type": "send", "chat": chat, "text": text})
                    acked.append((chat, ack["seq"], text))

    tasks = [asyncio.create_task(write(f"kb{i}")) for i in range(5)]
    while len(acked) < 300:
        await asyncio.sleep(0.01)
    server.kill()
    await asyncio.gather(*tasks, return_exceptions=True)
    server.start()
    async with connect(server, SHOP) as shop:
        for chat in {c for c, _, _ in acked}:
            history = []
            before = None
            while True:
                frame = {"type": "history", "chat": chat, "limit": 100}
                if before:
                    frame["before"] = before
                page = await shop.request(frame)
                history = page["events"] + history
                if not page["more"]:
                    break
                before = page["events"][0]["seq"]
            seqs = [e["seq"] for e in history]
            assert seqs == list(range(1, len(seqs) + 1)), "a gap or a duplicate in the stream"
            texts = {e["seq"]: e.get("text") for e in history}
            for c, seq, text in acked:
                if c == chat:
                    assert texts.get(seq) == text, f"acked event {chat}/{seq} lost"


async def test_a_reader_that_cannot_keep_up_is_closed_with_1013(tmp_path: Path) -> None:
    server = ServerProcess(db=tmp_path / "slow.db", extra_args=(*UNLIMITED, "--queue", "16"))
    server.start()
    shop_token = token("seller", "op-s", seller="shop-slow")
    try:
        async with connect(server, token("buyer", "fast")) as buyer:
            chat = (await buyer.request({"type": "open", "seller": "shop-slow"}))["chat"]
            # A client that stops reading: its library stops taking data off the socket.
            slow = await websockets.connect(server.url, max_size=2**20, max_queue=1)
            await slow.send(json.dumps({"type": "hello", "token": shop_token}))
            await slow.recv()
            big = "ж" * 900
            sent = 0
            while _queue_drops(server) == 0:
                acks = await asyncio.gather(
                    *(buyer.request({"type": "send", "chat": chat, "text": big}) for _ in range(50))
                )
                assert all(a["type"] == "ack" for a in acks), "a slow reader held a writer up"
                sent += 50
                assert sent < 20_000, "the slow reader was never dropped"
            # Reading again, it finds what was sent before the drop, then the 1013 close.
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await slow.recv()
            assert slow.close_code == 1013
            # The fast buyer was never held up, and the shop resumes with nothing lost.
            async with connect(server, shop_token) as again:
                history = await again.request({"type": "history", "chat": chat, "limit": 1})
                assert history["events"][-1]["seq"] == sent + 1
    finally:
        server.stop()


def _queue_drops(server: ServerProcess) -> float:
    text = httpx.get(server.http + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("chatd_queue_drops_total "):
            return float(line.split()[1])
    raise AssertionError("no chatd_queue_drops_total metric")


async def test_sigterm_closes_sockets_with_1001(server: ServerProcess) -> None:
    async with connect(server, token("buyer", "term")) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "shop-t"}))["chat"]
        await buyer.request({"type": "send", "chat": chat, "text": "до свидания"})
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the process reports it.
        assert server.terminate() in (0, -signal.SIGTERM)
        await asyncio.wait_for(buyer.closed.wait(), 10)
        assert buyer.close_code == 1001
    server.start()
    async with connect(server, token("buyer", "term")) as buyer:
        history = await buyer.request({"type": "history", "chat": chat})
        assert history["events"][-1]["text"] == "до свидания"


@pytest.mark.parametrize("binary", [False, True])
async def test_cursor_survives_a_restart(server: ServerProcess, binary: bool) -> None:
    buyer_token = token("buyer", f"restart-{binary}")
    async with connect(server, buyer_token, binary=binary) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "shop-r"}))["chat"]
        await buyer.wait_events(1)
        cursor = buyer.events[-1]["cursor"]
    async with connect(server, token("seller", "op-r", seller="shop-r")) as shop:
        for text in ("раз", "два"):
            await shop.request({"type": "send", "chat": chat, "text": text})
    server.kill()
    server.start()
    async with connect(server, buyer_token, since=cursor, binary=binary, read=False) as buyer:
        frames = [await buyer.recv() for _ in range(3)]
        assert [f["type"] for f in frames] == ["event", "event", "synced"]
        assert [f["text"] for f in frames[:2]] == ["раз", "два"]
        assert frames[2]["cursor"] == frames[1]["cursor"]
