"""A frame is answered even when what it waits for does not answer
(chatd.web.answer_deadline): past the deadline the work is given up, `TooLate`."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatd.web.answer_deadline import AnswerDeadline, TooLate

DEADLINE = 0.2


async def test_work_done_in_time_is_answered() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "ack"

    assert await AnswerDeadline(DEADLINE).run(work()) == "ack"


async def test_work_past_the_deadline_is_given_up_and_cancelled() -> None:
    cancelled = asyncio.Event()

    async def stuck() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    started = time.monotonic()
    with pytest.raises(TooLate):
        await AnswerDeadline(DEADLINE).run(stuck())
    assert DEADLINE <= time.monotonic() - started < DEADLINE + 0.15
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_work_that_ignores_its_cancel_does_not_hold_up_the_answer() -> None:
    """asyncpg, cancelled in a statement the database never answers, first sends a cancel
    request, which cannot get through either: the answer does not wait for that."""
    let_go = asyncio.Event()

    async def slow_to_let_go() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await let_go.wait()
            raise

    deadline = AnswerDeadline(DEADLINE)
    started = time.monotonic()
    with pytest.raises(TooLate):
        await deadline.run(slow_to_let_go())
    assert time.monotonic() - started < DEADLINE + 0.15
    let_go.set()
    await asyncio.sleep(0.01)


async def test_the_works_own_failure_passes_through() -> None:
    async def refused() -> None:
        raise ValueError("the work's own failure")

    with pytest.raises(ValueError, match="own failure"):
        await AnswerDeadline(DEADLINE).run(refused())
