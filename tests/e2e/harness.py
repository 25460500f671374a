"""A real `chatd serve` process on a free loopback port, and a small WebSocket client that
talks to it as an outside program would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from chatd import auth
from chatd.launcher import Server

SECRET = "e2e-secret-" + "x" * 24


@dataclass
class ServerProcess(Server):
    """`chatd serve` with the tests' secret."""

    secret: str = SECRET


def token(
    role: str,
    sub: str,
    name: str | None = None,
    *,
    seller: str | None = None,
    ttl: float = 3600,
    secret: str = SECRET,
) -> str:
    return auth.issue(
        secret,
        role=role,
        sub=sub,
        name=name or sub,
        seller=seller,  # type: ignore[arg-type]
        ttl=ttl,
    )


class Client:
    """One socket of one user. Replies are matched by `id`; events queue up in order."""

    def __init__(self, ws: ClientConnection, binary: bool = False) -> None:
        self.ws = ws
        self.binary = binary
        self.welcome: dict[str, Any] = {}
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.events: list[dict[str, Any]] = []
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()

    def encode(self, frame: dict[str, Any]) -> str | bytes:
        return msgspec.msgpack.encode(frame) if self.binary else json.dumps(frame)

    def decode(self, data: str | bytes) -> dict[str, Any]:
        if self.binary:
            return msgspec.msgpack.decode(data)  # type: ignore[no-any-return]
        return json.loads(data)  # type: ignore[no-any-return]

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        return self.decode(await asyncio.wait_for(self.ws.recv(), timeout))

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = self.decode(data)
                rid = frame.get("id")
                if rid is not None and rid in self._replies:
                    self._replies.pop(rid).set_result(frame)
                    continue
                if frame.get("type") == "event":
                    self.events.append(frame)
                await self.frames.put(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        rid = uuid.uuid4().hex[:12]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        await self.ws.send(self.encode({**frame, "id": rid}))
        return await asyncio.wait_for(future, timeout)

    async def next_frame(self, type_: str | None = None, timeout: float = 5) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), timeout)
            if type_ is None or frame.get("type") == type_:
                return frame

    async def wait_events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.events)} events of {count}")
            await asyncio.sleep(0.01)
        return self.events

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


@contextlib.asynccontextmanager
async def connect(
    server: ServerProcess,
    tok: str,
    *,
    since: str | None = None,
    binary: bool = False,
    read: bool = True,
) -> AsyncIterator[Client]:
    subprotocols = ["chatd.v1.msgpack" if binary else "chatd.v1.json"]
    async with websockets.connect(server.url, subprotocols=subprotocols) as ws:  # type: ignore[list-item]
        client = Client(ws, binary)
        hello: dict[str, Any] = {"type": "hello", "token": tok}
        if since is not None:
            hello["since"] = since
        await ws.send(client.encode(hello))
        client.welcome = await client.recv()
        assert client.welcome["type"] == "welcome", client.welcome
        if read:
            client.start_reading()
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.close()


def register_order(server: ServerProcess, order: dict[str, Any]) -> httpx.Response:
    system = token("system", "marketplace")
    return httpx.post(
        server.http + "/api/v1/orders",
        json=order,
        headers={"Authorization": f"Bearer {system}"},
        timeout=10,
    )


def order_body(order_id: str, buyer: str, shop: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": order_id,
        "buyer": {"id": buyer, "name": buyer.title()},
        "seller": {"id": shop, "name": "Shop " + shop},
        "article": "140158860",
        "name": "Юбка короткая плиссе со складками",
        "brand": "SK - Line",
        "size": "S",
        "color": "черный",
        "price": {"value": 118600, "currency": "RUB"},
        "purchased_at": "2023-08-10T09:00:00Z",
        "received_at": "2023-08-17T09:00:00Z",
        "non_returnable": False,
    }
    body.update(overrides)
    return body


# ---- helpers for the contract suites ---------------------------------------------------------


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def uid(prefix: str) -> str:
    """A user, shop or order id that no other test uses."""
    # Letters only: a run of random digits in a message text can read as a phone number,
    # and the contacts filter then refuses the message.
    return f"{prefix}-{uuid.uuid4().hex[:10].translate(_NO_DIGITS)}"


