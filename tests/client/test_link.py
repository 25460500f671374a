"""What the client does when a socket drops with a request in flight, against a small
in-process server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chatd.client import Backoff, ConnectionLost, connect
from protocol import frames as f
from protocol.events import Money

pytestmark = pytest.mark.timeout(30)

WELCOME = {
    "type": "welcome",
    "session": "s",
    "user": {"id": "op", "role": "seller", "name": "Анна", "seller": "shop"},
    "protocol": 1,
    "server_time": "2024-01-01T00:00:00Z",
    "cursor": "log.0",
}
FAST = Backoff(initial=0.01, maximum=0.05, give_up_after=5)
Behaviour = Callable[[ServerConnection, dict[str, Any], int], Awaitable[None]]


@asynccontextmanager
async def fake_server(behaviour: Behaviour) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Says welcome to every hello, then hands `{"type": "connected"}` and each frame to
    `behaviour` with the number of the connection (1, 2, ...). Yields the URL and every hello
    it got."""
    hellos: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        hello = json.loads(await ws.recv())
        hellos.append(hello)
        number = len(hellos)
        await ws.send(json.dumps(WELCOME))
        await behaviour(ws, {"type": "connected"}, number)
        async for data in ws:
            await behaviour(ws, json.loads(data), number)

    async with serve(handler, "127.0.0.1", 0, subprotocols=["chatd.v1.json"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws", hellos


async def test_an_unrepeatable_request_in_flight_raises_and_the_client_comes_back() -> None:
    async def behaviour(ws: ServerConnection, frame: dict[str, Any], number: int) -> None:
        if frame["type"] == "connected":
            return
        if frame["type"] == "return.approve":
            await ws.close(1011, "crashed mid-request")
        elif frame["type"] == "ping":
            await ws.send(json.dumps({"type": "pong", "id": frame["id"]}))

    async with fake_server(behaviour) as (url, hellos), connect(url, "t", backoff=FAST) as chat:
        with pytest.raises(ConnectionLost) as lost:
            await chat.approve_return("r1", "pvz", Money(value=100, currency="RUB"))
        assert lost.value.maybe_applied
        assert isinstance(await chat.ping(), f.Pong)
        assert len(hellos) == 2 and chat.close_codes == [1011]


async def test_a_repeatable_request_in_flight_is_sent_again() -> None:
    async def behaviour(ws: ServerConnection, frame: dict[str, Any], number: int) -> None:
        if frame["type"] == "connected":
            return
        if number == 1:
            await ws.close(1012, "restarting")
            return
        reply = {"type": "ack", "id": frame["id"], "chat": "c1", "seq": 7, "cursor": "log.7"}
        await ws.send(json.dumps(reply))

    async with fake_server(behaviour) as (url, hellos), connect(url, "t", backoff=FAST) as chat:
        ack = await chat.send("c1", "текст", nonce="n1")
        assert (ack.chat, ack.seq) == ("c1", 7)
        assert len(hellos) == 2
        # The second hello resumes from the first connection's welcome cursor.
        assert hellos[1]["since"] == "log.0"


async def test_events_are_not_doubled_across_the_seam() -> None:
    def event(seq: int) -> str:
        return json.dumps(
            {
                "type": "event",
                "chat": "c1",
                "seq": seq,
                "cursor": f"log.{seq}",
                "at": "2024-01-01T00:00:00Z",
                "kind": "message",
                "author": {"role": "buyer", "id": "b", "name": "b"},
                "data": {"attachments": []},
                "text": f"m{seq}",
            }
        )

    async def behaviour(ws: ServerConnection, frame: dict[str, Any], number: int) -> None:
        if frame["type"] != "connected":
            return
        if number == 1:
            for seq in (1, 2, 3):
                await ws.send(event(seq))
            await ws.close(1013, "too slow")
        else:
            # A replay that starts earlier than it should must not reach the user twice.
            for seq in (2, 3, 4):
                await ws.send(event(seq))
            await ws.send(json.dumps({"type": "synced", "cursor": "log.4"}))

    async with fake_server(behaviour) as (url, hellos), connect(url, "t", backoff=FAST) as chat:
        seqs: list[int] = []
        async with asyncio.timeout(5):
            async for ev in chat.events():
                seqs.append(ev.seq)
                if ev.seq == 4:
                    break
        assert seqs == [1, 2, 3, 4]
        assert hellos[1]["since"] == "log.3"


async def test_a_close_that_forbids_reconnecting_ends_the_client() -> None:
    async def behaviour(ws: ServerConnection, frame: dict[str, Any], number: int) -> None:
        if frame["type"] != "connected":
            await ws.close(1008, "policy")

    async with fake_server(behaviour) as (url, hellos), connect(url, "t", backoff=FAST) as chat:
        with pytest.raises(ConnectionLost) as lost:
            await chat.ping()
        assert lost.value.close_code == 1008
        with pytest.raises(ConnectionLost):
            async for _ in chat.events():
                pass
        assert len(hellos) == 1
