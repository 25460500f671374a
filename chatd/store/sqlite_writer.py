"""SQLite's write connection, on a thread of its own.

Every write of the store is one function run on this thread with the plain `sqlite3`
connection: a whole group-commit batch (`write_batch`) is one call, so the event loop wakes
once per batch rather than once per statement, as it would through aiosqlite's per-statement
calls.

The writer also keeps the WAL bounded. SQLite starts the WAL over from its beginning only
when a write begins after a checkpoint copied all of it and no reader still uses it; under
steady load a background checkpoint never catches the end, commits keep coming, and the
file grows without bound (1 GB in a minute at 700 msg/s). So once the WAL has passed
`wal_checkpoint_bytes` (about a megabyte) it is copied into the database in two steps. A
checkpoint ends with the database file's fsync, and while the writer checkpoints no commit
lands: on a busy disk that fsync took seconds now and then. So first the copier
(`WalCopier`: a connection and a thread of its own) copies the bulk beside the commits,
PASSIVE. Then, between two batches, the writer checkpoints what came since (at most
WAL_TAIL_BYTES; more, and the copier copies again), PASSIVE too: no commit can land
meanwhile (it is the only writer), so the checkpoint catches the end unless a reader still
needs some of the WAL, and the next batch writes from the WAL's start; `journal_size_limit`
trims the file back. Only a copy held up until the WAL passes `wal_hold_bytes` is waited
for: a disk that slow cannot be outrun. Should readers keep it from starting over until it passes
`wal_restart_bytes`, the writer runs a RESTART checkpoint, which waits for them (briefly,
then again later: see RESTART_WAIT_MS).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar

from chatd.observability.logs import fields
from chatd.store import sqlite_migrations
from chatd.store import sqlite_schema as schema
from chatd.store.base import AppendRequest, StoreClosed, Stored
from chatd.store.group_commit import MarkWrite, Outcomes, plan_appends
from chatd.store.rows import (
    ChatActivityRow,
    ChatRow,
    ClaimRow,
    FileRow,
    LedgerRow,
    OrderRow,
    Row,
    SearchRow,
)
from protocol.events import decode_event

log = logging.getLogger(__name__)

Synchronous = Literal["full", "normal"]
P = ParamSpec("P")
T = TypeVar("T")

# Past this size the writer checkpoints between two batches, PASSIVE: it copies the WAL's
# pages into the database while no commit can land (it is the only writer) and waits for
# nobody; when it copied everything, the next commit starts the WAL over from its beginning
# and SQLite trims the file back to WAL_SIZE_LIMIT. Kept small, each checkpoint is short
# (about a millisecond); at 16 MiB each took 15-30 ms, a stall for every commit behind it,
# for no less CPU per message.
WAL_CHECKPOINT_BYTES = 1024 * 1024 + 64 * 1024
# What SQLite trims the WAL file back to after it started over.
WAL_SIZE_LIMIT = 1024 * 1024
# The writer copies the WAL's last pages itself, and waits for the database file's fsync,
# only once the copier (`WalCopier`) has copied all but at most this much of it; else the
# copier copies again, beside the commits. (When the writer copied it all itself, ~1 MiB at
# a time, each took ~4 ms and now and then seconds, in a long run at 1 500 msg/s that wrote
# ~100 MB/s to the disk: no commit landed meanwhile.)
WAL_TAIL_BYTES = 256 * 1024
# Should the copies not keep up (more committed while one copies than the tail allows, time
# after time), the writer copies the rest itself once the WAL has passed this many times
# `wal_checkpoint_bytes`, at its first look after the copy under way ends.
WAL_CATCH_UP_FACTOR = 4
# A copy is not waited for (a slow fsync must not hold the commits) until the WAL passes
# this size: a disk slower than the commits for that long cannot be outrun, and the commits
# wait for the copy rather than let the WAL grow without bound. 48 MiB leaves room below the
# 64 MiB the WAL must never pass for the batches written meanwhile.
WAL_HOLD_BYTES = 48 * 1024 * 1024
# A reader on an old snapshot keeps the WAL from starting over, and it grows. Past this size
# the writer runs a RESTART checkpoint instead, which waits for such readers.
WAL_RESTART_BYTES = 16 * 1024 * 1024
# How long a statement of the writer waits for a lock, and a RESTART checkpoint for readers.
BUSY_TIMEOUT_MS = 10_000
RESTART_WAIT_MS = 50
# After a RESTART found a reader in the way, the writer leaves the WAL alone for a while
# before it tries again, twice as long after each try in vain, up to RESTART_RETRY_SECONDS.
# A short read is gone by the first retry; a long one (a backup, an export: one snapshot for
# their whole run) costs a wait of RESTART_WAIT_MS now and then, not before every commit.
RESTART_FIRST_RETRY_SECONDS = 0.05
RESTART_RETRY_SECONDS = 1.0
# Texts queued for the search index before the writer indexes them between two batches (a
# search indexes the queue first, whatever its length). FTS5's cost is per transaction:
# a text indexed alone cost a commit 28 µs more than the queue's row (at 50 000 indexed),
# one of a thousand about 8 µs.
SEARCH_INDEX_BATCH = 1000
# Every commit waits while the writer indexes, so it indexes the oldest queued texts a slice
# at a time, one slice between two batches: 250 texts take ~1.5 ms, 1 000 took ~6 ms.
SEARCH_INDEX_SLICE = 250
# FTS5 merges its index's segments itself after each write ('automerge'), and now and then
# one such merge took 30-40 ms, a stall for every commit behind it. The index is kept with
# automerge off, and the writer merges a bounded step at a time between two batches, for as
# long as a step finds work (a step of 32 pages usually takes 2-4 ms).
SEARCH_MERGE_PAGES = 32
# FTS5 ends a merge step only where a new term begins, so a step that reaches a term nearly
# every text holds merges that term's whole doclist, whatever the pages asked: 12-16 ms, and
# several such terms make as many such steps in a row, each after one batch, so that the
# commits queued behind one wait behind the next as well (~230 ms of batches held 20-35 ms in
# the long run). After a step that long, the writer lets SEARCH_MERGE_PAUSE_SECONDS of
# batches go by before the next step: the queue is written first.
SEARCH_MERGE_SLOW_STEP_SECONDS = 0.005
SEARCH_MERGE_PAUSE_SECONDS = 0.1
# A step of the writer's longer than this is logged, with what it was: every commit behind it
# waited, and neither a latency percentile nor the commits' histogram can say why (a long run
# saw three commits of 0.25-1 s in half an hour, each the worst of its minute).
SLOW_STEP_SECONDS = 0.1
# At most one such line a second: on a saturated server every batch is large and slow, and a
# line each would flood the log. The next line counts those held back.
SLOW_LINE_EVERY_SECONDS = 1.0
_INDEX_QUEUED = "INSERT INTO search (rowid, text, chat) SELECT pos, text, chat FROM search_queue"

# Projection rows: the SQL that writes each type, in the order they are written within a
# commit (a chat's row exists before its activity is updated).
_ROW_SQL: dict[type[Row], str] = {
    ChatRow: "INSERT OR IGNORE INTO chats (chat, buyer_id, buyer_name, seller_id, seller_name)"
    " VALUES (?, ?, ?, ?, ?)",
    ChatActivityRow: "UPDATE chats SET last_pos = ?, last_seq = ?, waiting_since = ?,"
    " managers_from = ? WHERE chat = ?",
    SearchRow: "INSERT INTO search_queue (pos, text, chat) VALUES (?, ?, ?)",
    ClaimRow: "INSERT INTO claims (claim, chat, ord, state) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (claim) DO UPDATE SET state = excluded.state",
    OrderRow: "INSERT OR REPLACE INTO orders"
    " (ord, buyer_id, buyer_name, seller_id, seller_name, pos, card) VALUES (?, ?, ?, ?, ?, ?, ?)",
    LedgerRow: "INSERT INTO ledger (claim, ord, buyer_id, seller_id, value, currency, at,"
    " article, name, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    FileRow: "INSERT OR IGNORE INTO files (chat, pos, file, seq, name, mime, size, at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}


def _params(row: Row, positions: dict[int, int]) -> tuple[Any, ...]:
    """The statement's parameters for `row`; `positions` are the log positions of its
    append's events by seq."""
    match row:
        case ChatRow():
            return (row.chat, row.buyer_id, row.buyer_name, row.seller_id, row.seller_name)
        case ChatActivityRow():
            since = _iso(row.waiting_since)
            last_pos = positions[row.last_seq]
            return (last_pos, row.last_seq, since, row.managers_from, row.chat)
        case SearchRow():
            return (positions[row.seq], row.text, row.chat)
        case ClaimRow():
            return (row.claim, row.chat, row.order, row.state)
        case OrderRow():
            return (
                row.order,
                row.buyer_id,
                row.buyer_name,
                row.seller_id,
                row.seller_name,
                positions[row.seq],
                row.card,
            )
        case LedgerRow():
            return (
                row.claim,
                row.order,
                row.buyer_id,
                row.seller_id,
                row.value,
                row.currency,
                row.at.isoformat(),
                row.article,
                row.name,
                row.reason,
            )
        case FileRow():
            return (
                row.chat,
                positions[row.seq],
                row.file,
                row.seq,
                row.name,
                row.mime,
                row.size,
                _iso(row.at),
            )
    raise TypeError(f"not a projection row: {row!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class WalCopier:
    """Copies the WAL's pages into the database file beside the commits: a PASSIVE
    checkpoint on a connection and a thread of its own. It never blocks the writer (SQLite
    lets a checkpoint and a commit run at once), and no commit waits for its fsync of the
    database file. It cannot start the WAL over: commits go on while it copies, so it never
    reaches the end; the writer copies the rest between two batches."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-wal-copier")
        self._db: sqlite3.Connection | None = None
        self._copy: Future[bool] | None = None
        # The WAL's size when the copy running (or finished, unseen) began.
        self._began_at = 0
        self.copies = 0
        self.seconds = 0.0

    def open(self, synchronous: Synchronous) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # A checkpoint syncs the database file as its own connection's setting says.
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._db = db

    @property
    def running(self) -> bool:
        return self._copy is not None and not self._copy.done()

    def start(self, wal_size: int) -> None:
        """Copies, on the copier's thread, what is committed now (the WAL being `wal_size`
        bytes long)."""
        self._began_at = wal_size
        self._copy = self._executor.submit(self._run)

    def wait(self) -> None:
        """Until the copy under way (if any) has ended; `finished` then tells how."""
        copy = self._copy
        if copy is not None:
            wait([copy])

    def finished(self) -> tuple[int, bool] | None:
        """For a copy that has finished since the last call: the WAL's size when it began,
        and whether it copied all that was committed then (a reader on an older snapshot
        keeps the pages it may read from being copied). None while one runs or none ran."""
        copy = self._copy
        if copy is None or not copy.done():
            return None
        self._copy = None
        error = copy.exception()
        if error is not None:
            log.warning("copying the WAL into the database failed: %s", error)
            return self._began_at, False
        return self._began_at, copy.result()

    def _run(self) -> bool:
        if self._db is None:
            return False
        started = time.perf_counter()
        busy, in_wal, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.copies += 1
        self.seconds += time.perf_counter() - started
        return not busy and copied >= in_wal

    def close(self) -> None:
        """Waits for a copy under way, then closes the connection."""
        self._executor.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
            self._db = None


class WriterThread:
    """The write connection and the one thread that uses it."""

    def __init__(
        self,
        path: str,
        *,
        wal_checkpoint_bytes: int = WAL_CHECKPOINT_BYTES,
        wal_restart_bytes: int = WAL_RESTART_BYTES,
        wal_hold_bytes: int = WAL_HOLD_BYTES,
        search_index_batch: int = SEARCH_INDEX_BATCH,
        search_index_slice: int = SEARCH_INDEX_SLICE,
    ) -> None:
        self._path = path
        self.copier = WalCopier(path)
        self._search_index_batch = search_index_batch
        self._search_index_slice = search_index_slice
        self._wal_path = path + "-wal"
        self._wal_checkpoint_bytes = wal_checkpoint_bytes
        self._wal_restart_bytes = wal_restart_bytes
        self._wal_hold_bytes = wal_hold_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._db: sqlite3.Connection | None = None
        self.wal_restarts = 0
        # While a reader holds the WAL: when to try again, the wait before that, and since
        # when it has been held.
        self._restart_after = 0.0
        self._checkpoint_after = 0.0
        self._restart_backoff = 0.0
        self._held_since: float | None = None
        # Time spent in the writer's checkpoints, for /metrics: every commit waits meanwhile.
        self.wal_restart_seconds = 0.0
        self.wal_checkpoints = 0
        self.wal_checkpoint_seconds = 0.0
        # Times the writer waited for a copy (the WAL past `wal_hold_bytes`), and how long.
        self.wal_copy_waits = 0
        self.wal_copy_wait_seconds = 0.0
        # Whether `search_queue` may hold texts, as the writer last saw it: read on the event
        # loop's thread by a search, which indexes the queue first when it does.
        self.search_queued = True
        # Whether the search index may have segments to merge (see SEARCH_MERGE_PAGES), and
        # when the next step may run (see SEARCH_MERGE_PAUSE_SECONDS).
        self._merge_owed = True
        self._merge_resumes = 0.0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Runs `work(connection, *args)` on the writer's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work, args)

    def _call(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._db is None:
            raise StoreClosed("the store is not open")
        result = work(self._db, *args)
        self._upkeep(self._db)
        return result

    def _upkeep(self, db: sqlite3.Connection) -> None:
        """What the writer does between batches. `work` has committed by now: a failure
        here must not read as the batch's failure (its appends would be retried and written
        twice), so it is logged, and tried again after the next batch."""
        try:
            self._tend_search_index(db)
            self._bound_wal(db)
        except sqlite3.Error:
            log.exception("upkeep between batches failed; trying again after the next one")

    def _tend_search_index(self, db: sqlite3.Connection) -> None:
        """One bounded step of the search index's work, so that no commit waits long behind
        it: a merge step while the last one found work, else the oldest slice of the queue
        once the queue spans a batch."""
        started = time.monotonic()
        if self._merge_owed and started >= self._merge_resumes:
            self._merge_owed = merge_search_segments(db)
            ended = time.monotonic()
            if ended - started > SEARCH_MERGE_SLOW_STEP_SECONDS:
                self._merge_resumes = ended + SEARCH_MERGE_PAUSE_SECONDS
            _log_if_slow("a merge step of the search index", ended - started)
            # The batch just written may have queued texts: until the queue is looked at
            # again, a search must index it first.
            self.search_queued = True
            return
        indexed, self.search_queued = index_queued_search(
            db, at_least=self._search_index_batch, most=self._search_index_slice
        )
        self._merge_owed = self._merge_owed or indexed > 0
        if indexed:
            _log_if_slow(f"indexing {indexed} texts for search", time.monotonic() - started)

    def _index_whole_queue(self, db: sqlite3.Connection) -> None:
        indexed, self.search_queued = index_queued_search(db)
        self._merge_owed = self._merge_owed or indexed > 0

    def _bound_wal(self, db: sqlite3.Connection) -> None:
        try:
            size = os.stat(self._wal_path).st_size
        except FileNotFoundError:
            return
        if size < min(self._wal_checkpoint_bytes, self._wal_restart_bytes):
            # The WAL started over: what a copy of the WAL before that copied tells nothing
            # of this one.
            self.copier.finished()
            return
        if size >= self._wal_hold_bytes and self.copier.running:
            self._wait_for_the_copy(size)
        now = time.monotonic()
        if size < self._wal_restart_bytes or now < self._restart_after:
            # While a copy runs, commits go on; the writer looks again after the next batch.
            if now >= self._checkpoint_after and not self.copier.running:
                self._copy_then_catch_up(db, size, now)
            return
        # RESTART waits for readers still on an old snapshot; every commit waits behind it, so
        # it waits briefly and, if a reader is still there, tries again after the next batch.
        db.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        started = time.perf_counter()
        try:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            took = time.perf_counter() - started
            self.wal_restart_seconds += took
        _log_if_slow(f"a RESTART checkpoint of a WAL of {size} bytes", took)
        if busy:
            # A reader held on to an old snapshot past the busy timeout: try again a little
            # later. The WAL only grows meanwhile, it loses nothing.
            self._restart_backoff = min(
                RESTART_RETRY_SECONDS,
                max(RESTART_FIRST_RETRY_SECONDS, 2 * self._restart_backoff),
            )
            self._restart_after = now + self._restart_backoff
            if self._held_since is None:
                self._held_since = now
                log.warning("a reader keeps the WAL (%d bytes) from starting over", size)
        else:
            self.wal_restarts += 1
            self._restart_backoff = 0.0
            if self._held_since is not None:
                log.info(
                    "the WAL started over after a reader held it %.1f s", now - self._held_since
                )
                self._held_since = None

    def _wait_for_the_copy(self, size: int) -> None:
        started = time.perf_counter()
        self.copier.wait()
        took = time.perf_counter() - started
        self.wal_copy_waits += 1
        self.wal_copy_wait_seconds += took
        _log_if_slow(f"waiting for a copy of the WAL ({size} bytes) into the database", took)

    def _copy_then_catch_up(self, db: sqlite3.Connection, size: int, now: float) -> None:
        """Once the copier has copied all but a short tail of the WAL, the writer copies
        the tail; else the copier copies again (see WAL_CATCH_UP_FACTOR)."""
        copied = self.copier.finished()
        if copied is not None:
            began_at, whole = copied
            if not whole:
                # A reader still needs the rest: wait for it a little (see below).
                self._checkpoint_after = now + RESTART_FIRST_RETRY_SECONDS
                return
            caught_up = size - began_at <= WAL_TAIL_BYTES
            if caught_up or size >= WAL_CATCH_UP_FACTOR * self._wal_checkpoint_bytes:
                self._checkpoint_passively(db, now)
                return
        self.copier.start(size)

    def _checkpoint_passively(self, db: sqlite3.Connection, now: float) -> None:
        started = time.perf_counter()
        _, in_wal, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        took = time.perf_counter() - started
        self.wal_checkpoints += 1
        self.wal_checkpoint_seconds += took
        _log_if_slow(f"the writer's checkpoint of {copied} of {in_wal} WAL pages", took)
        # A reader still needs the rest: copying again after every batch would copy only
        # what that batch wrote, with a database fsync each time. Wait for it a little.
        if copied < in_wal:
            self._checkpoint_after = now + RESTART_FIRST_RETRY_SECONDS

    async def index_search_queue(self) -> None:
        """Indexes every queued text, so that a search that starts after this sees each text
        committed before it."""
        if self.search_queued:
            await self.run(self._index_whole_queue)

    async def open(self, synchronous: Synchronous) -> str:
        """Opens the connection, creates the schema; the log's id."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._open, synchronous)

    def _open(self, synchronous: Synchronous) -> str:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # The writer never checkpoints inside a commit: `SqliteStore._checkpoints` copies
        # pages beside it, and `_bound_wal` starts the WAL over between batches.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        try:
            # The schema created, or brought to this code's version one numbered step at a
            # time; a database newer than this code is refused before anything is written.
            sqlite_migrations.migrate(db, self._path)
            keep_search_merges_to_the_writer(db)
            self.copier.open(synchronous)
        except BaseException:
            db.close()
            raise
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)",
            (secrets.token_hex(8),),
        )
        row = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
        self._db = db
        return str(row[0])

    async def close(self) -> None:
        # The copier first: a copy under way ends before the last connection closes (which
        # checkpoints what is left and removes the WAL).
        await asyncio.to_thread(self.copier.close)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# ---- what runs on the writer's thread ----------------------------------------------------------


