"""Requests whose headers arrive in time and whose body then trickles in: closed once the
body falls behind its pace (`--header-timeout` to start, then 500 bytes a second), whether
the route reads the body or answered early and discards it. Bodies sent at a real pace,
long polls and WebSockets are never cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import (
    ServerProcess,
    connect,
    module_server,
    order_body,
    token,
)

pytestmark = pytest.mark.timeout(90)

SYSTEM = token("system", "marketplace")
BUYER = token("buyer", "slow-buyer")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "slow", "--header-timeout", "1") as process:
        yield process


async def trickle(
    server: ServerProcess,
    path: str,
    headers: dict[str, str],
    body: bytes,
    pace: float,
    chunk: int = 1,
    declared: int | None = None,
) -> tuple[float, bytes, bool]:
    """Sends `body` `chunk` bytes at a time every `pace` seconds; (seconds until the server
    closed or the body was all sent, what it answered, whether it closed the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared or len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    started = time.monotonic()
    answer = b""

    async def read() -> None:
        nonlocal answer
        while data := await reader.read(65536):
            answer += data

    reading = asyncio.create_task(read())
    try:
        for at in range(0, len(body), chunk):
            if reading.done():
                break
            writer.write(body[at : at + chunk])
            await writer.drain()
            await asyncio.sleep(pace)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), 3)
    except (ConnectionError, OSError):
        pass
    closed = reading.done()
    waited = time.monotonic() - started
    reading.cancel()
    writer.close()
    return waited, answer, closed


async def test_a_trickling_body_is_closed_after_its_deadline(server: ServerProcess) -> None:
    json_type = {"Content-Type": "application/json"}
    cases = [
        # A route that reads its body: a byte a second.
        ("/api/v1/orders", {"Authorization": f"Bearer {SYSTEM}", **json_type}, 60_000),
        # One that answers at once (no credentials) and discards what follows.
        ("/api/v1/orders", json_type, 60_000),
        # An upload.
        (
            "/api/v1/files",
            {"Authorization": f"Bearer {BUYER}", "Content-Type": "multipart/form-data; boundary=b"},
            60_000,
        ),
    ]
    results = await asyncio.gather(
        *(trickle(server, path, headers, b" " * 30, 0.5, declared=n) for path, headers, n in cases)
    )
    for (path, _headers, _n), (waited, answer, closed) in zip(cases, results, strict=True):
        assert closed, (path, waited, answer)
        # 1 s to start, and the few bytes it sent bought next to nothing.
        assert 0.9 < waited < 3.5, (path, waited)
    assert results[1][1].startswith(b"HTTP/1.1 401"), results[1][1]
    # The server answers everyone else meanwhile and after.
    assert httpx.get(server.http + "/healthz", timeout=5).status_code == 200


async def test_fifty_trickles_at_once_all_go(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {SYSTEM}", "Content-Type": "application/json"}
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            trickle(server, "/api/v1/orders", headers, b" " * 20, 0.5, declared=9000)
            for _ in range(50)
        )
    )
    assert all(closed for _, _, closed in results)
    assert time.monotonic() - started < 6
    assert httpx.get(server.http + "/healthz", timeout=5).status_code == 200


async def test_a_body_sent_at_a_real_pace_is_never_cut(server: ServerProcess) -> None:
    # 6 000 bytes at 2 000 bytes a second: 3 s, well past the 1 s deadline to start, and
    # always ahead of 500 bytes a second.
    card = order_body("slow-order-1", "slow-buyer", "slow-shop")
    body = json.dumps(card).encode()
    body += b" " * (6000 - len(body))
    headers = {"Authorization": f"Bearer {SYSTEM}", "Content-Type": "application/json"}
    waited, answer, _closed = await trickle(server, "/api/v1/orders", headers, body, 0.1, chunk=200)
    assert waited > 2.5, waited
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


async def test_a_long_poll_and_a_quiet_socket_outlive_the_deadline(server: ServerProcess) -> None:
    started = time.monotonic()
    async with connect(server, BUYER) as socket, httpx.AsyncClient(timeout=10) as http:
        polled = await http.get(
            server.http + "/api/v1/events?wait=3",
            headers={"Authorization": f"Bearer {BUYER}"},
        )
        assert polled.status_code == 200, polled.text
        assert time.monotonic() - started > 2.5
        await asyncio.sleep(1)
        pong = await socket.request({"type": "ping"})
    assert pong["type"] == "pong"


async def test_a_client_gone_mid_body_is_no_server_error(server: ServerProcess) -> None:
    """A client that leaves while its body is arriving, or whose trickle the server cuts,
    is counted as 499 (client closed request) and logged at most as a bad request: it was
    a 500 with an error line and a traceback for each one."""
    headers = {"Authorization": f"Bearer {SYSTEM}", "Content-Type": "application/json"}
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        + b"\r\n{"
        + b" " * 1000
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()  # gone, 4 000 bytes short
    _waited, _answer, closed = await trickle(
        server, "/api/v1/orders", headers, b" " * 10, 0.5, declared=5000
    )
    assert closed
    await asyncio.sleep(0.5)
    metrics = httpx.get(server.http + "/metrics", timeout=5).text
    orders = [line for line in metrics.splitlines() if 'route="/api/v1/orders"' in line]
    assert any('status="499"' in line for line in orders), orders
    assert not any('status="500"' in line for line in orders), orders
    log = server.log_path.read_text()
    assert "Exception in ASGI application" not in log and "ClientDisconnect" not in log, log[-3000:]
