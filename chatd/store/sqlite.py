"""The default EventStore: SQLite in WAL mode.

One writer connection commits in batches (chatd.store.group_commit): each batch is one
`BEGIN IMMEDIATE` transaction with a handful of `executemany` calls, run as one call on the
writer's own thread (chatd.store.sqlite_writer), which also keeps the WAL bounded. Reads use
a small pool of aiosqlite connections (each its own thread, which WAL lets run beside the
writer and beside each other), so that one heavy read does not queue everyone else's; another
connection checkpoints the WAL beside them (see `_checkpoints`). A search runs under a budget
of SQLite's work and is refused past it (`search`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from chatd.domain.ids import ORDER_STREAM
from chatd.routing import parse_key
from chatd.search_text import found_in, phrases_of
from chatd.store.base import (
    ApiKeyRecord,
    Appended,
    AppendRequest,
    ChatListEntry,
    EventStore,
    FileEntryRow,
    LedgerEntry,
    SearchTooBroad,
    StoreClosed,
    Stored,
)
from chatd.store.group_commit import GroupCommit, MarkWrite, Outcomes
from chatd.store.rows import Row
from chatd.store.sqlite_operators import SqliteOperators
from chatd.store.sqlite_templates import SqliteTemplates
from chatd.store.sqlite_webhooks import SqliteWebhooks
from chatd.store.sqlite_writer import (
    SEARCH_INDEX_BATCH,
    SEARCH_INDEX_SLICE,
    WAL_CHECKPOINT_BYTES,
    WAL_HOLD_BYTES,
    WAL_RESTART_BYTES,
    Synchronous,
    WriterThread,
    rebuild_projections,
    write_batch,
)
from chatd.store.stats import StoreStats
from protocol.events import decode_event

log = logging.getLogger(__name__)

__all__ = ["SEARCH_BUDGET", "SqliteStore", "Synchronous"]

# Reader connections: a read takes a free one, so one heavy read (a broad search, a long
# replay page) holds one of them and the others go on answering everyone else.
READERS = 4
# SQLite virtual-machine instructions one search may spend (about 40 ms of this machine's
# CPU); past it the query is interrupted and the search refused as too broad. Counted by the
# progress handler every `_PROGRESS_STEP` instructions.
SEARCH_BUDGET = 1_000_000
# A search in one chat of at most this many events reads the chat's texts, not the index.
# Reading them costs what the chat holds; the index costs what the whole log holds: in a long
# run whose chats passed 2 000 events (the bound before) beside ~2 million indexed texts, each
# such search took ~100 ms of a reader's CPU, and three a second took a third of the core.
SCAN_CHAT_EVENTS = 10_000
# A search in one chat reads, newest first, pages of at most this many texts that hold
# every token of the query (SQLite's test); the event loop matches each page in full
# (chatd.search_text.found_in) while every socket waits, and runs other work between pages.
CANDIDATE_PAGE = 200
_PROGRESS_STEP = 1_000


class SqliteStore(SqliteWebhooks, SqliteTemplates, SqliteOperators, EventStore):
    """SQLite at `path` (":memory:" is not supported: the reader needs a second connection)."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "full",
        max_batch: int = 512,
        stats: StoreStats | None = None,
        checkpoint_interval: float = 1.0,
        wal_checkpoint_bytes: int = WAL_CHECKPOINT_BYTES,
        wal_restart_bytes: int = WAL_RESTART_BYTES,
        wal_hold_bytes: int = WAL_HOLD_BYTES,
        search_index_batch: int = SEARCH_INDEX_BATCH,
        search_index_slice: int = SEARCH_INDEX_SLICE,
        readers: int = READERS,
        search_budget: int = SEARCH_BUDGET,
    ) -> None:
        if readers < 1:
            raise ValueError("a store needs at least one reader connection")
        self._path = str(path)
        self._synchronous = synchronous
        self._writer = WriterThread(
            self._path,
            wal_checkpoint_bytes=wal_checkpoint_bytes,
            wal_restart_bytes=wal_restart_bytes,
            wal_hold_bytes=wal_hold_bytes,
            search_index_batch=search_index_batch,
            search_index_slice=search_index_slice,
        )
        self._reader_count = readers
        self._readers: list[aiosqlite.Connection] = []
        self._free_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        # Long reads (feed pages, the whole log, searches) may hold all readers but one: a
        # short read (a history page, a chat's summary) always finds one soon, however many
        # replays and searches queue.
        self._long_reads = asyncio.Semaphore(max(1, readers - 1))
        self._search_budget = search_budget
        self._checkpoint_db: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_interval = checkpoint_interval
        self._committed_since_checkpoint = False
        self._stats = stats or StoreStats()
        self._commits = GroupCommit(
            self._write,
            constraint_errors=(sqlite3.IntegrityError,),
            max_batch=max_batch,
            stats=self._stats,
            name="sqlite-writer",
        )
        self._log_id = ""
        self._closing = False

    @property
    def log_id(self) -> str:
        return self._log_id

    @property
    def wal_restarts(self) -> int:
        """How many RESTART checkpoints the writer ran (see `WriterThread`)."""
        return self._writer.wal_restarts

    @property
    def wal_restart_seconds(self) -> float:
        """Time the writer spent starting the WAL over (no commit lands meanwhile)."""
        return self._writer.wal_restart_seconds

    @property
    def wal_checkpoints(self) -> int:
        """How many PASSIVE checkpoints the writer ran between batches."""
        return self._writer.wal_checkpoints

    @property
    def wal_checkpoint_seconds(self) -> float:
        """Time the writer spent in them (no commit lands meanwhile)."""
        return self._writer.wal_checkpoint_seconds

    @property
    def wal_copies(self) -> int:
        """How many PASSIVE checkpoints the copier ran beside the commits (`WalCopier`)."""
        return self._writer.copier.copies

    @property
    def wal_copy_seconds(self) -> float:
        """Time they took (commits go on meanwhile)."""
        return self._writer.copier.seconds

    @property
    def wal_copy_waits(self) -> int:
        """How many times the writer waited for a copy (the WAL past `wal_hold_bytes`)."""
        return self._writer.wal_copy_waits

    @property
    def wal_copy_wait_seconds(self) -> float:
        """Time it waited (no commit lands meanwhile)."""
        return self._writer.wal_copy_wait_seconds

    def wal_bytes(self) -> int:
        """The WAL file's size now (0 when there is none), for /metrics."""
        try:
            return os.stat(self._path + "-wal").st_size
        except FileNotFoundError:
            return 0

    # ---- life cycle --------------------------------------------------------------------------

    async def open(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._log_id = await self._writer.open(self._synchronous)
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(self._path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout = 10000")
            await reader.execute("PRAGMA query_only = 1")
            self._readers.append(reader)
            self._free_readers.put_nowait(reader)
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
        readers, self._readers = self._readers, []
        for conn in (self._checkpoint_db, *readers):
            if conn is not None:
                await conn.close()
        await self._writer.close()

    async def _checkpoints(self) -> None:
        """Copies committed pages from the WAL into the database file, beside the writer.

        Left to itself, SQLite checkpoints inside the commit that takes the WAL past 1 000
        pages, and with synchronous=FULL that commit then also waits for the database file's
        fsync, and so does every ack in its batch and every command queued behind it. A
        PASSIVE checkpoint on another connection never blocks the writer, so that when the
        writer starts the WAL over (`WriterThread`) there is little left to copy.
        """
        db = self._require(self._checkpoint_db)
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            if not self._committed_since_checkpoint:
                continue
            self._committed_since_checkpoint = False
            try:
                started = time.perf_counter()
                # Run to completion in one call: no statement stays open on this connection.
                await db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
                self._stats.observe_checkpoint(time.perf_counter() - started)
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
        # One call into the writer's thread for the whole batch: the event loop wakes once
        # when it is committed, not once per statement.
        written = await self._writer.run(write_batch, requests, marks)
        self._committed_since_checkpoint = True
        return written

    # ---- reads -------------------------------------------------------------------------------

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StoreClosed("the store is not open")
        return conn

    @contextlib.asynccontextmanager
    async def _reading(self, *, long: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection of the pool, to this caller alone until the block ends; a
        `long` read first waits for its turn among the long ones."""
        if self._closing or not self._readers:
            raise StoreClosed("the store is not open")
        async with contextlib.AsyncExitStack() as turn:
            if long:
                await turn.enter_async_context(self._long_reads)
            db = await self._free_readers.get()
            try:
                yield db
            finally:
                self._free_readers.put_nowait(db)

    async def _fetch(
        self, sql: str, params: Iterable[Any] = (), *, long: bool = False
    ) -> list[sqlite3.Row]:
        async with self._reading(long=long) as db:
            # One call into the reader's thread: a statement left open between `execute` and
            # `fetchall` would hold its read snapshot, and another query interleaved on this
            # connection would read from it, missing commits made since (no read-your-writes).
            rows = await db.execute_fetchall(sql, tuple(params))
        return list(rows)

    @staticmethod
    def _stored(rows: Iterable[Any]) -> list[Stored]:
        return [Stored(int(pos), decode_event(body)) for pos, body in rows]

    async def read_stream(
        self,
        stream: str,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int | None = None,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        upper = before if before is not None else 2**62
        hidden, kinds = _without_kinds("kind", hide_kinds)
        if limit is None:
            rows = await self._fetch(
                "SELECT pos, body FROM events WHERE stream = ? AND seq > ? AND seq < ?"
                f"{hidden} ORDER BY seq",
                (stream, after, upper, *kinds),
            )
            return self._stored(rows)
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE stream = ? AND seq > ? AND seq < ?"
            f"{hidden} ORDER BY seq DESC LIMIT ?",
            (stream, after, upper, *kinds, limit),
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
            long=True,
        )
        return self._stored(rows)

    async def read_all(self, after: int, limit: int) -> list[Stored]:
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE pos > ? ORDER BY pos LIMIT ?",
            (after, limit),
            long=True,
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
        kind, ident = parse_key(key)
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

    async def count_unread(
        self, chat: str, side: str, after_seq: int, hide_kinds: Collection[str] = ()
    ) -> int:
        hidden, kinds = _without_kinds("kind", hide_kinds)
        rows = await self._fetch(
            "SELECT count(*) FROM events WHERE stream = ? AND seq > ? AND has_text AND side != ?"
            + hidden,
            (chat, after_seq, side, *kinds),
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

    async def waiting_claims(self) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT claim, chat FROM claims INDEXED BY claims_waiting"
            " WHERE state IN ('requested', 'awaiting_buyer') ORDER BY claim"
        )
        return [(str(claim), str(chat)) for claim, chat in rows]

    async def claims_seen_by(
        self, key: str, state: str | None = None, order: str | None = None
    ) -> list[tuple[str, str]]:
        kind, ident = parse_key(key)
        where = {
            "b": "h.buyer_id = ?",
            "s": "h.seller_id = ?",
            "m": "h.managers_from IS NOT NULL",
        }[kind]
        params: list[Any] = [ident] if kind != "m" else []
        if state is not None:
            where += " AND c.state = ?"
            params.append(state)
        if order is not None:
            where += " AND c.ord = ?"
            params.append(order)
        rows = await self._fetch(
            f"SELECT c.claim, c.chat FROM claims c JOIN chats h ON h.chat = c.chat"
            f" WHERE {where} ORDER BY c.claim",
            params,
        )
        return [(str(claim), str(chat)) for claim, chat in rows]

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
        kind, ident = parse_key(key)
        column = {"b": "buyer", "s": "seller"}.get(kind)
        if column is None:
            return None
        rows = await self._fetch(
            f"SELECT {column}_name FROM orders WHERE {column}_id = ? ORDER BY pos DESC LIMIT 1",
            (ident,),
        )
        return str(rows[0][0]) if rows else None

    async def search(
        self,
        key: str,
        words: list[str],
        chat: str | None,
        limit: int,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        if not words:
            return []
        kind, ident = parse_key(key)
        whose: list[Any] = []
        if kind == "b":
            who = "c.buyer_id = ?"
            whose.append(ident)
        elif kind == "s":
            who = "c.seller_id = ?"
            whose.append(ident)
        else:
            # Managers search a disputed chat in full (docs/protocol.md 2), not from the dispute on.
            who = "c.managers_from IS NOT NULL"
        if chat is not None:
            who += " AND c.chat = ?"
            whose.append(chat)
        # Each word a quoted prefix: user input never becomes FTS5 syntax.
        query = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
        if chat is not None:
            found = await self._search_chat(who, whose, words, chat, limit, hide_kinds)
            if found is not None:
                return found
        # Texts reach the index in batches after their commits: the queue goes in first, so
        # the search sees every text committed before it started.
        await self._writer.index_search_queue()
        async with self._reading(long=True) as db, self._budget(db):
            # The user's chats first: the log positions they span bound the index's rowids,
            # which FTS5 seeks to instead of walking every user's matches (ten times less
            # work for a buyer among thousands). A user with no chat never reaches the index.
            span = await db.execute_fetchall(
                "SELECT min(e.pos), max(c.last_pos) FROM chats c"
                f" JOIN events e ON e.stream = c.chat AND e.seq = 1 WHERE {who}",
                tuple(whose),
            )
            low, high = next(iter(span))
            if low is None:
                return []
            if not hide_kinds:
                # A chat's `last_pos` is its latest event that every reader sees (the shop's
                # notes leave it: chatd.projection); one who sees every kind may find a note
                # written after it, so the index is read to the log's end.
                high = 2**62
            hidden, kinds = _without_kinds("e.kind", hide_kinds)
            sql = (
                "SELECT e.pos, e.body FROM ("
                " SELECT rowid, chat FROM search WHERE search MATCH ? AND rowid BETWEEN ? AND ?"
                ") s JOIN chats c ON c.chat = s.chat JOIN events e ON e.pos = s.rowid"
                f" WHERE {who}{hidden} ORDER BY s.rowid DESC LIMIT ?"
            )
            params = (query, low, high, *whose, *kinds, limit)
            rows = await db.execute_fetchall(sql, params)
        return self._stored(rows)

    async def _search_chat(
        self,
        who: str,
        whose: list[Any],
        words: list[str],
        chat: str,
        limit: int,
        hide_kinds: Collection[str],
    ) -> list[Stored] | None:
        """A search in one chat of at most SCAN_CHAT_EVENTS events, by reading the chat's
        texts (None for a longer chat: the index then).

        The index is no help for one chat: its rowids can be bounded only by the chat's first
        and last positions, which for a chat that lives long span the whole log, and a prefix
        query reads every text of the range that has a word of that prefix, inside FTS5,
        where the search budget does not see it (18-40 ms a search at 350 000 texts, and
        growing with the log). Reading the chat's own texts costs what the chat holds.
        `chatd.search_text.found_in` finds what the index's query would.
        """
        hidden, kinds = _without_kinds("e.kind", hide_kinds)
        head = await self._fetch(
            f"SELECT (SELECT max(seq) FROM events WHERE stream = ?) FROM chats c WHERE {who}",
            (chat, *whose),
        )
        if not head:
            return []  # not a chat of this user's
        ((last,),) = head
        if last is None or last > SCAN_CHAT_EVENTS:
            return None
        query = phrases_of(words)  # once, not for every text
        if not query:
            return []
        # Every token of the query is in a text it finds, as a substring at least, and the
        # texts are stored normalised as the query is (chatd.projection): SQLite drops the
        # texts that lack one, in C on a reader's thread. Only those that have them all come
        # to the event loop, where `found_in` reads them in full (token starts, phrases);
        # before, every text of the chat came, and the loop spent ~4 µs on each.
        tokens = sorted({token for phrase in query for token in phrase})
        # Two sources, each read newest first, a page at a time, each row its paging key,
        # position and text. The texts not yet indexed first: the queue holds the newest
        # (the writer moves its oldest into the index), and need not be emptied before a
        # search (every search did that, a transaction of the writer's, and commits waited
        # behind it); read before the index, a text the writer moves in between is read
        # twice, never missed. The index's texts come from its own table of them (FTS5's
        # `search_content`, a plain table by rowid): three times quicker than through the
        # virtual table.
        queued = (
            "SELECT q.pos, q.pos, q.text FROM search_queue q JOIN events e ON e.pos = q.pos"
            f" WHERE q.chat = ? AND q.pos < ?{hidden}{_holding(tokens, 'q.text')}"
            " ORDER BY q.pos DESC LIMIT ?"
        )
        indexed = (
            "SELECT e.seq, e.pos, s.c0 FROM events e JOIN search_content s ON s.id = e.pos"
            f" WHERE e.stream = ? AND e.seq < ?{hidden}{_holding(tokens, 's.c0')}"
            " ORDER BY e.seq DESC LIMIT ?"
        )
        hits: dict[int, None] = {}  # in order, each once
        for sql, below in ((queued, 2**62), (indexed, last + 1)):
            while len(hits) < limit:
                page = await self._fetch(sql, (chat, below, *kinds, *tokens, CANDIDATE_PAGE))
                for _, pos, text in page:
                    if pos not in hits and found_in(query, text):
                        hits[pos] = None
                        if len(hits) >= limit:
                            break
                if len(page) < CANDIDATE_PAGE:
                    break
                below = page[-1][0]
        if not hits:
            return []
        rows = await self._fetch(
            f"SELECT pos, body FROM events WHERE pos IN ({','.join('?' * len(hits))})"
            " ORDER BY pos DESC",
            hits,
        )
        return self._stored(rows)

    @contextlib.asynccontextmanager
    async def _budget(self, db: aiosqlite.Connection) -> AsyncIterator[None]:
        """Interrupts what `db` runs in the block once it has spent the search budget, and
        raises SearchTooBroad for it: one search must not hold a reader (and a core) for as
        long as it likes. The work is counted in SQLite's instructions, not in seconds, so the
        same query is refused on a busy machine and on an idle one alike."""
        ticks = 0
        step = max(1, min(_PROGRESS_STEP, self._search_budget))
        allowed = self._search_budget // step

        def spend() -> int:
            nonlocal ticks
            ticks += 1
            return 1 if ticks > allowed else 0

        await db.set_progress_handler(spend, step)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if ticks > allowed:
                raise SearchTooBroad(
                    f"the search took more than its budget of {self._search_budget} steps"
                ) from exc
            raise
        finally:
            await db.set_progress_handler(None, 0)  # type: ignore[arg-type]

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
        # The files projection also lists orders' photos, under the orders' streams.
        rows = await self._fetch(
            "SELECT DISTINCT chat FROM files WHERE file = ? AND substr(chat, 1, ?) <> ?",
            (file, len(ORDER_STREAM), ORDER_STREAM),
        )
        return [str(r[0]) for r in rows]

    async def orders_with_file(self, file: str) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT chat FROM files WHERE file = ? AND substr(chat, 1, ?) = ?"
            " ORDER BY chat",
            (file, len(ORDER_STREAM), ORDER_STREAM),
        )
        return [str(r[0])[len(ORDER_STREAM) :] for r in rows]

    async def balances(self, key: str) -> dict[str, int]:
        kind, ident = parse_key(key)
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
        # The writer task is idle for the duration: rebuild runs on a store no server uses.
        await self._writer.run(rebuild_projections, project)

    # ---- API keys ----------------------------------------------------------------------------

    _KEY_COLUMNS = "id, shop, name, scopes, digest, created_at"

    @staticmethod
    def _key(row: Sequence[Any]) -> ApiKeyRecord:
        return ApiKeyRecord(
            id=str(row[0]),
            shop=str(row[1]),
            name=str(row[2]),
            scopes=tuple(str(row[3]).split()),
            digest=bytes(row[4]),
            created_at=datetime.fromisoformat(row[5]),
        )

    async def create_key(self, record: ApiKeyRecord) -> None:
        # On the writer's thread, between two batches: the one connection that writes.
        await self._writer.run(_insert_key, record)

    async def key_by_digest(self, digest: bytes) -> ApiKeyRecord | None:
        rows = await self._fetch(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE digest = ? AND revoked_at IS NULL",
            (digest,),
        )
        return self._key(rows[0]) if rows else None

    async def keys_of_shop(self, shop: str) -> list[ApiKeyRecord]:
        rows = await self._fetch(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE shop = ? AND revoked_at IS NULL"
            " ORDER BY created_at, id",
            (shop,),
        )
        return [self._key(r) for r in rows]

    async def revoke_key(self, shop: str, key: str, at: datetime) -> bool:
        return await self._writer.run(_revoke_key, shop, key, at)

    async def live_keys(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        rows = await self._fetch(
            f"SELECT id FROM api_keys WHERE id IN ({marks}) AND revoked_at IS NULL", keys
        )
        return {str(r[0]) for r in rows}


# ---- what runs on the writer's thread for the keys -------------------------------------------


def _insert_key(db: sqlite3.Connection, record: ApiKeyRecord) -> None:
    # One statement in autocommit: committed (and with synchronous=FULL, synced) on return.
    db.execute(
        "INSERT INTO api_keys (id, shop, name, scopes, digest, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.shop,
            record.name,
            " ".join(record.scopes),
            record.digest,
            record.created_at.isoformat(),
        ),
    )


def _revoke_key(db: sqlite3.Connection, shop: str, key: str, at: datetime) -> bool:
    cursor = db.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND shop = ? AND revoked_at IS NULL",
        (at.isoformat(), key, shop),
    )
    return cursor.rowcount == 1


def _holding(tokens: list[str], column: str) -> str:
    """A condition that `column` holds each of `tokens` (one parameter each)."""
    return "".join(f" AND instr({column}, ?) > 0" for _ in tokens)


def _without_kinds(column: str, kinds: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """A condition leaving out events of `kinds` (`""` for none) and its parameters."""
    if not kinds:
        return "", ()
    ordered = tuple(sorted(kinds))
    return f" AND {column} NOT IN ({','.join('?' * len(ordered))})", ordered
