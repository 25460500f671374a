"""`hello.since` with a cursor the server cannot place (docs/protocol.md section 5): `welcome`,
then `error{code:"bad_cursor"}`, no `synced`, and live events after `welcome.cursor`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.harness import ServerProcess, connect, module_server, token, uid

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "cursor") as process:
        yield process


@pytest.fixture(scope="module")
def other_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "cursor-other") as process:
        yield process


class Raw:
    """A socket whose `hello` is written by hand (to carry an `id`)."""

    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        self.ws = ws
        self.binary = binary

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(msgspec.msgpack.encode(frame) if self.binary else json.dumps(frame))

    async def recv(self, wait: float = 5) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), wait)
        return msgspec.msgpack.decode(data) if self.binary else json.loads(data)  # type: ignore[no-any-return]

    async def quiet(self, wait: float = 0.25) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                frames.append(await self.recv(wait))
        return frames


@contextlib.asynccontextmanager
async def raw(server: ServerProcess, binary: bool = False) -> AsyncIterator[Raw]:
    protocol = "chatd.v1.msgpack" if binary else "chatd.v1.json"
    async with websockets.connect(server.url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        yield Raw(ws, binary)


async def activity(server: ServerProcess, messages: int = 2) -> str:
    """A chat with a few messages; the cursor of its last event."""
    buyer = uid("buyer")
    async with connect(server, token("buyer", buyer)) as client:
        chat = (await client.request({"type": "open", "seller": uid("shop")}))["chat"]
        for n in range(messages):
            await client.request({"type": "send", "chat": chat, "text": f"сообщение {n}"})
        events = await client.wait_events(messages + 1)
        return str(events[-1]["cursor"])


async def assert_bad_cursor_then_live(
    srv: ServerProcess, since: str, *, binary: bool = False
) -> None:
    shop = uid("shop")
    async with raw(srv, binary) as seller:
        tok = token("seller", uid("op"), "Анна", seller=shop)
        await seller.send({"type": "hello", "token": tok, "since": since, "id": "h1"})
        welcome = await seller.recv()
        assert welcome["type"] == "welcome", welcome
        error = await seller.recv()
        assert error["type"] == "error" and error["code"] == "bad_cursor", error
        assert error.get("id") == "h1", error
        assert isinstance(error["message"], str) and error["message"]
        assert await seller.quiet() == []
        # Live events after welcome.cursor still arrive.
        async with connect(srv, token("buyer", uid("buyer"))) as buyer:
            opened = await buyer.request({"type": "open", "seller": shop})
            sent = await buyer.request({"type": "send", "chat": opened["chat"], "text": "Алло"})
            assert sent["type"] == "ack", sent
        frames = [await seller.recv(), await seller.recv()]
        assert [(f["type"], f.get("kind"), f.get("seq")) for f in frames] == [
            ("event", "chat.opened", 1),
            ("event", "message", 2),
        ], frames
        assert frames[1]["text"] == "Алло"
        assert [f for f in await seller.quiet() if f["type"] == "synced"] == []
        # The connection works as any other.
        await seller.send({"type": "ping", "id": "p"})
        assert await seller.recv() == {"type": "pong", "id": "p"}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize(
    "since",
    ["garbage", "", ".", "0", "ffffffffffffffff.1", "not a cursor at all \u2603", "x" * 200],
    ids=["word", "empty", "dot", "zero", "foreign_shape", "unicode", "long"],
)
async def test_garbage_cursor(srv: ServerProcess, since: str, binary: bool) -> None:
    await assert_bad_cursor_then_live(srv, since, binary=binary)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_cursor_of_another_servers_database(
    srv: ServerProcess, other_srv: ServerProcess, binary: bool
) -> None:
    # Both logs hold events, so the position the foreign cursor names exists here as well:
    # only the log it came from tells the cursors apart.
    await activity(srv, 4)
    foreign_event_cursor = await activity(other_srv, 2)
    async with connect(other_srv, token("buyer", uid("buyer"))) as elsewhere:
        foreign_welcome_cursor = elsewhere.welcome["cursor"]
    for since in (foreign_welcome_cursor, foreign_event_cursor):
        await assert_bad_cursor_then_live(srv, since, binary=binary)


async def test_own_cursor_replays_then_synced(srv: ServerProcess) -> None:
    """The control: a cursor of this server gets the missed events, then `synced`."""
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(srv, token("buyer", buyer)) as client:
        since = client.welcome["cursor"]
        chat = (await client.request({"type": "open", "seller": shop}))["chat"]
        await client.request({"type": "send", "chat": chat, "text": "пока вас не было"})
        await client.wait_events(2)
    async with raw(srv) as again:
        await again.send({"type": "hello", "token": token("buyer", buyer), "since": since})
        frames = [await again.recv() for _ in range(4)]
        assert [f["type"] for f in frames] == ["welcome", "event", "event", "synced"], frames
        assert [f["seq"] for f in frames[1:3]] == [1, 2]
        assert frames[3]["cursor"] == frames[2]["cursor"]
