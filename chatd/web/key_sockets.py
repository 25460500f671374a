"""The open sockets of each API key, closed with 4001 once the key is revoked.

Revoking is heard two ways. The hub tells every node at once (`Hub.revoke_key`, Redis between
nodes), and each node closes that key's sockets. Redis may lose a message (it is down, a node
is cut off), so while any socket of a key is open, the node also asks the store every
`interval` which of its keys are still live, and closes the sockets of the others: the store
is the truth, the hub only the fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from chatd.store.base import KeyStore
from protocol.codes import CloseCode

log = logging.getLogger(__name__)

REVOKED = "the API key was revoked"


class Closable(Protocol):
    def close(self, code: int, reason: str = "") -> None: ...


class KeySockets:
    def __init__(self, store: KeyStore, *, interval: float = 1.0) -> None:
        self._store = store
        self._interval = interval
        self._open: dict[str, set[Closable]] = {}
        self._checker: asyncio.Task[None] | None = None

    def add(self, key: str, socket: Closable) -> None:
        self._open.setdefault(key, set()).add(socket)
        if self._checker is None or self._checker.done():
            # Runs only while some key has a socket open: a node without any asks nothing.
            self._checker = asyncio.create_task(self._check(), name="key-sockets")

    def remove(self, key: str, socket: Closable) -> None:
        sockets = self._open.get(key)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._open[key]

    def revoked(self, key: str) -> None:
        """Closes every socket of `key` with 4001 (what the hub calls on any node)."""
        for socket in self._open.pop(key, ()):
            socket.close(CloseCode.UNAUTHORIZED, REVOKED)

    async def still_live(self, key: str) -> bool:
        """Whether `key` is live now: a socket asks once it is in the registry, so that a
        revocation between its `hello`'s look-up and its `add` is not missed."""
        return key in await self._store.live_keys([key])

    async def _check(self) -> None:
        while self._open:
            await asyncio.sleep(self._interval)
            keys = list(self._open)
            if not keys:
                return
            try:
                live = await self._store.live_keys(keys)
            except Exception as exc:
                # The store is away for a moment (or closing): ask again at the next turn.
                log.warning("cannot read which API keys are live: %s", exc)
                continue
            for key in keys:
                if key not in live:
                    self.revoked(key)

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