def start_server(db: Path, *extra_args: str) -> ServerProcess:
    process = ServerProcess(db=db, extra_args=extra_args)
    process.start()
    return process


@contextlib.contextmanager
def module_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, *extra_args: str
) -> Iterator[ServerProcess]:
    """A `chatd serve` on a fresh database, for the server fixture of one test module."""
    process = start_server(Path(tmp_path_factory.mktemp(name)) / "chatd.db", *extra_args)
    try:
        yield process
    finally:
        process.stop()


async def next_reply(client: Client, wait: float = 5) -> dict[str, Any]:
    """The next frame on a socket opened with `read=False` that is not one the server sends
    unasked (`event`, `read`, `typing`, `presence`)."""
    while True:
        frame = await client.recv(wait)
        if frame.get("type") not in ("event", "read", "typing", "presence"):
            return frame


async def drain(client: Client, quiet_for: float = 0.3) -> list[dict[str, Any]]:
    """Every frame a reading client got so far, after `quiet_for` seconds of waiting."""
    await asyncio.sleep(quiet_for)
    frames: list[dict[str, Any]] = []
    while not client.frames.empty():
        frames.append(client.frames.get_nowait())
    return frames


async def close_code(ws: ClientConnection, wait: float = 5) -> int | None:
    """Waits until the server closes `ws` (discarding what arrives) and returns the code."""

    async def consume() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    await asyncio.wait_for(consume(), wait)
    return ws.close_code


async def open_claim(
    server: ServerProcess, buyer: Client, buyer_id: str, shop: str, order_id: str
) -> tuple[str, str]:
    """Registers an order received long ago, opens the buyer's chat with it and requests its
    return; (chat, claim)."""
    response = register_order(server, order_body(order_id, buyer_id, shop))
    assert response.status_code == 201, response.text
    opened = await buyer.request({"type": "open", "seller": shop, "order": order_id})
    assert opened["type"] == "ack", opened
    requested = await buyer.request(
        {"type": "return.request", "chat": opened["chat"], "order": order_id}
    )
    assert requested["type"] == "ack" and requested.get("claim"), requested
    return opened["chat"], requested["claim"]


# ---- helpers for the returns suites ----------------------------------------------------------


def post_logistics(
    server: ServerProcess, order_id: str, event: str, defect: bool | None = None
) -> httpx.Response:
    """`POST /api/v1/orders/{id}/logistics` as the marketplace back end."""
    body: dict[str, Any] = {"event": event}
    if defect is not None:
        body["defect"] = defect
    return httpx.post(
        f"{server.http}/api/v1/orders/{order_id}/logistics",
        json=body,
        headers={"Authorization": f"Bearer {token('system', 'marketplace')}"},
        timeout=10,
    )


def get_balances(server: ServerProcess, tok: str) -> list[dict[str, Any]]:
    """`GET /api/v1/balance`: the `balances` list of the token's buyer or shop."""
    response = httpx.get(
        server.http + "/api/v1/balance", headers={"Authorization": f"Bearer {tok}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["balances"]  # type: ignore[no-any-return]


def get_sales_rows(server: ServerProcess, tok: str) -> list[dict[str, Any]]:
    """`GET /api/v1/reports/sales`: the `rows` of the token's shop."""
    response = httpx.get(
        server.http + "/api/v1/reports/sales",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["rows"]  # type: ignore[no-any-return]


async def chat_events(
    client: Client, chat: str, count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    """The events of `chat` a reading client got, once there are at least `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in client.events if e.get("chat") == chat]
        if len(events) >= count:
            return events
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(events)} events of chat {chat}, expected {count}")
        await asyncio.sleep(0.01)


def without_session(frame: dict[str, Any]) -> dict[str, Any]:
    """An error frame as tests compare it: without `details.session`, the connection's id
    that every error frame of a socket carries (and without `details` when that was all)."""
    details = {k: v for k, v in (frame.get("details") or {}).items() if k != "session"}
    rest = {k: v for k, v in frame.items() if k != "details"}
    return {**rest, "details": details} if details else rest
