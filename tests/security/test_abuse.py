"""Abuse over real sockets: foreign and malformed Origins, oversized frames and inflation
bombs under permessage-deflate, rate limits per connection and per user held under sustained
load, and the cap on one user's connections, which never leaks places."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.e2e.harness import (
    ServerProcess,
    connect,
    module_server,
    next_reply,
    start_server,
    token,
    uid,
)
from tests.security.raw import raw_socket

pytestmark = pytest.mark.timeout(120)

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "abuse") as process:
        yield process


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("abuse-listed")) / "chatd.db"
    process = start_server(db, "--allow-origin", "https://shop.example")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def deflating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("abuse-deflate")) / "chatd.db"
    process = start_server(db, "--deflate")
    try:
        yield process
    finally:
        process.stop()


# ---- Origin --------------------------------------------------------------------------------


async def upgrade_status(server: ServerProcess, origin: str | None) -> int:
    """101 when the upgrade is accepted (and hello then works), else the HTTP status."""
    headers = {} if origin is None else {"Origin": origin}
    try:
        async with websockets.connect(server.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "hello", "token": token("buyer", uid("buyer"))}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


LOOK_ALIKES = {
    "null_upper": "NULL",
    "null_padded": " null",
    "port_then_domain": "http://127.0.0.1:{port}.evil.example",
    "userinfo_trick": "http://127.0.0.1:{port}@evil.example",
    "fragment_trick": "http://evil.example#@127.0.0.1:{port}",
    "trailing_dot_host": "http://127.0.0.1.:{port}",
    "ipv4_mapped_ipv6": "http://[::ffff:127.0.0.1]:{port}",
    "decimal_ip": "http://2130706433:{port}",
    "short_ip": "http://127.1:{port}",
    "octal_ip": "http://0177.0.0.1:{port}",
    "percent_encoded_dot": "http://127.0.0.1%2e:{port}",
    "ws_scheme": "ws://127.0.0.1:{port}",
    "wss_scheme": "wss://127.0.0.1:{port}",
    "file_scheme": "file://127.0.0.1:{port}",
    "extension_scheme": "chrome-extension://abcdefghijklmnop",
    "no_scheme": "//127.0.0.1:{port}",
    "scheme_without_slashes": "http:127.0.0.1:{port}",
    "list_of_two": "http://127.0.0.1:{port}, http://evil.example",
    "other_port": "http://127.0.0.1:{other}",
    "port_plus": "http://127.0.0.1:+{port}",
    "localhost_name": "http://localhost:{port}",
    "empty": "",
}


@pytest.mark.parametrize("origin", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
async def test_look_alike_origins_are_refused_with_403(srv: ServerProcess, origin: str) -> None:
    filled = origin.format(port=srv.port, other=srv.port + 1)
    assert await upgrade_status(srv, filled) == 403


NOT_AN_ORIGIN = {
    "backslash_userinfo": "http://evil.example\\@127.0.0.1:{port}",
    "userinfo": "http://user@127.0.0.1:{port}",
    "path": "http://127.0.0.1:{port}/evil",
    "query": "http://127.0.0.1:{port}?x=1",
}


@pytest.mark.parametrize("origin", NOT_AN_ORIGIN.values(), ids=NOT_AN_ORIGIN.keys())
async def test_a_header_that_is_no_serialized_origin_is_refused(
    srv: ServerProcess, origin: str
) -> None:
    """A browser sends `scheme://host[:port]` and nothing else (RFC 6454, 7); a header with
    userinfo, a path, a query or stray characters is not one, and fails closed. Note the
    backslash: browsers read `http://evil.example\\@host` as the host evil.example."""
    assert await upgrade_status(srv, origin.format(port=srv.port)) == 403


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:{port}", "https://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}", None],
    ids=["same", "same_https", "scheme_upper_case", "none"],
)
async def test_the_same_host_and_port_or_no_origin_is_accepted(
    srv: ServerProcess, origin: str | None
) -> None:
    assert (
        await upgrade_status(srv, None if origin is None else origin.format(port=srv.port)) == 101
    )


@pytest.mark.parametrize(
    "origin",
    [
        "https://SHOP.example",
        "HTTPS://shop.example",
        "https://shop.example/",
        "https://shop.example.",
        "https://shop.example:443",
        "https://shop.example.evil.example",
        "https://evil.example/https://shop.example",
        "https://shop.example@evil.example",
        "http://shop.example",
        "null",
    ],
)
async def test_an_allow_list_matches_exactly(listed: ServerProcess, origin: str) -> None:
    assert await upgrade_status(listed, origin) == 403
    assert await upgrade_status(listed, "https://shop.example") == 101


# ---- oversized frames and inflation bombs ------------------------------------------------


def server_memory_kib(server: ServerProcess) -> dict[str, int]:
    assert server.process is not None
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def ping_of(size: int) -> bytes:
    """A JSON ping of exactly `size` bytes."""
    base = b'{"type":"ping","id":"big","pad":""}'
    return base[:-2] + b"a" * (size - len(base)) + b'"}'


async def bomb_single_frame(server: ServerProcess, inflated: int) -> tuple[int | None, int]:
    """One compressed frame of `inflated` bytes; (close code, bytes on the wire)."""
    hello = {"type": "hello", "token": token("buyer", uid("bomb"))}
    async with raw_socket(server.url, deflate=True, hello=hello) as raw:
        payload = ping_of(inflated)
        await raw.send_text(payload)
        wire = raw.sent_bytes
        got = await raw.read_until_closed()
        return got.close_code, wire


async def test_a_compressed_frame_inflating_past_64_kib_closes_with_1009(
    deflating: ServerProcess,
) -> None:
    code, wire = await bomb_single_frame(deflating, LIMIT + 1)
    assert code == 1009 and wire < 1024


async def test_a_compressed_frame_inflating_to_exactly_64_kib_passes(
    deflating: ServerProcess,
) -> None:
    hello = {"type": "hello", "token": token("buyer", uid("bomb"))}
    async with raw_socket(deflating.url, deflate=True, hello=hello) as raw:
        await raw.send_text(ping_of(LIMIT))
        assert await raw.next_json() == {"type": "pong", "id": "big"}


async def test_inflation_bombs_close_with_1009_and_memory_stays_bounded(
    deflating: ServerProcess,
) -> None:
    """Single frames of 60 MB that travel as 60 KB, and 3 MB messages in 100 fragments of
    32 KiB: each is cut at 64 KiB inflated; the server's peak memory hardly moves."""
    before = server_memory_kib(deflating)
    for _ in range(3):
        code, wire = await bomb_single_frame(deflating, 60_000_000)
        assert code == 1009 and wire < LIMIT
    hello = {"type": "hello", "token": token("buyer", uid("bomb"))}
    for _ in range(10):
        async with raw_socket(deflating.url, deflate=True, hello=hello) as raw:
            await raw.send_fragments([b'{"type":"ping","pad":"', *[b"a" * 32768] * 100, b'"}'])
            got = await raw.read_until_closed()
            assert got.close_code == 1009, got
    after = server_memory_kib(deflating)
    grew = after["VmHWM"] - before["VmHWM"]
    assert grew < 20 * 1024, f"peak memory grew by {grew} KiB"
    async with connect(deflating, token("buyer", uid("after"))) as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"


