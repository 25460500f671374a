"""Limits over real sockets (docs/protocol.md sections 1 and 9): frames over 64 KiB close with
1009; the per-connection rate limit answers `rate_limited` with `details.retry_after` and a
refused frame is neither processed nor charged; the Origin check of browser upgrades."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    module_server,
    start_server,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "limits") as process:
        yield process


@pytest.fixture(scope="module")
def listed_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("limits-origin")) / "chatd.db"
    process = start_server(db, "--allow-origin", "https://shop.example")
    try:
        yield process
    finally:
        process.stop()


# ---- frame size ----------------------------------------------------------------------------


def json_ping_of_size(size: int) -> str:
    base = json.dumps({"type": "ping", "id": "big", "pad": ""})
    frame = json.dumps({"type": "ping", "id": "big", "pad": "a" * (size - len(base))})
    assert len(frame.encode()) == size
    return frame


def msgpack_ping_over(size: int) -> bytes:
    return msgspec.msgpack.encode({"type": "ping", "id": "big", "pad": b"\0" * size})


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_frame_over_64_kib_closes_with_1009(srv: ServerProcess, binary: bool) -> None:
    async with connect(srv, token("buyer", uid("buyer")), binary=binary) as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        payload = msgpack_ping_over(LIMIT) if binary else json_ping_of_size(70_000)
        await client.send_raw(payload)
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code == 1009


async def test_frame_of_exactly_64_kib_passes(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        await client.send_raw(json_ping_of_size(LIMIT))
        assert await client.next_frame() == {"type": "pong", "id": "big"}


async def test_frame_of_64_kib_and_one_byte_closes_with_1009(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        await client.send_raw(json_ping_of_size(LIMIT + 1))
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code == 1009


async def test_msgpack_frame_under_the_limit_passes(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer")), binary=True) as client:
        await client.send_raw(msgpack_ping_over(LIMIT - 1024))
        assert await client.next_frame() == {"type": "pong", "id": "big"}


# ---- rate limit ----------------------------------------------------------------------------


async def fire(client: Client, frames: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sends every frame at once, then waits for the answer to each id."""
    for frame in frames:
        await client.send_raw(client.encode(frame))
    answers: dict[str, dict[str, Any]] = {}
    wanted = {frame["id"] for frame in frames}
    while wanted - answers.keys():
        frame = await client.next_frame(timeout=10)
        if frame.get("type") in ("event", "read"):
            continue
        assert frame.get("id") in wanted, frame
        assert frame["id"] not in answers, ("answered twice", frame)
        answers[frame["id"]] = frame
    return answers


def assert_rate_limited(frame: dict[str, Any], rid: str) -> float:
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame
    assert frame["id"] == rid
    retry_after = frame["details"]["retry_after"]
    assert isinstance(retry_after, int | float) and not isinstance(retry_after, bool)
    assert retry_after > 0, frame
    return float(retry_after)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_sixty_pings_at_once_are_partly_rate_limited(
    srv: ServerProcess, binary: bool
) -> None:
    async with connect(srv, token("buyer", uid("buyer")), binary=binary) as client:
        ids = [f"p{n}" for n in range(60)]
        answers = await fire(client, [{"type": "ping", "id": rid} for rid in ids])
        pongs = [rid for rid in ids if answers[rid]["type"] == "pong"]
        limited = [rid for rid in ids if answers[rid]["type"] != "pong"]
        for rid in pongs:
            assert answers[rid] == {"type": "pong", "id": rid}
        waits = [assert_rate_limited(answers[rid], rid) for rid in limited]
        assert limited, "60 frames at once must exceed the burst of 40"
        assert len(pongs) >= 40, len(pongs)
        # The burst passes first; what is refused comes after it.
        assert pongs[:40] == ids[:40]
        # After the last refusal's retry_after, a frame passes: refusals spent nothing.
        await asyncio.sleep(waits[-1] + 0.01)
        after = await fire(client, [{"type": "ping", "id": "after"}])
        assert after["after"] == {"type": "pong", "id": "after"}


async def test_refused_frames_spend_no_budget(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        first = await fire(client, [{"type": "ping", "id": f"a{n}"} for n in range(100)])
        refused = [f for f in first.values() if f["type"] == "error"]
        assert len(refused) >= 50, len(refused)
        # One second refills 20 frames. Had the 50+ refusals been charged, the bucket would
        # still be deep in debt and nearly everything below would be refused too.
        await asyncio.sleep(1.0)
        second = await fire(client, [{"type": "ping", "id": f"b{n}"} for n in range(25)])
        passed = [f for f in second.values() if f["type"] == "pong"]
        assert len(passed) >= 19, len(passed)


async def test_rate_limited_sends_write_nothing(srv: ServerProcess) -> None:
    shop = uid("shop")
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        chat = (await client.request({"type": "open", "seller": shop}))["chat"]
        await asyncio.sleep(0.2)
        frames = [
            {"type": "send", "id": f"s{n}", "chat": chat, "text": f"сообщение {n}"}
            for n in range(80)
        ]
        answers = await fire(client, frames)
        acked = [rid for rid, f in answers.items() if f["type"] == "ack"]
        refused = [rid for rid, f in answers.items() if f["type"] != "ack"]
        for rid in refused:
            assert_rate_limited(answers[rid], rid)
        assert refused, "80 frames at once must exceed the burst of 40"
        await asyncio.sleep(0.5)
        page = await client.request({"type": "history", "chat": chat, "limit": 100})
        texts = [e["text"] for e in page["events"] if e["kind"] == "message"]
        assert sorted(texts) == sorted(f"сообщение {rid[1:]}" for rid in acked)
        assert [e["seq"] for e in page["events"]] == list(range(1, len(acked) + 2))


# ---- Origin --------------------------------------------------------------------------------


async def upgrade_refused(server: ServerProcess, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(server.url, origin=origin):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def upgrade_accepted(server: ServerProcess, origin: str | None) -> None:
    async with websockets.connect(server.url, origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "token": token("buyer", uid("buyer"))}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:{other}",
        "http://127.0.0.1",
        "http://localhost:{port}",
        "http://127.0.0.1.evil.example:{port}",
    ],
    ids=["evil", "null", "other_port", "default_port", "other_host_name", "suffix"],
)
async def test_foreign_origin_is_refused_with_403(srv: ServerProcess, origin: str) -> None:
    await upgrade_refused(srv, origin.format(port=srv.port, other=srv.port + 1))


@pytest.mark.parametrize(
    "origin",
    [None, "http://127.0.0.1:{port}", "https://127.0.0.1:{port}"],
    ids=["none", "same_host_and_port", "same_host_and_port_https"],
)
async def test_same_origin_or_none_is_accepted(srv: ServerProcess, origin: str | None) -> None:
    await upgrade_accepted(srv, origin.format(port=srv.port) if origin else None)


async def test_allow_origin_is_an_exact_list(listed_srv: ServerProcess) -> None:
    await upgrade_accepted(listed_srv, "https://shop.example")
    await upgrade_accepted(listed_srv, None)
    await upgrade_refused(listed_srv, "http://shop.example")
    await upgrade_refused(listed_srv, "https://shop.example:8443")
    await upgrade_refused(listed_srv, f"http://127.0.0.1:{listed_srv.port}")