class _SlowLines:
    """Lets a slow step's line through at most every SLOW_LINE_EVERY_SECONDS. Used on the
    writer's thread only."""

    def __init__(self) -> None:
        self._next = 0.0
        self._held = 0

    def let_through(self) -> int | None:
        """The lines held back since the last one let through; None: hold this one back."""
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return None
        self._next = now + SLOW_LINE_EVERY_SECONDS
        held, self._held = self._held, 0
        return held


_slow_lines = _SlowLines()


def _log_if_slow(step: str, seconds: float) -> None:
    if seconds <= SLOW_STEP_SECONDS or (held := _slow_lines.let_through()) is None:
        return
    log.warning(
        "slow step of the writer between batches: %s took %.0f ms (%d more held back)",
        step,
        1000 * seconds,
        held,
        extra=fields(event="slow_writer_step", step=step, ms=round(1000 * seconds), held=held),
    )


def write_batch(
    db: sqlite3.Connection, requests: Sequence[AppendRequest], marks: Sequence[MarkWrite]
) -> tuple[Outcomes, list[int]]:
    """One group-commit batch in one transaction."""
    began = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    try:
        locked = time.perf_counter()
        outcomes = _write_appends(db, requests) if requests else []
        values = _write_marks(db, marks) if marks else []
        written = time.perf_counter()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    ended = time.perf_counter()
    if ended - began > SLOW_STEP_SECONDS:
        _log_slow_commit(len(requests), len(marks), began, locked, written, ended)
    return outcomes, values