async def test_a_frame_announcing_16_mib_closes_with_1009_before_its_payload_is_read(
    srv: ServerProcess,
) -> None:
    before = server_memory_kib(srv)
    hello = {"type": "hello", "token": token("buyer", uid("big"))}
    for _ in range(5):
        async with raw_socket(srv.url, hello=hello) as raw:
            await raw.send_text_head(ping_of(16 * 1024 * 1024), head=4096)
            got = await raw.read_until_closed()
            assert got.close_code == 1009, got
    grew = server_memory_kib(srv)["VmHWM"] - before["VmHWM"]
    assert grew < 20 * 1024, f"peak memory grew by {grew} KiB"


async def test_a_message_in_many_small_fragments_is_bounded_as_a_whole(
    srv: ServerProcess,
) -> None:
    hello = {"type": "hello", "token": token("buyer", uid("frag"))}
    async with raw_socket(srv.url, hello=hello) as raw:
        await raw.send_fragments([b'{"type":"ping","pad":"', *[b"a" * 1000] * 70, b'"}'])
        got = await raw.read_until_closed()
        assert got.close_code == 1009, got


# ---- rate limits ---------------------------------------------------------------------------


async def pings_passed(client: Any, count: int, spacing: float) -> tuple[int, int, float]:
    """Sends `count` pings `spacing` seconds apart without waiting for answers; (passed,
    refused, seconds it took)."""
    started = time.monotonic()
    for n in range(count):
        await client.send_raw(client.encode({"type": "ping", "id": f"r{n}"}))
        await asyncio.sleep(spacing)
    passed = refused = 0
    for _ in range(count):
        reply = await next_reply(client, wait=10)
        if reply["type"] == "pong":
            passed += 1
        else:
            assert reply["code"] == "rate_limited" and reply["details"]["retry_after"] > 0
            refused += 1
    return passed, refused, time.monotonic() - started


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_a_connection_sending_twice_its_rate_gets_its_rate_and_burst_and_no_more(
    srv: ServerProcess, binary: bool
) -> None:
    """20 frames a second, bursts of 40: at 40 a second for 3 seconds, about 40 + 20 x 3 pass."""
    async with connect(srv, token("buyer", uid("rate")), binary=binary, read=False) as client:
        passed, refused, took = await pings_passed(client, 120, 1 / 40)
    ceiling = 40 + 20 * took
    assert passed <= ceiling + 1, (passed, took)
    assert passed >= 40 + 20 * (took - 0.6) - 2, (passed, took)
    assert passed + refused == 120


