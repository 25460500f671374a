"""Helpers for API keys over real HTTP and sockets: `/api/v1/keys` as an operator calls it,
requests with a key, and a socket opened with one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.harness import ServerProcess


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def create_key(
    server: ServerProcess, operator: str, name: str = "CRM", scopes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`POST /api/v1/keys` by an operator's token; the 201 answer."""
    response = httpx.post(
        server.http + "/api/v1/keys",
        json={"name": name, "scopes": list(scopes)},
        headers=bearer(operator),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def revoke_key(server: ServerProcess, operator: str, key_id: str) -> httpx.Response:
    return httpx.delete(f"{server.http}/api/v1/keys/{key_id}", headers=bearer(operator), timeout=10)


def upload(server: ServerProcess, credential: str, name: str = "photo.png") -> httpx.Response:
    """`POST /api/v1/files` with a tiny PNG: a route a key needs `chat:write` for."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    return httpx.post(
        server.http + "/api/v1/files",
        files={"file": (name, png, "image/png")},
        headers=bearer(credential),
        timeout=10,
    )


@contextlib.asynccontextmanager
async def raw_socket(
    server: ServerProcess, credential: str
) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """A socket whose `hello` carries `credential`; with the first frame it got back."""
    async with websockets.connect(server.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "token": credential}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        yield ws, first


async def closed_within(ws: ClientConnection, seconds: float) -> tuple[int | None, float]:
    """Reads `ws` until the server closes it: the close code and how long that took."""
    started = time.monotonic()

    async def consume() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    await asyncio.wait_for(consume(), seconds)
    return ws.close_code, time.monotonic() - started
