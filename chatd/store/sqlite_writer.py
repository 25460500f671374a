"""SQLite's write connection, on a thread of its own.

Every write of the store is one function run on this thread with the plain `sqlite3`
connection: a whole group-commit batch (`write_batch`) is one call, so the event loop wakes
once per batch rather than once per statement, as it would through aiosqlite's per-statement
calls.

The writer also keeps the WAL bounded. SQLite starts the WAL over from its beginning only
when a write begins after a checkpoint copied all of it and no reader still uses it; under
steady load the background PASSIVE checkpoint never catches the end, commits keep coming,
and the file grows without bound (1 GB in a minute at 700 msg/s). So between two batches,
when the WAL has passed `wal_restart_bytes`, the writer itself runs a RESTART checkpoint:
no commit can land meanwhile (it is the only writer), the checkpoint completes, and the
next batch writes from the WAL's start. `journal_size_limit` then trims the file back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar

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

# Past this size the writer starts the WAL over between two batches. Small enough that the
# checkpoint it takes is short (most pages are already copied by the background one), large
# enough that it comes seldom.
WAL_RESTART_BYTES = 16 * 1024 * 1024
# How long a statement of the writer waits for a lock, and a RESTART checkpoint for readers.
BUSY_TIMEOUT_MS = 10_000
RESTART_WAIT_MS = 50
# What SQLite trims the WAL file back to after it started over.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# Log positions the small search index spans before the writer moves it into the large one.
SEARCH_FOLD_SPAN = 1000
# A batch with at least this many texts indexes them straight into the large index. FTS5's
# cost per transaction is what the small index saves; spread over this many texts it is
# less than moving them over later (measured with 50 000 texts indexed, per text: 5 into
# the large index 26 µs, into the small one 16 + 9 to move; 50: 7.6 against 5.4 + 8.7).
SEARCH_DIRECT_BATCH = 8
_SEARCH_DIRECT_SQL = "INSERT INTO search (rowid, text, chat) VALUES (?, ?, ?)"

# Projection rows: the SQL that writes each type, in the order they are written within a
# commit (a chat's row exists before its activity is updated).
_ROW_SQL: dict[type[Row], str] = {
    ChatRow: "INSERT OR IGNORE INTO chats (chat, buyer_id, buyer_name, seller_id, seller_name)"
    " VALUES (?, ?, ?, ?, ?)",
    ChatActivityRow: "UPDATE chats SET last_pos = ?, last_seq = ?, waiting_since = ?,"
    " managers_from = ? WHERE chat = ?",
    SearchRow: "INSERT INTO search_recent (rowid, text, chat) VALUES (?, ?, ?)",
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


class WriterThread:
    """The write connection and the one thread that uses it."""

    def __init__(
        self,
        path: str,
        *,
        wal_restart_bytes: int = WAL_RESTART_BYTES,
        search_fold_span: int = SEARCH_FOLD_SPAN,
    ) -> None:
        self._path = path
        self._search_fold_span = search_fold_span
        self._wal_path = path + "-wal"
        self._wal_restart_bytes = wal_restart_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._db: sqlite3.Connection | None = None
        self.wal_restarts = 0

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
            fold_recent_search(db, self._search_fold_span)
            self._bound_wal(db)
        except sqlite3.Error:
            log.exception("upkeep between batches failed; trying again after the next one")

    def _bound_wal(self, db: sqlite3.Connection) -> None:
        try:
            size = os.stat(self._wal_path).st_size
        except FileNotFoundError:
            return
        if size < self._wal_restart_bytes:
            return
        # RESTART waits for readers still on an old snapshot; every commit waits behind it, so
        # it waits briefly and, if a reader is still there, tries again after the next batch.
        db.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        try:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if busy:
            # A reader held on to an old snapshot past the busy timeout: try after the next
            # batch. The WAL only grows meanwhile, it loses nothing.
            log.warning("the WAL could not start over (%d bytes); trying again", size)
        else:
            self.wal_restarts += 1

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
        db.executescript(schema.LOG + schema.PROJECTIONS)
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)",
            (secrets.token_hex(8),),
        )
        row = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
        self._db = db
        return str(row[0])

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# ---- what runs on the writer's thread ----------------------------------------------------------


def write_batch(
    db: sqlite3.Connection, requests: Sequence[AppendRequest], marks: Sequence[MarkWrite]
) -> tuple[Outcomes, list[int]]:
    """One group-commit batch in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        outcomes = _write_appends(db, requests) if requests else []
        values = _write_marks(db, marks) if marks else []
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return outcomes, values


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
            if row_type is SearchRow and len(params) >= SEARCH_DIRECT_BATCH:
                sql = _SEARCH_DIRECT_SQL  # search reads both indexes: either is right
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


def fold_recent_search(db: sqlite3.Connection, span: int) -> bool:
    """Moves the small search index into the large one, in one transaction, once it spans
    `span` positions; True if it did."""
    low, high = db.execute("SELECT min(rowid), max(rowid) FROM search_recent").fetchone()
    if low is None or high - low < span:
        return False
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO search (rowid, text, chat) SELECT rowid, text, chat FROM search_recent"
        )
        db.execute("DELETE FROM search_recent")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def rebuild_projections(db: sqlite3.Connection, project: Callable[[Stored], list[Row]]) -> None:
    """Drops every projection and derives it again from the log, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for table in schema.PROJECTION_TABLES:
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
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
