"""A frame is answered, even when what it waits for does not answer.

A socket's frame that is not done within `ANSWER_DEADLINE` seconds gets `TooLate`, and the
socket answers `unavailable` instead of nothing: its log out of reach (a partition, where
nothing is refused and nothing closes), or too slow to be of use (a link that loses
packets), the client hears it and may go to another node. What the frame started is
cancelled and left to end by itself, in the background: asyncpg lets go of a statement the
database never answered only once its cancel request is through or has failed, and nobody
should wait for that. A write so answered may still be carried out; its nonce keeps a resend
from writing it twice. (`python -m chatd.proof.partitions`;
tests/multinode/test_silent_peers.py)

It cancels what it gives up on, so it is for steps that only read or keep a record, such as
those of a `hello`: a command that appends events must never be cancelled (see
`ChatService._execute`), and a socket's frames and HTTP requests give up on their answers
without cancelling their work (chatd.web.frame_watch, chatd.web.http_deadline).

The clock runs from the moment the frame is taken up: a socket's frames are taken one after
another, so one waits for those before it on its socket without that counting against it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

ANSWER_DEADLINE = 4.0

T = TypeVar("T")


class TooLate(Exception):
    """No answer within the deadline."""


class AnswerDeadline:
    def __init__(self, deadline: float = ANSWER_DEADLINE) -> None:
        self._deadline = deadline
        # Work given up on, until it has ended (a task nobody holds may be collected).
        self._late: set[asyncio.Future[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work`'s result, or TooLate once it has taken longer than the deadline."""
        # Every frame of every socket comes through here, so this is `asyncio.wait` without
        # its sets and extra callbacks: one waiter, woken by the work's end or by the timer
        # (half the cost: ~8 against ~15 µs a frame).
        loop = asyncio.get_running_loop()
        task = loop.create_task(work)
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        task.add_done_callback(wake)
        timer = loop.call_later(self._deadline, wake)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            try:
                return task.result()
            finally:
                # The work's exception, raised here, holds this frame in its traceback: the
                # frame must let go of the task that holds the exception, or the three make
                # a cycle that keeps a refused socket's objects for the garbage collector.
                del task
        task.remove_done_callback(wake)
        task.cancel()
        self._late.add(task)
        task.add_done_callback(self._ended)
        raise TooLate

    def _ended(self, task: asyncio.Future[Any]) -> None:
        self._late.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("work given up on failed: %r", task.exception())
