"""Group commit, shared by every backend: appends and read marks wait in one queue, one
writer task takes all that is waiting, writes it in one transaction and resolves the futures
only after the commit, so an `ack` always follows a commit.

A backend supplies `WriteBatch`, which opens its transaction, checks heads and nonces, and
writes the rows `plan_appends` lays out for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatd.store.base import (
    Appended,
    AppendRequest,
    Conflict,
    Refused,
    StoreClosed,
    Stored,
    StoreUnavailable,
)
from chatd.store.rows import Row
from chatd.store.stats import StoreStats
from protocol.events import Event, encode_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MarkWrite:
    """Raise the read mark of `side` in `chat` to `seq` (never lower it)."""

    chat: str
    side: str
    seq: int


Outcomes = list[Appended | BaseException]
WriteBatch = Callable[
    [Sequence[AppendRequest], Sequence[MarkWrite]], Awaitable[tuple[Outcomes, list[int]]]
]
"""Writes appends and marks in one transaction: an outcome per append (`Appended`,
`Conflict`, or the projector's exception), the marks' values after the write."""


@dataclass(eq=False, slots=True)
class _WaitingAppend:
    request: AppendRequest
    future: asyncio.Future[Appended]


@dataclass(eq=False, slots=True)
class _WaitingMark:
    mark: MarkWrite
    future: asyncio.Future[int]


@dataclass(eq=False)
class _Batch:
    appends: list[_WaitingAppend] = field(default_factory=list)
    marks: list[_WaitingMark] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.appends) + len(self.marks)


class GroupCommit:
    """The queue and the writer task of one store."""

    def __init__(
        self,
        write: WriteBatch,
        *,
        constraint_errors: tuple[type[Exception], ...],
        max_batch: int,
        stats: StoreStats,
        name: str,
    ) -> None:
        self._write = write
        self._constraint_errors = constraint_errors
        self._max_batch = max_batch
        self._stats = stats
        self._name = name
        # What waits for the next commit, and the writer's wake-up while it waits for work:
        # a plain deque and one future, cheaper per append than an asyncio.Queue.
        self._waiting: deque[_WaitingAppend | _WaitingMark] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Commits what was accepted, then refuses more."""
        if self._closing:
            return
        self._closing = True
        if self._task is not None:
            self._wake()
            await self._task

    def _accepting(self) -> asyncio.AbstractEventLoop:
        if self._closing:
            raise StoreClosed("the store is closing")
        if self._task is None:
            raise StoreClosed("the store is not open")
        return asyncio.get_running_loop()

    async def append(self, request: AppendRequest) -> Appended:
        future: asyncio.Future[Appended] = self._accepting().create_future()
        self._waiting.append(_WaitingAppend(request, future))
        self._wake()
        return await future

    async def set_read_mark(self, chat: str, side: str, seq: int) -> int:
        future: asyncio.Future[int] = self._accepting().create_future()
        self._waiting.append(_WaitingMark(MarkWrite(chat, side, seq), future))
        self._wake()
        return await future

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _run(self) -> None:
        waiting = self._waiting
        while True:
            if not waiting:
                if self._closing:
                    return
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup
                self._wakeup = None
                continue
            batch = _Batch()
            while waiting and len(batch) < self._max_batch:
                item = waiting.popleft()
                if isinstance(item, _WaitingAppend):
                    batch.appends.append(item)
                else:
                    batch.marks.append(item)
            await self._commit(batch)

    async def _commit(self, batch: _Batch) -> None:
        started = time.perf_counter()
        requests = [waiting.request for waiting in batch.appends]
        marks = [waiting.mark for waiting in batch.marks]
        values: Sequence[int | BaseException]
        try:
            try:
                outcomes, values = await self._write(requests, marks)
            except StoreUnavailable:
                # The database out of reach is no append's fault, and each alone would only
                # wait for it again: the whole batch fails at once.
                raise
            except Exception as exc:
                # A constraint the batch did not foresee (another process wrote the same file,
                # a second refund for a claim), or any other failure one append's own data can
                # cause (an integer SQLite cannot hold, say): the transaction rolled back, so
                # write each append alone, and only the culprit fails. A failure that is not
                # the data's (the database gone) fails each of them alike.
                log.warning(
                    "batch of %d failed (%s: %s); retrying one by one",
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
                outcomes, values = await self._write_one_by_one(requests, marks)
        except Exception as exc:
            # Also a failure of the retry (the database restarting, say): the writer task
            # must outlive it, or every later append would wait forever.
            log.exception("commit of %d failed", len(batch))
            futures: list[asyncio.Future[Any]] = [w.future for w in batch.appends]
            futures.extend(w.future for w in batch.marks)
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        self._stats.observe_commit(time.perf_counter() - started, len(batch))
        for waiting, outcome in zip(batch.appends, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
        for waiting_mark, value in zip(batch.marks, values, strict=True):
            if waiting_mark.future.done():
                continue
            if isinstance(value, BaseException):
                waiting_mark.future.set_exception(value)
            else:
                waiting_mark.future.set_result(value)

    async def _write_one_by_one(
        self, requests: list[AppendRequest], marks: list[MarkWrite]
    ) -> tuple[Outcomes, list[int | BaseException]]:
        """Each append in a transaction of its own, then the marks in one: a failure is
        answered to what caused it, and never undoes or fails what committed before it."""
        outcomes: Outcomes = []
        for request in requests:
            try:
                one, _ = await self._write([request], [])
                outcomes.extend(one)
            except self._constraint_errors as exc:
                outcomes.append(Refused(request.stream, str(exc)))
                log.warning("append to %s refused by a constraint: %s", request.stream, exc)
            except Exception as exc:
                outcomes.append(exc)
                log.exception("append to %s failed", request.stream)
        values: list[int | BaseException] = []
        if marks:
            try:
                _, written = await self._write([], marks)
                values.extend(written)
            except Exception as exc:
                log.exception("%d read marks failed", len(marks))
                values.extend(exc for _ in marks)
        return outcomes, values


# ---- what a batch of appends writes -----------------------------------------------------------

EventRow = tuple[int, str, int, str, str, bool, bytes]
"""(pos, stream, seq, kind, side, has_text, body), the columns of `events`."""
NonceRow = tuple[str, str, str, int, int]
"""(user, nonce, stream, seq, pos): the first event an append with this nonce wrote."""
NonceKey = tuple[str, str]
NonceHit = tuple[str, int, int]
"""(stream, seq, pos) of the first event written under a nonce."""


@dataclass
class PlannedBatch:
    """The rows a batch writes, by table, and what each append is answered."""

    outcomes: Outcomes = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    feed: list[tuple[str, int]] = field(default_factory=list)
    nonces: list[NonceRow] = field(default_factory=list)
    projection: dict[type[Row], list[tuple[Any, ...]]] = field(default_factory=dict)


RowParams = Callable[[Row, dict[int, int]], tuple[Any, ...]]
"""A backend's statement parameters for a row, given the log positions of its append's events
by seq."""


def side_of_event(event: Event) -> str:
    """Who wrote it, as the unread counts need it: buyer, seller, or system."""
    role = event.author.role
    return role if role in ("buyer", "seller") else "system"


def plan_appends(
    requests: Sequence[AppendRequest],
    *,
    last_pos: int,
    heads: dict[str, int],
    seen: dict[NonceKey, NonceHit],
    params: RowParams,
) -> PlannedBatch:
    """Lays out a batch under the log's write lock: positions after `last_pos`, a `Conflict`
    for an append whose stream moved past `expected_seq` (`heads`, updated as the batch
    goes), a duplicate for a nonce already kept (`seen`, likewise), and the projection rows
    as `params` turns them into the backend's statement parameters, positions put in."""
    plan = PlannedBatch()
    pos = last_pos
    for request in requests:
        if request.nonce is not None and request.nonce in seen:
            stream, seq, first_pos = seen[request.nonce]
            plan.outcomes.append(
                Appended(events=[], duplicate=True, stream=stream, seq=seq, pos=first_pos)
            )
            continue
        head = heads.get(request.stream, 0)
        if head != request.expected_seq:
            plan.outcomes.append(Conflict(request.stream, request.expected_seq, head))
            continue
        stored = [Stored(pos + n, event) for n, event in enumerate(request.events, start=1)]
        try:
            # Turned into parameters before anything is kept: a row that cannot be written
            # fails its own append, not every append that shares the commit.
            positions = {item.event.seq: item.pos for item in stored}
            row_params = [(type(row), params(row, positions)) for row in request.rows]
        except Exception as exc:
            log.exception("the rows of an append to %s cannot be written", request.stream)
            plan.outcomes.append(exc)
            continue
        for item in stored:
            event = item.event
            plan.events.append(
                (
                    item.pos,
                    event.stream,
                    event.seq,
                    event.kind,
                    side_of_event(event),
                    event.text is not None,
                    encode_event(event),
                )
            )
            plan.feed.extend(
                (a.key, item.pos) for a in request.audiences if a.receives(event.seq, event.kind)
            )
        pos += len(stored)
        if stored:
            first = stored[0]
            heads[request.stream] = stored[-1].event.seq
            if request.nonce is not None:
                user, nonce = request.nonce
                plan.nonces.append((user, nonce, request.stream, first.event.seq, first.pos))
                seen[request.nonce] = (request.stream, first.event.seq, first.pos)
        for row_type, values in row_params:
            plan.projection.setdefault(row_type, []).append(values)
        first_seq = stored[0].event.seq if stored else request.expected_seq
        first_pos = stored[0].pos if stored else 0
        plan.outcomes.append(
            Appended(events=stored, stream=request.stream, seq=first_seq, pos=first_pos)
        )
    return plan
