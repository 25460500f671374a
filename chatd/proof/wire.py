"""A lean client of the wire contract for the proof programs: JSON frames, replies matched by
`id`, pushed events handed to a callback. It does what it is told and no more: no reconnects,
no retries (the programs decide what a lost socket means)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]


class Wire:
    def __init__(
        self, ws: ClientConnection, on_push: Callable[[Frame, float], None] | None = None
    ) -> None:
        self.ws = ws
        self.welcome: Frame = {}
        self._on_push = on_push
        self._replies: dict[str, asyncio.Future[Frame]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for data in self.ws:
                frame: Frame = json.loads(data)
                rid = frame.get("id")
                if isinstance(rid, str) and rid in self._replies:
                    future = self._replies.pop(rid)
                    if not future.done():
                        future.set_result(frame)
                elif self._on_push is not None:
                    self._on_push(frame, loop.time())
        except (websockets.ConnectionClosed, OSError):
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("the socket closed"))
            self._replies.clear()

    async def request(self, frame: Frame, within: float = 30.0) -> Frame:
        """Sends `frame` with a fresh `id` and returns its answer. Raises ConnectionError
        when the socket closes first."""
        rid = f"r{next(self._ids)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        try:
            await self.ws.send(json.dumps({**frame, "id": rid}))
        except websockets.ConnectionClosed as exc:
            self._replies.pop(rid, None)
            raise ConnectionError("the socket closed") from exc
        return await asyncio.wait_for(future, within)

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


@contextlib.asynccontextmanager
async def wire(
    url: str,
    token: str,
    *,
    since: str | None = None,
    on_push: Callable[[Frame, float], None] | None = None,
    **options: Any,
) -> AsyncIterator[Wire]:
    """An authenticated socket (the `welcome` read); with `since`, the replay is pushed."""
    ws = await websockets.connect(url, subprotocols=["chatd.v1.json"], open_timeout=10, **options)  # type: ignore[list-item]
    client = Wire(ws, on_push)
    try:
        hello: Frame = {"type": "hello", "token": token}
        if since is not None:
            hello["since"] = since
        await ws.send(json.dumps(hello))
        client.welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if client.welcome.get("type") != "welcome":
            raise ConnectionError(f"refused: {client.welcome}")
        client.start()
        yield client
    finally:
        await client.close()
