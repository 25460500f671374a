"""Connections that never make a request: closed after the header deadline, capped with a
clean 503, and the server keeps answering everyone else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import httpx

from chatd.process.guard import RateLimitedLog
from tests.e2e.harness import connect, start_server, token, uid


async def _open(port: int, send: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """What the server sent before it closed the connection; None if it is still open."""
    try:
        async with asyncio.timeout(seconds):
            return await reader.read()
    except TimeoutError:
        return None


async def test_silent_and_half_sent_requests_are_closed_after_the_header_deadline(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "guard.db", "--header-timeout", "1")
    writers: list[asyncio.StreamWriter] = []
    try:
        silent = [await _open(server.port) for _ in range(20)]
        partial = [
            await _open(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            for _ in range(10)
        ]
        writers = [w for _, w in silent + partial]
        started = time.monotonic()
        results = await asyncio.gather(*(_closed_within(r, 5) for r, _ in silent + partial))
        waited = time.monotonic() - started
        # Every one was closed, none answered, and not before the deadline was near.
        assert all(result == b"" for result in results), results
        assert 0.5 < waited < 4, waited
        # A kept-alive connection that starts a second request and stalls is closed too.
        reader, writer = await _open(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        writers.append(writer)
        first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
        assert first.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost")
        await writer.drain()
        assert await _closed_within(reader, 5) == b""
        # Everyone else is served all along.
        assert httpx.get(f"{server.http}/healthz").status_code == 200
    finally:
        for writer in writers:
            writer.close()
        server.stop()


async def test_connections_past_the_cap_are_refused_at_once_with_503(tmp_path: Path) -> None:
    server = start_server(tmp_path / "cap.db", "--max-connections", "30", "--header-timeout", "60")
    writers: list[asyncio.StreamWriter] = []
    try:
        held = [await _open(server.port) for _ in range(30)]
        writers = [w for _, w in held]
        reader, writer = await _open(server.port)
        writers.append(writer)
        refused = await _closed_within(reader, 5)
        assert refused is not None and refused.startswith(b"HTTP/1.1 503"), refused
        assert b'"code": "unavailable"' in refused
        # The held ones are still open: refusing costs them nothing.
        assert await _closed_within(held[0][0], 0.3) is None
        for _, w in held:
            w.close()
        writers = []
        # Room again: HTTP and WebSockets work as before.
        deadline = time.monotonic() + 5
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.http}/healthz").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not take connections again"
            await asyncio.sleep(0.1)
        async with connect(server, token("buyer", uid("b"))) as buyer:
            assert (await buyer.request({"type": "ping"}))["type"] == "pong"
    finally:
        for writer in writers:
            writer.close()
        server.stop()


def test_a_line_repeated_in_a_flood_is_logged_once_and_distinct_lines_all_pass() -> None:
    limit = RateLimitedLog(interval=60)

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, args, None)

    flood = [record("socket.accept() out of system resource: %s", "EMFILE") for _ in range(500)]
    per_connection = [record("bad frame from %s: %s", f"b:u{n}", "oops") for n in range(3)]

    assert [limit.filter(r) for r in flood].count(True) == 1
    assert all(limit.filter(r) for r in per_connection)
