"""A connection that ends leaves nothing for the garbage collector.

Objects freed by reference counting go at once; objects in a reference cycle wait for a
collection, and a collection's pause grows with what it has to walk. Under a long run's
reconnects, each closed WebSocket left its whole object graph in cycles (uvicorn's
protocols, the transport, websockets' state machine, chatd's wire: about a hundred objects),
and the collector's pauses grew to hundreds of milliseconds (`chatd.proof.long_run`).

The server runs here in the test's own process, on uvloop as `chatd serve` runs, so that
the collector's findings can be counted: sockets of every ending (closed by the client,
refused by the server, dropped without a close frame) and plain HTTP requests, then one
collection that saves what it finds instead of freeing it.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from chatd.client.tokens import mint
from chatd.domain.rules import DEFAULT_RULES
from chatd.process.assemble import assemble
from chatd.process.server import uvicorn_config

SECRET = "garbage-test-secret-of-at-least-32-bytes"
SHOP = "shop-garbage"
# Objects of the server's side of a connection. The client runs in the same process and
# its own objects (websockets' client, the transports of its sockets) are not counted.
SERVER_MODULES = ("uvicorn.", "chatd.", "starlette.", "websockets.server")
ROUNDS = 8


def test_ended_connections_leave_no_reference_cycles(tmp_path: Path) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        left = runner.run(_garbage_of_ended_connections(tmp_path))
    assert left == Counter(), f"objects of ended connections found only by the collector: {left}"


async def _garbage_of_ended_connections(tmp_path: Path) -> Counter[str]:
    chat_app = assemble(db=tmp_path / "chatd.db", secret=SECRET, rules=DEFAULT_RULES)
    config = uvicorn_config(
        chat_app, host="127.0.0.1", port=0, max_frame=65536, deflate=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        # Once before counting: what is made once (caches, the first chat) is not garbage.
        await _every_ending(server, port)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(ROUNDS):
                await _every_ending(server, port)
            gc.collect()
            return Counter(
                f"{type(thing).__module__}.{type(thing).__qualname__}"
                for thing in gc.garbage
                if type(thing).__module__.startswith(SERVER_MODULES)
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        server.should_exit = True
        await serving


async def _every_ending(server: uvicorn.Server, port: int) -> None:
    url = f"ws://127.0.0.1:{port}/ws"
    buyer = mint(SECRET, role="buyer", sub="buyer-garbage", name="Полина")
    seller = mint(SECRET, role="seller", sub="op-garbage", name="Анна", seller=SHOP)

    # A buyer writes to a shop whose operator is online: the write path and its fan-out;
    # both close normally.
    async with connect(url) as shop, connect(url) as client:
        await _hello(shop, seller)
        await _hello(client, buyer)
        opened = await _request(client, {"type": "open", "seller": SHOP})
        chat = opened["chat"]
        await _request(client, {"type": "send", "chat": chat, "text": "Где мой заказ?"})
        await _frame_of(shop, "event")

    # Refused by the server: a bad token closes the socket with 4001.
    async with connect(url) as refused:
        await refused.send(json.dumps({"type": "hello", "token": "not-a-token"}))
        await refused.wait_closed()
    assert refused.close_code == 4001

    # Dropped without a close frame, as a phone that loses its network.
    dropped = await connect(url)
    await _hello(dropped, buyer)
    dropped.transport.abort()

    # Plain HTTP, on a connection of its own each time.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200

    # The server's side of each connection ends after the client's: wait for it.
    async with asyncio.timeout(10):
        while server.server_state.connections:
            await asyncio.sleep(0.01)


async def _hello(socket: ClientConnection, token: str) -> None:
    await socket.send(json.dumps({"type": "hello", "token": token}))
    await _frame_of(socket, "welcome")


async def _request(socket: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await socket.send(json.dumps({**frame, "id": "r"}))
    return await _frame_of(socket, "ack")


async def _frame_of(socket: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await socket.recv())
            if frame["type"] == kind:
                return frame
            assert frame["type"] != "error", frame
