"""Sockets whose token expires while they are open: one timer for all of them.

A socket's token expires at a time its `hello` told (the JWT's `exp`), and then the server
closes the socket with 4001. A `call_later` per socket kept a timer handle with its callback
and arguments for the socket's whole life, about half a kilobyte of an idle socket's ~24.
Here sockets are kept by the moment their token expires (tokens' `exp` are whole seconds as
a rule, so the sockets of one second share an entry), and one timer, armed only while some
socket waits, closes each moment's sockets when it comes: never after it, so no frame is
carried out on an expired token.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from typing import Protocol

from protocol.codes import CloseCode

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self, code: int, reason: str = "") -> None: ...


class Expiries:
    def __init__(self) -> None:
        # The sockets by the moment (Unix seconds) their token expires, and each socket's.
        self._due: dict[float, set[Closable]] = {}
        self._moment_of: dict[Closable, float] = {}
        # The moments of `_due`, each once, earliest first. A moment whose sockets all left
        # keeps its empty set until it comes first (a socket may still join it: a client
        # reconnecting with the same token), and is dropped then.
        self._moments: list[float] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_moment: float | None = None

    def __len__(self) -> int:
        return len(self._moment_of)

    def add(self, socket: Closable, expires_at: float) -> None:
        """Closes `socket` with 4001 when `expires_at` (Unix seconds) comes; never, when it
        is not finite (an API key does not expire: it ends when revoked)."""
        if not math.isfinite(expires_at):
            return
        self._moment_of[socket] = expires_at
        sockets = self._due.get(expires_at)
        if sockets is None:
            sockets = self._due[expires_at] = set()
            heapq.heappush(self._moments, expires_at)
        sockets.add(socket)
        if self._timer_moment is None or expires_at < self._timer_moment:
            self._arm(expires_at)

    def remove(self, socket: Closable) -> None:
        """Forgets `socket` (it closed before its token expired, or never had one to)."""
        moment = self._moment_of.pop(socket, None)
        if moment is None:
            return
        self._due[moment].discard(socket)

    def _arm(self, moment: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, moment - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)
        self._timer_moment = moment

    def _expire(self) -> None:
        self._timer = self._timer_moment = None
        now = time.time()
        moments = self._moments
        while moments and moments[0] <= now:
            sockets = self._due.pop(heapq.heappop(moments), set())
            for socket in sockets:
                del self._moment_of[socket]
                try:
                    socket.close(CloseCode.UNAUTHORIZED, "token expired")
                except Exception:  # one socket's failure must not keep the others open
                    log.exception("closing a socket whose token expired failed")
        # Moments whose sockets all left need no timer of their own.
        while moments and not self._due[moments[0]]:
            del self._due[heapq.heappop(moments)]
        if moments:
            self._arm(moments[0])
