"""One lock per key (a chat), that costs nothing while nobody waits.

Commands on one chat queue up instead of racing to the same seq (the store still settles
races between processes). Most commands find their chat free: they mark it busy in a dict
and go on, with no lock object, no future and no wake-up. Only a command that finds its chat
busy waits, on a future of its own, in arrival order, and the one leaving hands the chat
straight to the next (it stays busy in between, so nobody can slip past the queue).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class KeyedLocks:
    def __init__(self) -> None:
        # A key is busy while it is in here; its value is the queue of those waiting for it
        # (None until somebody waits).
        self._busy: dict[str, deque[asyncio.Future[None]] | None] = {}

    def held(self, key: str) -> bool:
        return key in self._busy

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Runs `work()` while holding `key`."""
        busy = self._busy
        if key in busy:
            await self._wait_for(key)
        else:
            busy[key] = None
        try:
            return await work()
        finally:
            self._release(key)

    async def _wait_for(self, key: str) -> None:
        waiters = self._busy[key]
        if waiters is None:
            waiters = self._busy[key] = deque()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                # Cancelled just after the key was handed over: pass it on.
                self._release(key)
            raise

    def _release(self, key: str) -> None:
        waiters = self._busy[key]
        while waiters:
            turn = waiters.popleft()
            if not turn.done():  # skips those cancelled while waiting
                turn.set_result(None)
                return
        del self._busy[key]
