"""A reader that never reads, in a busy chat: its queue fills, it is closed with 1013 and,
as it does not take the close frame either, its TCP connection is dropped two seconds later;
the writer and the other readers never wait for it and lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ServerProcess, connect, start_server, token, uid
from tests.security.raw import raw_socket

pytestmark = pytest.mark.timeout(120)

LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.http + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def test_a_reader_that_never_reads_is_dropped_and_holds_nobody_up(tmp_path: Path) -> None:
    server = start_server(tmp_path / "stuck.db", *LIFTED, "--queue", "64")
    buyer_id, shop = uid("buyer"), uid("shop")
    readers_wanted = 5
    try:
        async with contextlib.AsyncExitStack() as stack:
            buyer = await stack.enter_async_context(connect(server, token("buyer", buyer_id)))
            chat = (await buyer.request({"type": "open", "seller": shop}))["chat"]
            readers = [
                await stack.enter_async_context(
                    connect(server, token("seller", uid("op"), seller=shop))
                )
                for _ in range(readers_wanted)
            ]
            hello = {"type": "hello", "token": token("seller", uid("stuck"), seller=shop)}
            stuck = await stack.enter_async_context(
                raw_socket(server.url, receive_buffer=4096, hello=hello)
            )
            open_before = metric(server, "chatd_connections")
            text = "ж" * 1000
            slowest_ack = 0.0
            sent = 0
            deadline = time.monotonic() + 60

            async def send_one() -> float:
                started = time.monotonic()
                ack = await buyer.request({"type": "send", "chat": chat, "text": text})
                assert ack["type"] == "ack", ack
                return time.monotonic() - started

            while metric(server, "chatd_queue_drops_total") == 0:
                assert time.monotonic() < deadline, "the stuck reader was never dropped"
                waits = await asyncio.gather(*(send_one() for _ in range(50)))
                slowest_ack = max(slowest_ack, *waits)
                sent += len(waits)
            # Two seconds after the 1013 close that it never read, its TCP is gone too
            # (DECISIONS.md, slow consumers): the server holds nothing for it.
            dropped_at = time.monotonic()
            while metric(server, "chatd_connections") != open_before - 1:
                waited = time.monotonic() - dropped_at
                assert waited < 10, f"the stuck connection is still open after {waited:.0f} s"
                await asyncio.sleep(0.25)
            assert time.monotonic() - dropped_at < 4
            got = await stuck.read_until_closed(timeout=2)
            assert got.eof or got.close_code in (None, 1013), got
            for reader in readers:
                # The readers joined after the chat opened: they get every message, seq 2 on.
                events = await reader.wait_events(sent, timeout=20)
                assert [e["seq"] for e in events] == list(range(2, sent + 2))
            assert slowest_ack < 2.0, f"a writer waited {slowest_ack:.3f} s for an ack"
    finally:
        server.stop()
