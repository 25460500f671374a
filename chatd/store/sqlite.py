"""The default EventStore: SQLite in WAL mode through aiosqlite.

One writer connection commits in batches (chatd.store.group_commit): each batch is one
`BEGIN IMMEDIATE` transaction with a handful of `executemany` calls. Reads use a second
connection, which WAL lets run beside the writer, and a third one checkpoints the WAL
beside it too (see `_checkpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from chatd.store import sqlite_schema as schema
from chatd.store.base import (
    Appended,
    AppendRequest,
    ChatListEntry,
    EventStore,
    FileEntryRow,
    LedgerEntry,
    StoreClosed,
    Stored,
    split_key,
)
from chatd.store.group_commit import GroupCommit, MarkWrite, Outcomes, plan_appends
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
from chatd.store.stats import StoreStats
from protocol.events import decode_event

log = logging.getLogger(__name__)

Synchronous = Literal["full", "normal"]

# Projection rows: the SQL that writes each type, in the order they are written within a
# commit (a chat's row exists before its activity is updated).
_ROW_SQL: dict[type[Row], str] = {
    ChatRow: "INSERT OR IGNORE INTO chats (chat, buyer_id, buyer_name, seller_id, seller_name)"
    " VALUES (?, ?, ?, ?, ?)",
    ChatActivityRow: "UPDATE chats SET last_pos = ?, last_seq = ?, waiting_since = ?,"
    " managers_from = ? WHERE chat = ?",
    SearchRow: "INSERT INTO search (rowid, text, chat) VALUES (?, ?, ?)",
    ClaimRow: "INSERT INTO claims (claim, chat, ord, state) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (claim) DO UPDATE SET state = excluded.state",
    OrderRow: "INSERT OR REPLACE INTO orders"
    " (ord, buyer_id, buyer_name, seller_id, seller_name, pos, card) VALUES (?, ?, ?, ?, ?, ?, ?)",
    LedgerRow: "INSERT INTO ledger (claim, ord, buyer_id, seller_id, value, currency, at,"
    " article, name, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    FileRow: "INSERT OR IGNORE INTO files (chat, pos, file, seq, name, mime, size, at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _params(row: Row) -> tuple[Any, ...]:
    match row:
        case ChatRow():
            return (row.chat, row.buyer_id, row.buyer_name, row.seller_id, row.seller_name)
        case ChatActivityRow():
            since = _iso(row.waiting_since)
            return (row.last_pos, row.last_seq, since, row.managers_from, row.chat)
        case SearchRow():
            return (row.pos, row.text, row.chat)
        case ClaimRow():
            return (row.claim, row.chat, row.order, row.state)
        case OrderRow():
            return (
                row.order,
                row.buyer_id,
                row.buyer_name,
                row.seller_id,
                row.seller_name,
                row.pos,
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
                row.pos,
                row.file,
                row.seq,
                row.name,
                row.mime,
                row.size,
                _iso(row.at),
            )
    raise TypeError(f"not a projection row: {row!r}")


class SqliteStore(EventStore):
    """SQLite at `path` (":memory:" is not supported: the reader needs a second connection)."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "full",
        max_batch: int = 512,
        stats: StoreStats | None = None,
        checkpoint_interval: float = 1.0,
    ) -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpoint_db: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_interval = checkpoint_interval
        self._committed_since_checkpoint = False
        self._commits = GroupCommit(
            self._write,
            constraint_errors=(sqlite3.IntegrityError,),
            max_batch=max_batch,
            stats=stats or StoreStats(),
            name="sqlite-writer",
        )
        self._log_id = ""
        self._closing = False

    @property
    def log_id(self) -> str:
        return self._log_id

    # ---- life cycle --------------------------------------------------------------------------

    async def open(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await aiosqlite.connect(self._path, isolation_level=None)
        await self._writer.execute("PRAGMA journal_mode = WAL")
        await self._writer.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
        await self._writer.execute("PRAGMA busy_timeout = 10000")
        # The writer never checkpoints: `_checkpoints` does, on its own connection.
        await self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        await self._writer.executescript(schema.LOG + schema.PROJECTIONS)
        await self._writer.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)",
            (secrets.token_hex(8),),
        )
        async with self._writer.execute("SELECT value FROM meta WHERE key = 'log_id'") as cur:
            row = await cur.fetchone()
        assert row is not None
        self._log_id = str(row[0])
        self._reader = await aiosqlite.connect(self._path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout = 10000")
        await self._reader.execute("PRAGMA query_only = 1")
        self._checkpoint_db = await aiosqlite.connect(self._path, isolation_level=None)
        self._commits.start()
        self._checkpointer = asyncio.create_task(self._checkpoints(), name="sqlite-checkpoints")

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await self._commits.stop()
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        # The last connection to close checkpoints what is left and removes the WAL.
        for conn in (self._checkpoint_db, self._reader, self._writer):
            if conn is not None:
                await conn.close()

    async def _checkpoints(self) -> None:
        """Copies committed pages from the WAL into the database file, beside the writer.

        Left to itself, SQLite checkpoints inside the commit that takes the WAL past 1 000
        pages, and with synchronous=FULL that commit then also waits for the database file's
        fsync, and so does every ack in its batch and every command queued behind it. A
        PASSIVE checkpoint on another connection never blocks the writer, and once it has
        copied the whole WAL the writer starts the WAL over from its beginning, so the file
        stays small.
        """
        db = self._require(self._checkpoint_db)
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            if not self._committed_since_checkpoint:
                continue
            self._committed_since_checkpoint = False
            try:
                # Run to completion in one call: no statement stays open on this connection.
                await db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                # A checkpoint that failed is taken again at the next interval.
                log.warning("WAL checkpoint failed: %s", exc)
                self._committed_since_checkpoint = True

    # ---- writes ------------------------------------------------------------------------------

    async def append(self, request: AppendRequest) -> Appended:
        return await self._commits.append(request)

    async def set_read_mark(self, chat: str, side: str, seq: int) -> int:
        return await self._commits.set_read_mark(chat, side, seq)

    async def _write(
        self, requests: Sequence[AppendRequest], marks: Sequence[MarkWrite]
    ) -> tuple[Outcomes, list[int]]:
        db = self._require(self._writer)
        await db.execute("BEGIN IMMEDIATE")
        try:
            outcomes = await self._write_appends(db, requests) if requests else []
            values = await self._write_marks(db, marks) if marks else []
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        self._committed_since_checkpoint = True
        return outcomes, values

    async def _write_appends(
        self, db: aiosqlite.Connection, requests: Sequence[AppendRequest]
    ) -> Outcomes:
        # BEGIN IMMEDIATE holds the database's write lock: heads, nonces and the last
        # position cannot move until the commit.
        heads = await self._heads(db, {r.stream for r in requests})
        seen = await self._nonces(db, [r.nonce for r in requests if r.nonce])
        async with db.execute("SELECT coalesce(max(pos), 0) FROM events") as cur:
            last = await cur.fetchone()
        plan = plan_appends(
            requests, last_pos=int(last[0]) if last else 0, heads=heads, seen=seen, params=_params
        )
        if plan.events:
            await db.executemany(
                "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                plan.events,
            )
        if plan.feed:
            await db.executemany("INSERT OR IGNORE INTO feed (key, pos) VALUES (?, ?)", plan.feed)
        if plan.nonces:
            await db.executemany(
                "INSERT INTO nonces (user, nonce, stream, seq, pos) VALUES (?, ?, ?, ?, ?)",
                plan.nonces,
            )
        for row_type, sql in _ROW_SQL.items():
            params = plan.projection.get(row_type)
            if params:
                await db.executemany(sql, params)
        return plan.outcomes

    async def _heads(self, db: aiosqlite.Connection, streams: set[str]) -> dict[str, int]:
        heads: dict[str, int] = {}
        names = list(streams)
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with db.execute(
                f"SELECT stream, max(seq) FROM events WHERE stream IN ({marks}) GROUP BY stream",
                chunk,
            ) as cur:
                heads.update({str(s): int(q) for s, q in await cur.fetchall()})
        return heads

    async def _nonces(
        self, db: aiosqlite.Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int, int]]:
        found: dict[tuple[str, str], tuple[str, int, int]] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            values = ",".join("(?, ?)" for _ in chunk)
            flat = [part for key in chunk for part in key]
            async with db.execute(
                f"SELECT user, nonce, stream, seq, pos FROM nonces"
                f" WHERE (user, nonce) IN (VALUES {values})",
                flat,
            ) as cur:
                for user, nonce, stream, seq, pos in await cur.fetchall():
                    found[(user, nonce)] = (stream, int(seq), int(pos))
        return found

    async def _write_marks(self, db: aiosqlite.Connection, marks: Sequence[MarkWrite]) -> list[int]:
        await db.executemany(
            "INSERT INTO read_marks (chat, side, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (chat, side) DO UPDATE SET seq = max(seq, excluded.seq)",
            [(m.chat, m.side, m.seq) for m in marks],
        )
        keys = list({(m.chat, m.side) for m in marks})
        values = ",".join("(?, ?)" for _ in keys)
        async with db.execute(
            f"SELECT chat, side, seq FROM read_marks WHERE (chat, side) IN (VALUES {values})",
            [part for key in keys for part in key],
        ) as cur:
            now = {(c, s): int(q) for c, s, q in await cur.fetchall()}
        return [now[(m.chat, m.side)] for m in marks]

    # ---- reads -------------------------------------------------------------------------------

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StoreClosed("the store is not open")
        return conn

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        db = self._require(self._reader)
        # One call into the reader's thread: a statement left open between `execute` and
        # `fetchall` would hold its read snapshot, and another query interleaved on this
        # connection would read from it, missing commits made since (no read-your-writes).
        rows = await db.execute_fetchall(sql, tuple(params))
        return list(rows)

    @staticmethod
    def _stored(rows: Iterable[Any]) -> list[Stored]:
        return [Stored(int(pos), decode_event(body)) for pos, body in rows]

    async def read_stream(
        self, stream: str, *, after: int = 0, before: int | None = None, limit: int | None = None
    ) -> list[Stored]:
        upper = before if before is not None else 2**62
        if limit is None:
            rows = await self._fetch(
                "SELECT pos, body FROM events WHERE stream = ? AND seq > ? AND seq < ?"
                " ORDER BY seq",
                (stream, after, upper),
            )
            return self._stored(rows)
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE stream = ? AND seq > ? AND seq < ?"
            " ORDER BY seq DESC LIMIT ?",
            (stream, after, upper, limit),
        )
        return self._stored(reversed(rows))

    async def last_position(self) -> int:
        rows = await self._fetch("SELECT coalesce(max(pos), 0) FROM events")
        return int(rows[0][0])

    async def read_feed(self, keys: list[str], after: int, limit: int) -> list[Stored]:
        marks = ",".join("?" * len(keys))
        rows = await self._fetch(
            f"SELECT DISTINCT e.pos, e.body FROM feed f JOIN events e ON e.pos = f.pos"
            f" WHERE f.key IN ({marks}) AND f.pos > ? ORDER BY f.pos LIMIT ?",
            (*keys, after, limit),
        )
        return self._stored(rows)

    async def read_all(self, after: int, limit: int) -> list[Stored]:
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE pos > ? ORDER BY pos LIMIT ?", (after, limit)
        )
        return self._stored(rows)

    async def read_marks(self, chat: str) -> dict[str, int]:
        rows = await self._fetch("SELECT side, seq FROM read_marks WHERE chat = ?", (chat,))
        return {str(side): int(seq) for side, seq in rows}

    # ---- projections -------------------------------------------------------------------------

    _CHAT_COLUMNS = (
        "chat, buyer_id, buyer_name, seller_id, seller_name, last_pos, last_seq,"
        " waiting_since, managers_from"
    )

    @staticmethod
    def _chat_entry(row: Sequence[Any]) -> ChatListEntry:
        return ChatListEntry(
            chat=row[0],
            buyer_id=row[1],
            buyer_name=row[2],
            seller_id=row[3],
            seller_name=row[4],
            last_pos=int(row[5]),
            last_seq=int(row[6]),
            waiting_since=None if row[7] is None else datetime.fromisoformat(row[7]),
            managers_from=None if row[8] is None else int(row[8]),
        )

    async def list_chats(self, key: str, before_pos: int | None, limit: int) -> list[ChatListEntry]:
        kind, ident = split_key(key)
        below = before_pos if before_pos is not None else 2**62
        params: tuple[Any, ...]
        if kind == "b":
            where, params = "buyer_id = ? AND last_pos < ?", (ident, below)
        elif kind == "s":
            where, params = "seller_id = ? AND last_pos < ?", (ident, below)
        else:
            where, params = "managers_from IS NOT NULL AND last_pos < ?", (below,)
        rows = await self._fetch(
            f"SELECT {self._CHAT_COLUMNS} FROM chats WHERE {where} ORDER BY last_pos DESC LIMIT ?",
            (*params, limit),
        )
        return [self._chat_entry(r) for r in rows]

    async def chat_entry(self, chat: str) -> ChatListEntry | None:
        rows = await self._fetch(f"SELECT {self._CHAT_COLUMNS} FROM chats WHERE chat = ?", (chat,))
        return self._chat_entry(rows[0]) if rows else None

    async def count_unread(self, chat: str, side: str, after_seq: int) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM events WHERE stream = ? AND seq > ? AND has_text AND side != ?",
            (chat, after_seq, side),
        )
        return int(rows[0][0])

    async def claims_of_chat(self, chat: str) -> list[tuple[str, str, str]]:
        rows = await self._fetch(
            "SELECT claim, ord, state FROM claims WHERE chat = ? ORDER BY claim", (chat,)
        )
        return [(str(c), str(o), str(s)) for c, o, s in rows]

    async def chat_of_claim(self, claim: str) -> str | None:
        rows = await self._fetch("SELECT chat FROM claims WHERE claim = ?", (claim,))
        return str(rows[0][0]) if rows else None

    async def order_card(self, order: str) -> bytes | None:
        rows = await self._fetch("SELECT card FROM orders WHERE ord = ?", (order,))
        return bytes(rows[0][0]) if rows else None

    async def orders_between(self, buyer: str, seller: str) -> list[bytes]:
        rows = await self._fetch(
            "SELECT card FROM orders WHERE buyer_id = ? AND seller_id = ? ORDER BY pos DESC",
            (buyer, seller),
        )
        return [bytes(r[0]) for r in rows]

    async def party_name(self, key: str) -> str | None:
        kind, ident = split_key(key)
        column = {"b": "buyer", "s": "seller"}.get(kind)
        if column is None:
            return None
        rows = await self._fetch(
            f"SELECT {column}_name FROM orders WHERE {column}_id = ? ORDER BY pos DESC LIMIT 1",
            (ident,),
        )
        return str(rows[0][0]) if rows else None

    async def search(
        self, key: str, words: list[str], chat: str | None, limit: int
    ) -> list[Stored]:
        if not words:
            return []
        kind, ident = split_key(key)
        # Each word a quoted prefix: user input never becomes FTS5 syntax.
        query = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
        sql = (
            "SELECT e.pos, e.body FROM search s JOIN chats c ON c.chat = s.chat"
            " JOIN events e ON e.pos = s.rowid WHERE search MATCH ?"
        )
        params: list[Any] = [query]
        if kind == "b":
            sql += " AND c.buyer_id = ?"
            params.append(ident)
        elif kind == "s":
            sql += " AND c.seller_id = ?"
            params.append(ident)
        else:
            # Managers search a disputed chat in full (PROTOCOL.md 2), not from the dispute on.
            sql += " AND c.managers_from IS NOT NULL"
        if chat is not None:
            sql += " AND s.chat = ?"
            params.append(chat)
        sql += " ORDER BY s.rowid DESC LIMIT ?"
        params.append(limit)
        return self._stored(await self._fetch(sql, params))

    async def files_of_chat(self, chat: str) -> list[FileEntryRow]:
        rows = await self._fetch(
            "SELECT pos, seq, file, name, mime, size, at FROM files WHERE chat = ?"
            " ORDER BY pos DESC, file",
            (chat,),
        )
        return [
            FileEntryRow(
                pos=int(p),
                seq=int(q),
                file=f,
                name=n,
                mime=m,
                size=int(z),
                at=datetime.fromisoformat(a),
            )
            for p, q, f, n, m, z, a in rows
        ]

    async def chats_with_file(self, file: str) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT chat FROM files WHERE file = ?", (file,))
        return [str(r[0]) for r in rows]

    async def balances(self, key: str) -> dict[str, int]:
        kind, ident = split_key(key)
        if kind == "b":
            sql = "SELECT currency, sum(value) FROM ledger WHERE buyer_id = ? GROUP BY currency"
        elif kind == "s":
            sql = "SELECT currency, -sum(value) FROM ledger WHERE seller_id = ? GROUP BY currency"
        else:
            raise ValueError("managers have no balance")
        return {str(c): int(v) for c, v in await self._fetch(sql, (ident,))}

    async def sales_report(self, seller: str) -> list[LedgerEntry]:
        rows = await self._fetch(
            "SELECT at, ord, article, name, value, currency, reason FROM ledger"
            " WHERE seller_id = ? ORDER BY at, claim",
            (seller,),
        )
        return [
            LedgerEntry(
                at=datetime.fromisoformat(at),
                order=o,
                article=a,
                name=n,
                value=-int(v),
                currency=c,
                reason=r,
            )
            for at, o, a, n, v, c, r in rows
        ]

    # ---- rebuild -----------------------------------------------------------------------------

    async def rebuild(self, project: Callable[[Stored], list[Row]]) -> None:
        db = self._require(self._writer)
        # The writer task is idle for the duration: rebuild runs on a store no server uses.
        await db.execute("BEGIN IMMEDIATE")
        try:
            for table in schema.PROJECTION_TABLES:
                await db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in schema.PROJECTIONS.split(";"):
                if statement.strip():
                    await db.execute(statement)
            after = 0
            while True:
                async with db.execute(
                    "SELECT pos, body FROM events WHERE pos > ? ORDER BY pos LIMIT 2000", (after,)
                ) as cur:
                    chunk = self._stored(await cur.fetchall())
                if not chunk:
                    break
                for stored in chunk:
                    for row in project(stored):
                        await db.execute(_ROW_SQL[type(row)], _params(row))
                after = chunk[-1].pos
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
