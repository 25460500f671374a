"""Authentication over real sockets (docs/protocol.md section 2): the first frame must be a valid
`hello` within 10 s, else `error{code:"unauthorized"}` and close 4001; a token that expires
during the connection closes it with 4001."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import jwt
import msgspec
import pytest
import websockets

from tests.e2e.harness import (
    SECRET,
    ServerProcess,
    close_code,
    connect,
    module_server,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "auth") as process:
        yield process


def _encode(frame: Any, binary: bool) -> str | bytes:
    return msgspec.msgpack.encode(frame) if binary else json.dumps(frame)


def _decode(data: str | bytes, binary: bool) -> dict[str, Any]:
    assert isinstance(data, bytes if binary else str), data
    return msgspec.msgpack.decode(data) if binary else json.loads(data)  # type: ignore[no-any-return]


async def refused(
    srv: ServerProcess, first: Any, *, binary: bool = False, rid: str | None = None
) -> None:
    """Sends `first` as the first frame and expects `unauthorized`, then close 4001."""
    protocol = "chatd.v1.msgpack" if binary else "chatd.v1.json"
    async with websockets.connect(srv.url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(first if isinstance(first, str | bytes) else _encode(first, binary))
        error = _decode(await asyncio.wait_for(ws.recv(), 5), binary)
        assert error["type"] == "error", error
        assert error["code"] == "unauthorized", error
        assert isinstance(error["message"], str) and error["message"]
        assert set(error) <= {"type", "id", "code", "message", "details"}
        if rid is not None:
            assert error.get("id") == rid, error
        assert await close_code(ws) == 4001


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": uid("buyer"),
        "role": "buyer",
        "name": "Покупатель",
        "exp": int(time.time()) + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


BAD_TOKENS: dict[str, str] = {
    "wrong_secret": token("buyer", "b-wrong", secret="another-secret-" + "y" * 24),
    "expired": jwt.encode(_claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"),
    "without_exp": jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
    "without_sub": jwt.encode(_claims(sub=None), SECRET, algorithm="HS256"),
    "without_role": jwt.encode(_claims(role=None), SECRET, algorithm="HS256"),
    "unknown_role": jwt.encode(_claims(role="admin"), SECRET, algorithm="HS256"),
    "seller_without_shop": jwt.encode(_claims(role="seller"), SECRET, algorithm="HS256"),
    "alg_none": jwt.encode(_claims(), None, algorithm="none"),
    "hs256_other_key": jwt.encode(_claims(), SECRET + "!", algorithm="HS256"),
    "not_a_jwt": "not-a-token",
    "system_role": token("system", "marketplace"),
}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("bad", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_bad_token_is_refused_with_4001(srv: ServerProcess, bad: str, binary: bool) -> None:
    await refused(srv, {"type": "hello", "token": bad, "id": "h1"}, binary=binary, rid="h1")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_first_frame_not_hello(srv: ServerProcess, binary: bool) -> None:
    await refused(srv, {"type": "ping", "id": "p1"}, binary=binary, rid="p1")


@pytest.mark.parametrize(
    "first",
    [
        {"type": "send", "chat": "c1", "text": "привет"},
        {"type": "open", "seller": "shop1"},
        {"type": "hello"},
        {"type": "hello", "token": ""},
        {"type": "hello", "token": 42},
        {"token": token("buyer", "b-typeless")},
        "{not json",
        "[]",
    ],
    ids=["send", "open", "hello_without_token", "empty_token", "token_not_string", "no_type",
         "malformed", "array"],
)  # fmt: skip
async def test_first_frame_not_a_valid_hello(srv: ServerProcess, first: Any) -> None:
    await refused(srv, first)


async def test_first_frame_garbage_msgpack(srv: ServerProcess) -> None:
    await refused(srv, b"\xc1\xc1", binary=True)


async def test_welcome_is_not_sent_before_a_refusal(srv: ServerProcess) -> None:
    async with websockets.connect(srv.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "token": BAD_TOKENS["expired"]}))
        frames: list[dict[str, Any]] = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        except websockets.ConnectionClosed:
            pass
        assert [f["type"] for f in frames] == ["error"], frames
        assert ws.close_code == 4001


@pytest.mark.timeout(60)
async def test_no_hello_within_10_seconds(srv: ServerProcess) -> None:
    async with websockets.connect(srv.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        started = time.monotonic()
        error = json.loads(await asyncio.wait_for(ws.recv(), 15))
        waited = time.monotonic() - started
        assert error["type"] == "error" and error["code"] == "unauthorized", error
        assert 9.0 <= waited <= 12.0, waited
        assert await close_code(ws) == 4001


async def test_hello_a_little_late_is_still_accepted(srv: ServerProcess) -> None:
    async with websockets.connect(srv.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        await asyncio.sleep(1.5)
        await ws.send(json.dumps({"type": "hello", "token": token("buyer", uid("buyer"))}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome", welcome


@pytest.mark.timeout(60)
async def test_token_expiring_during_the_connection_closes_it(srv: ServerProcess) -> None:
    buyer = uid("buyer")
    async with connect(srv, token("buyer", buyer, ttl=2)) as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        await asyncio.wait_for(client.closed.wait(), 8)
        assert client.close_code == 4001
    # A fresh token gets back in.
    async with connect(srv, token("buyer", buyer)) as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"


async def test_hello_twice_does_not_reauthenticate(srv: ServerProcess) -> None:
    async with connect(srv, token("buyer", uid("buyer"))) as client:
        other = token("buyer", uid("buyer"))
        reply = await client.request({"type": "hello", "token": other})
        assert reply["type"] == "error", reply
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        opened = await client.request({"type": "open", "seller": uid("shop")})
        (event,) = await client.wait_events(1)
        assert event["chat"] == opened["chat"]
        assert event["data"]["buyer"]["id"] == client.welcome["user"]["id"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_welcome_shape(srv: ServerProcess, binary: bool) -> None:
    shop = uid("shop")
    operator = uid("op")
    async with connect(srv, token("seller", operator, "Анна", seller=shop), binary=binary) as c:
        welcome = c.welcome
    assert set(welcome) == {
        "type",
        "session",
        "user",
        "protocol",
        "version",
        "server_time",
        "cursor",
    }, welcome
    # Version 1.1 only adds: `protocol` stays 1, `version` names the addition.
    assert (welcome["protocol"], welcome["version"]) == (1, "1.1")
    assert welcome["user"] == {"id": operator, "role": "seller", "name": "Анна", "seller": shop}
    assert isinstance(welcome["session"], str) and welcome["session"]
    assert isinstance(welcome["cursor"], str) and welcome["cursor"]
    buyer = uid("buyer")
    async with connect(srv, token("buyer", buyer, "Люда"), binary=binary) as c:
        assert c.welcome["user"] == {"id": buyer, "role": "buyer", "name": "Люда"}
        assert c.welcome.get("protocol") == 1


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_times_are_rfc3339_utc_strings(srv: ServerProcess, binary: bool) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(srv, token("buyer", buyer), binary=binary) as client:
        server_time = client.welcome["server_time"]
        assert isinstance(server_time, str), repr(server_time)
        assert RFC3339_UTC.match(server_time), server_time
        await client.request({"type": "open", "seller": shop})
        (event,) = await client.wait_events(1)
        assert isinstance(event["at"], str), repr(event["at"])
        assert RFC3339_UTC.match(event["at"]), event["at"]