def _log_slow_commit(
    appends: int, marks: int, began: float, locked: float, written: float, ended: float
) -> None:
    """The line of a slow batch: its whole time and its parts, from `write_batch`'s clock."""
    held = _slow_lines.let_through()
    if held is None:
        return
    log.warning(
        "slow commit: %d appends and %d read marks took %.0f ms"
        " (the write lock %.0f, the statements %.0f, COMMIT %.0f; %d more held back)",
        appends,
        marks,
        1000 * (ended - began),
        1000 * (locked - began),
        1000 * (written - locked),
        1000 * (ended - written),
        held,
        extra=fields(
            event="slow_commit",
            appends=appends,
            marks=marks,
            ms=round(1000 * (ended - began)),
            lock_ms=round(1000 * (locked - began)),
            statements_ms=round(1000 * (written - locked)),
            commit_ms=round(1000 * (ended - written)),
            held=held,
        ),
    )


def _write_appends(db: sqlite3.Connection, requests: Sequence[AppendRequest]) -> Outcomes:
    # BEGIN IMMEDIATE holds the database's write lock: heads, nonces and the last position
    # cannot move until the commit.
    heads = _heads(db, {r.stream for r in requests})
    seen = _nonces(db, [r.nonce for r in requests if r.nonce])
    last = db.execute("SELECT coalesce(max(pos), 0) FROM events").fetchone()
    plan = plan_appends(
        requests, last_pos=int(last[0]) if last else 0, heads=heads, seen=seen, params=_params
    )
    if plan.events:
        db.executemany(
            "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            plan.events,
        )
    if plan.feed:
        db.executemany("INSERT OR IGNORE INTO feed (key, pos) VALUES (?, ?)", plan.feed)
    if plan.nonces:
        db.executemany(
            "INSERT INTO nonces (user, nonce, stream, seq, pos) VALUES (?, ?, ?, ?, ?)",
            plan.nonces,
        )
    for row_type, sql in _ROW_SQL.items():
        params = plan.projection.get(row_type)
        if params:
            db.executemany(sql, params)
    return plan.outcomes


