"""An HTTP request is answered, even when what it waits for does not answer.

The socket's frames have had this for long (chatd.web.answer_deadline); a request over HTTP
is the same work and needs the same promise: a request that has not begun its answer
`ANSWER_DEADLINE` seconds after it was taken up gets 503 `unavailable` instead of silence
(its log out of reach behind a partition, or too slow to be of use), and what it started is
left to end by itself in the background, as a frame's is, its answer dropped. It is not
cancelled: a write handed to the group commit may still be committed, and only the command
that handed it over publishes it to the sockets (cancelled, it left live sockets without
that event for good). A write so answered may still be carried out: its `Idempotency-Key`
keeps a retry from writing it twice.

The clock stops while the request waits for its client and is pushed back by a route that
waits on purpose: it starts again after each part of the body received (a slow upload is the
client's time, not the server's; its pace is HttpLimits' to enforce), and a long-poll says
until when it means to wait (`waits_until`). Once the answer has begun, the request is the
client's to read at its pace: a download is not cut.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.web.answer_deadline import ANSWER_DEADLINE
from chatd.web.http import error_response
from protocol.codes import ErrorCode

log = logging.getLogger(__name__)

_SCOPE_KEY = "chatd.answer_clock"
TOO_LATE = (
    "no answer in time: a write may still be carried out; send it again with its Idempotency-Key"
)


@dataclass(slots=True)
class _Clock:
    """When the request must have begun its answer, on the event loop's clock."""

    due: float
    # Waiting for the client's body: its time, not the server's.
    paused: bool = False

    def push(self, due: float) -> None:
        self.due = max(self.due, due)


def waits_until(scope: Scope, moment: float) -> None:
    """A route that waits on purpose until `moment` (the loop's clock) keeps its deadline
    that long after it: a long-poll is not late for waiting."""
    clock = scope.get(_SCOPE_KEY)
    if isinstance(clock, _Clock):
        clock.push(moment + ANSWER_DEADLINE)


class AnswerHttpInTime:
    def __init__(self, app: ASGIApp, deadline: float = ANSWER_DEADLINE) -> None:
        self.app = app
        self.deadline = deadline
        # Requests given up on, until they have ended (a task nobody holds may be collected).
        self._late: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        clock = _Clock(loop.time() + self.deadline)
        scope[_SCOPE_KEY] = clock
        answer = _Answer(send)

        async def receive_in_time() -> Message:
            clock.paused = True
            try:
                return await receive()
            finally:
                clock.paused = False
                clock.push(loop.time() + self.deadline)

        async def carried_out() -> None:
            await self.app(scope, receive_in_time, answer.send)

        work = loop.create_task(carried_out())
        try:
            while not work.done() and not answer.begun:
                left = clock.due - loop.time()
                if left <= 0 and not clock.paused:
                    break
                # While paused, looked at again a deadline later (the body's own pace is
                # HttpLimits' to enforce).
                await asyncio.wait({work}, timeout=left if left > 0 else self.deadline)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if work.done() or answer.begun:
            await work  # its result, or its exception, as if it had run here
            return
        answer.give_up()
        self._late.add(work)
        work.add_done_callback(self._ended)
        log.warning(
            "%s %s: no answer in %.1f s, answered 503",
            scope.get("method", ""),
            scope.get("path", ""),
            self.deadline,
        )
        await error_response(ErrorCode.UNAVAILABLE, TOO_LATE, status=503)(scope, receive, send)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._late.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("request given up on failed: %r", task.exception())


class _Answer:
    """The request's `send`, which notes when the answer began and goes quiet once the
    request was given up on (its 503 is the answer then)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.begun = False
        self._given_up = False

    async def send(self, message: Message) -> None:
        if self._given_up:
            return
        if message["type"] == "http.response.start":
            self.begun = True
        await self._send(message)

    def give_up(self) -> None:
        self._given_up = True