async def test_a_user_over_many_sockets_gets_the_users_rate_and_no_more(
    tmp_path: Path,
) -> None:
    server = start_server(
        tmp_path / "user-rate.db",
        "--rate", "1000", "--burst", "1000", "--user-rate", "10", "--user-burst", "20",
    )  # fmt: skip
    try:
        tok = token("buyer", uid("many"))
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(connect(server, tok, read=False)) for _ in range(8)
            ]
            bystander = await stack.enter_async_context(
                connect(server, token("buyer", uid("other")), read=False)
            )
            results = await asyncio.gather(*(pings_passed(s, 25, 1 / 25) for s in sockets))
            passed = sum(p for p, _, _ in results)
            took = max(t for _, _, t in results)
            assert passed <= 20 + 10 * took + 1, (passed, took)
            assert passed >= 20, passed
            # Another user was never limited by this one.
            other, refused, _ = await pings_passed(bystander, 15, 0)
            assert (other, refused) == (15, 0)
    finally:
        server.stop()


# ---- connections per user ------------------------------------------------------------------


async def hello_on_a_new_socket(server: ServerProcess, tok: str) -> tuple[dict[str, Any], Any]:
    async with websockets.connect(server.url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": tok, "id": "h"}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if first["type"] == "welcome":
            return first, None
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return first, ws.close_code


async def test_the_33rd_connection_of_a_user_gets_rate_limited_and_1008_by_default(
    srv: ServerProcess,
) -> None:
    tok = token("buyer", uid("tabs"))
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(32):
            await stack.enter_async_context(connect(srv, tok))
        for _ in range(5):
            refused, code = await hello_on_a_new_socket(srv, tok)
            assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
            assert refused["id"] == "h" and code == 1008
        # Refusals took no place; other users, and the same id in another role, are apart.
        welcome, _ = await hello_on_a_new_socket(srv, token("buyer", uid("someone")))
        assert welcome["type"] == "welcome"
        same_id_as_operator = token("seller", tok and uid("op"), seller=uid("shop"))
        welcome, _ = await hello_on_a_new_socket(srv, same_id_as_operator)
        assert welcome["type"] == "welcome"
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(32):
            await stack.enter_async_context(connect(srv, tok))


async def test_connections_dropped_without_a_goodbye_give_their_places_back(
    srv: ServerProcess,
) -> None:
    tok = token("buyer", uid("dropped"))
    hello = {"type": "hello", "token": tok}
    for _ in range(2):
        raws = []
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(32):
                raws.append(await stack.enter_async_context(raw_socket(srv.url, hello=hello)))
            for raw in raws:
                # An RST, as when a phone loses its network: no close frame, no FIN.
                sock = raw.writer.get_extra_info("socket")
                sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")  # fmt: skip
                raw.writer.transport.abort()
        deadline = time.monotonic() + 5
        while True:
            welcome, code = await hello_on_a_new_socket(srv, tok)
            if welcome["type"] == "welcome" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert welcome["type"] == "welcome", (welcome, code)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(32):
            await stack.enter_async_context(connect(srv, tok))


async def test_a_shop_of_many_operators_is_not_capped_as_one_user(srv: ServerProcess) -> None:
    shop = uid("shop")
    async with contextlib.AsyncExitStack() as stack:
        for n in range(40):
            await stack.enter_async_context(connect(srv, token("seller", f"op-{n}", seller=shop)))
    metrics = httpx.get(srv.http + "/metrics", timeout=5).text
    assert "chatd_connections" in metrics
