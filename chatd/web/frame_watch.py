"""Frames past their answer deadline, found by one sweep rather than a timer each.

Every frame of every socket must be answered within `ANSWER_DEADLINE` of being taken up
(chatd.web.answer_deadline says why). Running each frame in a task of its own beside a
timer of its own kept that promise at ~11 µs a frame, several percent of a message's whole
cost. Here a socket's frames run in the socket's own coroutine, as if there were no
deadline; a frame taken up is noted with the time (`begin`) and forgotten when answered
(`end`), and one sweep every `deadline / 16` seconds, scheduled only while some frame is
being carried out, finds those past the deadline and tells their sockets (`too_late`). A
frame is so answered between the deadline and a sixteenth of it later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Watched(Protocol):
    def too_late(self) -> None:
        """The frame being carried out is past its deadline: answer it, and read on."""


class FrameWatch:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._period = deadline / 16
        # The socket carrying out a frame, and when it took it up (the loop's clock).
        self._since: dict[Watched, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep_due: asyncio.TimerHandle | None = None

    def begin(self, socket: Watched) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._since[socket] = loop.time()
        if self._sweep_due is None:
            self._sweep_due = loop.call_later(self._period, self._sweep)

    def end(self, socket: Watched) -> None:
        self._since.pop(socket, None)

    def _sweep(self) -> None:
        self._sweep_due = None
        loop = self._loop
        assert loop is not None
        due = loop.time() - self.deadline
        late = [socket for socket, since in self._since.items() if since <= due]
        for socket in late:
            del self._since[socket]
            try:
                socket.too_late()
            except Exception:  # one socket's failure must not leave the others unanswered
                log.exception("answering a frame past its deadline failed")
        if self._since:
            self._sweep_due = loop.call_later(self._period, self._sweep)
