"""Memory per idle connection: the server's resident memory before and after N authenticated
sockets that then do nothing, divided by N."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.typing import BytesLike

from chatd.client.tokens import mint
from chatd.loadtest.wire import Socket, open_session

WARMUP_SOCKETS = 200
SETTLE = 2.0


@dataclass(frozen=True, slots=True)
class IdleResult:
    connections: int
    failed: int
    rss_before: int
    rss_after: int
    seconds_to_connect: float

    @property
    def per_connection(self) -> float:
        """Bytes per connection (0 when none opened)."""
        if not self.connections:
            return 0.0
        return (self.rss_after - self.rss_before) / self.connections


def _ignore(socket: Socket, data: BytesLike) -> None:
    return None


async def _open(url: str, secret: str, names: list[str], parallel: int) -> list[Socket]:
    slots = asyncio.Semaphore(parallel)

    async def one(name: str) -> Socket | None:
        async with slots:
            token = mint(secret, role="buyer", sub=name, name="Покупатель")
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                socket, _ = await open_session(url, token, _ignore, open_timeout=60)
                return socket
            return None

    opened = await asyncio.gather(*(one(name) for name in names))
    return [s for s in opened if s is not None]


async def measure_idle(
    url: str,
    secret: str,
    count: int,
    rss: Callable[[], int],
    parallel: int = 200,
    settle: float = SETTLE,
) -> IdleResult:
    """Opens `count` sockets of distinct buyers and reads `rss()` before and after."""
    # Code paths and allocator arenas that any first connections warm up are not per socket.
    warm = await _open(url, secret, [f"idle-warm-{i}" for i in range(WARMUP_SOCKETS)], parallel)
    await asyncio.gather(*(s.aclose() for s in warm))
    await asyncio.sleep(settle)
    before = rss()
    started = time.monotonic()
    sockets = await _open(url, secret, [f"idle-{i}" for i in range(count)], parallel)
    took = time.monotonic() - started
    await asyncio.sleep(settle)
    after = rss()
    await asyncio.gather(*(s.aclose() for s in sockets))
    return IdleResult(len(sockets), count - len(sockets), before, after, took)
