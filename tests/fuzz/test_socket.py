"""Bad input over real sockets to a real `chatd serve`: a thousand broken frames get a
thousand `bad_frame` answers, write nothing, leave the socket open, and cost the server's log
one line per connection."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.harness import ServerProcess, connect, drain, next_reply, start_server, token, uid
from tests.fuzz.strategies import FRAMES, encode

pytestmark = pytest.mark.timeout(120)

LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("socket-fuzz")) / "chatd.db"
    process = start_server(db, *LIFTED, "--log-level", "info")
    try:
        yield process
    finally:
        process.stop()


def broken_payloads(count: int, subprotocol: str, seed: int) -> list[bytes]:
    """`count` frames that do not decode: damaged encodings of valid frames, random bytes,
    unknown types, wrong field types, deep nesting."""
    rng = random.Random(seed)
    payloads: list[bytes] = []
    tags = sorted(FRAMES)
    while len(payloads) < count:
        tag = rng.choice(tags)
        frame: dict[str, object] = {"type": tag, "id": f"bad-{len(payloads)}"}
        for name in FRAMES[tag]:
            frame[name] = rng.choice([1, "x", None, [], {}, -1, 2**60, True])
        raw = encode(frame, subprotocol)
        how = len(payloads) % 5
        if how == 0:
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            raw = bytes(data)
        elif how == 1:
            raw = rng.randbytes(rng.randint(0, 200))
        elif how == 2:
            raw = encode({"type": f"no.such.{rng.randint(0, 999)}", "id": "u"}, subprotocol)
        elif how == 3:
            raw = encode(
                {"type": "send", "chat": rng.choice([1, [], None]), "text": "x"}, subprotocol
            )
        else:
            raw = b"[" * 5000 + b"]" * 5000 if subprotocol == "chatd.v1.json" else b"\x91" * 5000
        if CODEC_CHECK[subprotocol](raw):
            payloads.append(raw)
    return payloads


def _json_rejects(raw: bytes) -> bool:
    from protocol.codec import CODECS, DecodeError

    return isinstance(CODECS["chatd.v1.json"].decode_client(raw), DecodeError)


def _msgpack_rejects(raw: bytes) -> bool:
    from protocol.codec import CODECS, DecodeError

    return isinstance(CODECS["chatd.v1.msgpack"].decode_client(raw), DecodeError)


CODEC_CHECK = {"chatd.v1.json": _json_rejects, "chatd.v1.msgpack": _msgpack_rejects}


async def send_frame(ws: ClientConnection, payload: bytes, subprotocol: str) -> None:
    """JSON in a text frame when it is UTF-8 (else in a binary frame); MessagePack binary."""
    if subprotocol == "chatd.v1.json":
        try:
            await ws.send(payload.decode())
            return
        except UnicodeDecodeError:
            pass
    await ws.send(payload)


def bad_frame_lines(server: ServerProcess) -> list[str]:
    assert server.log_path is not None
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if "bad frame" in line]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_a_thousand_bad_frames_get_a_thousand_bad_frame_answers_and_write_nothing(
    srv: ServerProcess, binary: bool
) -> None:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    subprotocol = "chatd.v1.msgpack" if binary else "chatd.v1.json"
    async with (
        connect(srv, token("buyer", buyer_id), binary=binary, read=False) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop_id), binary=binary) as shop,
    ):
        await buyer.send_raw(buyer.encode({"type": "open", "seller": shop_id, "id": "o"}))
        chat = (await next_reply(buyer))["chat"]
        await shop.wait_events(1)
        await drain(shop, 0.05)
        payloads = broken_payloads(1000, subprotocol, seed=7 if binary else 11)
        for payload in payloads:
            await send_frame(buyer.ws, payload, subprotocol)
        for _ in payloads:
            reply = await next_reply(buyer, wait=10)
            assert reply["type"] == "error" and reply["code"] == "bad_frame", reply
        await buyer.send_raw(buyer.encode({"type": "history", "chat": chat, "id": "h"}))
        history = await next_reply(buyer)
        assert [e["seq"] for e in history["events"]] == [1]
        assert await drain(shop, 0.2) == [], "bad frames reached the other side"


async def test_bad_frames_on_many_connections_log_one_line_per_connection(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "flood.db", *LIFTED, "--log-level", "info")
    try:
        async with (
            connect(server, token("buyer", uid("buyer")), read=False) as first,
            connect(server, token("buyer", uid("buyer")), binary=True, read=False) as second,
            connect(server, token("seller", uid("op"), seller=uid("shop")), read=False) as third,
        ):
            for client, subprotocol in (
                (first, "chatd.v1.json"),
                (second, "chatd.v1.msgpack"),
                (third, "chatd.v1.json"),
            ):
                for payload in broken_payloads(1000, subprotocol, seed=3):
                    await send_frame(client.ws, payload, subprotocol)
                for _ in range(1000):
                    assert (await next_reply(client, wait=10))["code"] == "bad_frame"
        await asyncio.sleep(0.2)
        assert len(bad_frame_lines(server)) == 3, bad_frame_lines(server)
        assert server.log_path is not None
        text = server.log_path.read_text(errors="replace")
        assert "Traceback" not in text
        assert len(text.splitlines()) < 20, text
    finally:
        server.stop()


async def test_invalid_utf8_in_a_text_frame_fails_the_connection_with_1007(
    srv: ServerProcess,
) -> None:
    """A text frame must be UTF-8 (RFC 6455 8.1): the WebSocket layer fails the connection
    before any frame reaches chatd, and the server goes on serving."""
    async with connect(srv, token("buyer", uid("buyer")), read=False) as client:
        await client.ws.send(b'{"type":"ping","id":"\xff"}', text=True)
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv(5)
        assert client.ws.close_code == 1007
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"


async def test_json_in_a_binary_frame_with_bad_utf8_is_a_bad_frame(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer")), read=False) as client:
        await client.ws.send(b'{"type":"send","chat":"c1","text":"\xff\xfe"}')
        reply = await next_reply(client)
        assert reply["type"] == "error" and reply["code"] == "bad_frame", reply
        await client.send_raw(json.dumps({"type": "ping", "id": "p"}))
        assert await next_reply(client) == {"type": "pong", "id": "p"}


async def test_a_msgpack_text_frame_is_a_bad_frame(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer")), binary=True, read=False) as client:
        await client.ws.send(json.dumps({"type": "ping", "id": "t"}))
        reply = await next_reply(client)
        assert reply["type"] == "error" and reply["code"] == "bad_frame", reply
        await client.send_raw(msgspec.msgpack.encode({"type": "ping", "id": "p"}))
        assert await next_reply(client) == {"type": "pong", "id": "p"}