def _heads(db: sqlite3.Connection, streams: set[str]) -> dict[str, int]:
    heads: dict[str, int] = {}
    names = list(streams)
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        values = ",".join("(?)" for _ in chunk)
        # One `max(seq)` per stream, each answered from the end of the (stream, seq) index.
        # `WHERE stream IN (...) GROUP BY stream` read every event of every stream instead,
        # on every batch: commits slowed as chats grew, and a soak's latency drifted with them.
        rows = db.execute(
            f"WITH k(s) AS (VALUES {values})"
            " SELECT s, (SELECT max(seq) FROM events WHERE stream = k.s) FROM k",
            chunk,
        )
        heads.update({str(s): int(q) for s, q in rows if q is not None})
    return heads


def _nonces(
    db: sqlite3.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int, int]]:
    found: dict[tuple[str, str], tuple[str, int, int]] = {}
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        values = ",".join("(?, ?)" for _ in chunk)
        flat = [part for key in chunk for part in key]
        # A join from the keys, not `(user, nonce) IN (VALUES ...)`: SQLite answers that
        # form by scanning the whole table, every batch, and the table only grows.
        rows = db.execute(
            f"WITH k(u, n) AS (VALUES {values}) SELECT user, nonce, stream, seq, pos"
            " FROM k JOIN nonces ON nonces.user = k.u AND nonces.nonce = k.n",
            flat,
        )
        for user, nonce, stream, seq, pos in rows:
            found[(user, nonce)] = (stream, int(seq), int(pos))
    return found


def _write_marks(db: sqlite3.Connection, marks: Sequence[MarkWrite]) -> list[int]:
    db.executemany(
        "INSERT INTO read_marks (chat, side, seq) VALUES (?, ?, ?)"
        " ON CONFLICT (chat, side) DO UPDATE SET seq = max(seq, excluded.seq)",
        [(m.chat, m.side, m.seq) for m in marks],
    )
    keys = list({(m.chat, m.side) for m in marks})
    values = ",".join("(?, ?)" for _ in keys)
    rows = db.execute(
        f"WITH k(c, s) AS (VALUES {values}) SELECT chat, side, seq"
        " FROM k JOIN read_marks ON read_marks.chat = k.c AND read_marks.side = k.s",
        [part for key in keys for part in key],
    )
    now = {(c, s): int(q) for c, s, q in rows}
    return [now[(m.chat, m.side)] for m in marks]


def index_queued_search(
    db: sqlite3.Connection, at_least: int = 1, most: int | None = None
) -> tuple[int, bool]:
    """Moves the oldest queued texts, `most` of them or all, into the search index in one
    transaction once at least `at_least` log positions separate the oldest and the newest;
    how many it moved, and whether texts remain queued."""
    # Each from an end of the primary key: `SELECT min(pos), max(pos)` in one query is
    # answered by reading the whole queue, ~90 µs after every batch with a thousand queued.
    low, high = db.execute(
        "SELECT (SELECT min(pos) FROM search_queue), (SELECT max(pos) FROM search_queue)"
    ).fetchone()
    if low is None:
        return 0, False
    if high - low + 1 < at_least:
        return 0, True
    db.execute("BEGIN IMMEDIATE")
    try:
        upto = high
        if most is not None:
            (upto,) = db.execute(
                "SELECT max(pos) FROM (SELECT pos FROM search_queue ORDER BY pos LIMIT ?)",
                (most,),
            ).fetchone()
        moved = db.execute(_INDEX_QUEUED + " WHERE pos <= ?", (upto,)).rowcount
        db.execute("DELETE FROM search_queue WHERE pos <= ?", (upto,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return moved, upto < high


def merge_search_segments(db: sqlite3.Connection, pages: int = SEARCH_MERGE_PAGES) -> bool:
    """One bounded step of merging the search index's segments (about `pages` pages
    written); whether it found work, so that another step may follow."""
    before = db.total_changes
    db.execute("INSERT INTO search (search, rank) VALUES ('merge', ?)", (pages,))
    # The command itself counts as one change; the rows FTS5 rewrote are the rest.
    return db.total_changes - before > 1


def keep_search_merges_to_the_writer(db: sqlite3.Connection) -> None:
    """Turns FTS5's own merging after each write off (see SEARCH_MERGE_PAGES); kept in the
    index's own configuration, so a rebuilt index needs it again."""
    db.execute("INSERT INTO search (search, rank) VALUES ('automerge', 0)")


def rebuild_projections(db: sqlite3.Connection, project: Callable[[Stored], list[Row]]) -> None:
    """Drops every projection and derives it again from the log, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for table in (*schema.PROJECTION_TABLES, "search_recent"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in schema.PROJECTIONS.split(";"):
            if statement.strip():
                db.execute(statement)
        after = 0
        while True:
            rows = db.execute(
                "SELECT pos, body FROM events WHERE pos > ? ORDER BY pos LIMIT 2000", (after,)
            ).fetchall()
            if not rows:
                break
            for pos, body in rows:
                stored = Stored(int(pos), decode_event(body))
                positions = {stored.event.seq: stored.pos}
                for row in project(stored):
                    db.execute(_ROW_SQL[type(row)], _params(row, positions))
            after = int(rows[-1][0])
        db.execute(_INDEX_QUEUED)
        db.execute("DELETE FROM search_queue")
        keep_search_merges_to_the_writer(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
