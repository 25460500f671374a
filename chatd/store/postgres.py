"""The EventStore on PostgreSQL through asyncpg, for several chatd nodes sharing one log.

Like the SQLite store, each process commits its appends in batches
(chatd.store.group_commit). What differs is that several
processes write to one database at once, which makes the global position `pos` the hard
part: see `_lock_log`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from chatd.domain.ids import ORDER_STREAM
from chatd.routing import parse_key
from chatd.store import postgres_schema as schema
from chatd.store.base import (
    ApiKeyRecord,
    Appended,
    AppendRequest,
    ChatListEntry,
    EventStore,
    FileEntryRow,
    LedgerEntry,
    StoreClosed,
    Stored,
    StoreUnavailable,
)
from chatd.store.group_commit import GroupCommit, MarkWrite, Outcomes, plan_appends
from chatd.store.postgres_migrations import migrate as migrate_schema
from chatd.store.postgres_operators import PostgresOperators
from chatd.store.postgres_schema import ROW_SQL, row_params, search_query
from chatd.store.postgres_templates import PostgresTemplates
from chatd.store.postgres_webhooks import PostgresWebhooks
from chatd.store.rows import Row
from chatd.store.stats import StoreStats
from protocol.events import decode_event

log = logging.getLogger(__name__)

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Past every seq (integer column) and every position (bigint column).
_NO_SEQ = 2**31 - 1
_NO_POS = 2**62

# A database that stops answering (a partition, a host gone without a word) must not hold a
# call, or the log's write lock, for ever; TCP alone would give up only after many minutes.
# A node gone silent inside a transaction loses the transaction, and the log's lock with it,
# after IDLE_IN_TRANSACTION seconds: PostgreSQL ends its session, and the other nodes write
# on. Connecting, and each statement (with asyncpg's cancel of it), give up after the others.
# (`python -m chatd.proof.partitions`; tests/store/test_postgres_partition.py)
IDLE_IN_TRANSACTION = 2.0
CONNECT_TIMEOUT = 5.0
STATEMENT_TIMEOUT = 10.0
# A write transaction (a group commit) not done within this is given up: its connection is
# dropped at once, rather than after asyncpg's timeout and its cancel request, which cannot
# get through a partition either, and PostgreSQL ends the transaction (IDLE_IN_TRANSACTION).
# Its appends fail with StoreUnavailable.
WRITE_DEADLINE = 5.0
# What a write fails with when the database is out of reach.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)


def lock_key(purpose: str, schema_name: str) -> int:
    """A signed 64-bit advisory lock key, one per purpose and schema (so two logs in one
    database never wait for each other)."""
    digest = hashlib.blake2b(f"chatd:{purpose}:{schema_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _stored(rows: Iterable[Any]) -> list[Stored]:
    return [Stored(int(row[0]), decode_event(bytes(row[1]))) for row in rows]


class PostgresStore(PostgresWebhooks, PostgresTemplates, PostgresOperators, EventStore):
    """The log in PostgreSQL schema `schema` of the database at `dsn` (created if missing)."""

    def __init__(
        self,
        dsn: str,
        *,
        schema_name: str = "public",
        max_batch: int = 512,
        pool_size: int = 10,
        stats: StoreStats | None = None,
    ) -> None:
        if not _SCHEMA_NAME.match(schema_name):
            raise ValueError(f"not a plain schema name: {schema_name!r}")
        self._dsn = dsn
        self._schema = schema_name
        self._pool_size = pool_size
        self._pool: Pool | None = None
        self._commits = GroupCommit(
            self._write,
            constraint_errors=(asyncpg.IntegrityConstraintViolationError,),
            max_batch=max_batch,
            stats=stats or StoreStats(),
            name="postgres-writer",
        )
        self._log_id = ""
        self._closing = False
        self._log_lock = lock_key("log", schema_name)

    @property
    def log_id(self) -> str:
        return self._log_id

    # ---- life cycle --------------------------------------------------------------------------

    async def open(self) -> None:
        await self._migrate()
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=STATEMENT_TIMEOUT,
            server_settings={
                "search_path": self._schema,
                "application_name": "chatd",
                "idle_in_transaction_session_timeout": str(int(IDLE_IN_TRANSACTION * 1000)),
            },
        )
        await self._pool.execute(
            "INSERT INTO meta (key, value) VALUES ('log_id', $1) ON CONFLICT DO NOTHING",
            secrets.token_hex(8),
        )
        self._log_id = str(await self._pool.fetchval("SELECT value FROM meta WHERE key = 'log_id'"))
        self._commits.start()

    async def _migrate(self) -> None:
        """Creates the schema, or brings it to the newest version
        (chatd.store.postgres_migrations); nodes starting at once wait for each other."""
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(self._dsn)
        try:
            await migrate_schema(conn, self._schema, lock_key("migrate", self._schema))
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await self._commits.stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # ---- writes ------------------------------------------------------------------------------

    async def append(self, request: AppendRequest) -> Appended:
        return await self._commits.append(request)

    async def set_read_mark(self, chat: str, side: str, seq: int) -> int:
        return await self._commits.set_read_mark(chat, side, seq)

    async def _write(
        self, requests: Sequence[AppendRequest], marks: Sequence[MarkWrite]
    ) -> tuple[Outcomes, list[int]]:
        try:
            async with self._require().acquire() as conn:
                work = asyncio.ensure_future(self._write_in(conn, requests, marks))
                done, _ = await asyncio.wait((work,), timeout=WRITE_DEADLINE)
                if not done:
                    conn.terminate()  # `work` fails at once: the connection is gone
                return await work
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _write_in(
        self, conn: Connection, requests: Sequence[AppendRequest], marks: Sequence[MarkWrite]
    ) -> tuple[Outcomes, list[int]]:
        async with conn.transaction():
            outcomes = await self._write_appends(conn, requests) if requests else []
            values = await self._write_marks(conn, marks) if marks else []
        return outcomes, values

    async def _lock_log(self, conn: Connection) -> int:
        """Takes the log's write lock for the rest of the transaction; the last position.

        Positions are handed out only under this lock, and the lock is released only when
        the transaction that holds it has committed (or rolled back). So positions become
        visible in the order they were given: whoever reads position p also sees every
        position below p, and a reader that follows the feed by `after = last pos seen`
        cannot skip an event committed late, which is what a plain sequence would allow
        (transaction A takes 10, B takes 11 and commits first, the reader moves past 11, then
        A commits 10 behind it). It also makes the heads and nonce checks below exact. The cost
        is one writing transaction at a time per database across all nodes, which group
        commit amortizes: each node brings its whole queue to the lock.
        """
        await conn.execute("SELECT pg_advisory_xact_lock($1)", self._log_lock)
        last = await conn.fetchval("SELECT coalesce(max(pos), 0) FROM events")
        return int(last)

    async def _write_appends(self, conn: Connection, requests: Sequence[AppendRequest]) -> Outcomes:
        last_pos = await self._lock_log(conn)
        heads = await self._heads(conn, {r.stream for r in requests})
        seen = await self._nonces(conn, [r.nonce for r in requests if r.nonce])
        plan = plan_appends(requests, last_pos=last_pos, heads=heads, seen=seen, params=row_params)
        if plan.events:
            await conn.executemany(
                "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                plan.events,
            )
        if plan.feed:
            await conn.executemany(
                "INSERT INTO feed (key, pos) VALUES ($1, $2) ON CONFLICT DO NOTHING", plan.feed
            )
        if plan.nonces:
            await conn.executemany(
                "INSERT INTO nonces (usr, nonce, stream, seq, pos) VALUES ($1, $2, $3, $4, $5)",
                plan.nonces,
            )
        await self._write_rows(conn, plan.projection)
        return plan.outcomes

    @staticmethod
    async def _write_rows(conn: Connection, rows: dict[type[Row], list[tuple[Any, ...]]]) -> None:
        for row_type, sql in ROW_SQL.items():
            params = rows.get(row_type)
            if params:
                await conn.executemany(sql, params)

    @staticmethod
    async def _heads(conn: Connection, streams: set[str]) -> dict[str, int]:
        # One `max(seq)` per stream from the end of its index, not a read of every event of
        # every stream, as `stream = ANY(...) GROUP BY stream` is: that grows with the chats.
        rows = await conn.fetch(
            "SELECT s, (SELECT max(seq) FROM events WHERE stream = s) FROM unnest($1::text[]) AS s",
            list(streams),
        )
        return {str(stream): int(seq) for stream, seq in rows if seq is not None}

    @staticmethod
    async def _nonces(
        conn: Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int, int]]:
        if not keys:
            return {}
        rows = await conn.fetch(
            "SELECT n.usr, n.nonce, n.stream, n.seq, n.pos FROM nonces n"
            " JOIN unnest($1::text[], $2::text[]) AS k (usr, nonce)"
            " ON n.usr = k.usr AND n.nonce = k.nonce",
            [user for user, _ in keys],
            [nonce for _, nonce in keys],
        )
        return {(u, n): (s, int(q), int(p)) for u, n, s, q, p in rows}

    @staticmethod
    async def _write_marks(conn: Connection, marks: Sequence[MarkWrite]) -> list[int]:
        # One row per (chat, side), in one order for every node: two batches raising the
        # same marks never wait for each other's row locks in a cycle.
        wanted: dict[tuple[str, str], int] = {}
        for m in marks:
            wanted[(m.chat, m.side)] = max(m.seq, wanted.get((m.chat, m.side), 0))
        keys = sorted(wanted)
        rows = await conn.fetch(
            "INSERT INTO read_marks AS r (chat, side, seq)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::integer[])"
            " ON CONFLICT (chat, side) DO UPDATE SET seq = greatest(r.seq, excluded.seq)"
            " RETURNING chat, side, seq",
            [chat for chat, _ in keys],
            [side for _, side in keys],
            [wanted[key] for key in keys],
        )
        now = {(c, s): int(q) for c, s, q in rows}
        return [now[(m.chat, m.side)] for m in marks]

    # ---- reads -------------------------------------------------------------------------------

    def _require(self) -> Pool:
        if self._pool is None:
            raise StoreClosed("the store is not open")
        return self._pool

    async def _fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return await self._require().fetch(sql, *params)

    async def read_stream(
        self,
        stream: str,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int | None = None,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        # Bounds outside the column's range would overflow its type: they bound nothing.
        upper = min(before, _NO_SEQ) if before is not None else _NO_SEQ
        after = min(max(after, -1), _NO_SEQ)
        # `<> ALL` of an empty array is true: no kind is left out.
        hidden = sorted(hide_kinds)
        if limit is None:
            rows = await self._fetch(
                "SELECT pos, body FROM events WHERE stream = $1 AND seq > $2 AND seq < $3"
                " AND kind <> ALL($4::text[]) ORDER BY seq",
                stream,
                after,
                upper,
                hidden,
            )
            return _stored(rows)
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE stream = $1 AND seq > $2 AND seq < $3"
            " AND kind <> ALL($4::text[]) ORDER BY seq DESC LIMIT $5",
            stream,
            after,
            upper,
            hidden,
            limit,
        )
        return _stored(reversed(rows))

    async def last_position(self) -> int:
        return int(await self._require().fetchval("SELECT coalesce(max(pos), 0) FROM events"))

    async def read_feed(self, keys: list[str], after: int, limit: int) -> list[Stored]:
        rows = await self._fetch(
            "WITH p AS (SELECT DISTINCT pos FROM feed WHERE key = ANY($1::text[]) AND pos > $2"
            " ORDER BY pos LIMIT $3)"
            " SELECT e.pos, e.body FROM p JOIN events e ON e.pos = p.pos ORDER BY e.pos",
            keys,
            after,
            limit,
        )
        return _stored(rows)

    async def read_all(self, after: int, limit: int) -> list[Stored]:
        rows = await self._fetch(
            "SELECT pos, body FROM events WHERE pos > $1 ORDER BY pos LIMIT $2", after, limit
        )
        return _stored(rows)

    async def read_routed(self, after: int, limit: int) -> list[tuple[Stored, tuple[str, ...]]]:
        """Like `read_all`, each event with the routing keys that may see it: what a node
        catching up (chatd.hub.redis) delivers to its sockets."""
        rows = await self._fetch(
            "SELECT e.pos, e.body, ARRAY(SELECT f.key FROM feed f WHERE f.pos = e.pos)"
            " FROM events e WHERE e.pos > $1 ORDER BY e.pos LIMIT $2",
            after,
            limit,
        )
        return [
            (Stored(int(pos), decode_event(bytes(body))), tuple(keys)) for pos, body, keys in rows
        ]

    async def read_marks(self, chat: str) -> dict[str, int]:
        rows = await self._fetch("SELECT side, seq FROM read_marks WHERE chat = $1", chat)
        return {str(side): int(seq) for side, seq in rows}

    # ---- projections -------------------------------------------------------------------------

    _CHAT_COLUMNS = (
        "chat, buyer_id, buyer_name, seller_id, seller_name, last_pos, last_seq,"
        " waiting_since, managers_from"
    )

    @staticmethod
    def _chat_entry(row: asyncpg.Record) -> ChatListEntry:
        return ChatListEntry(
            chat=row[0],
            buyer_id=row[1],
            buyer_name=row[2],
            seller_id=row[3],
            seller_name=row[4],
            last_pos=int(row[5]),
            last_seq=int(row[6]),
            waiting_since=row[7],
            managers_from=None if row[8] is None else int(row[8]),
        )

    async def list_chats(self, key: str, before_pos: int | None, limit: int) -> list[ChatListEntry]:
        kind, ident = parse_key(key)
        below = min(before_pos, _NO_POS) if before_pos is not None else _NO_POS
        params: tuple[Any, ...]
        if kind == "b":
            where, params = "buyer_id = $2 AND last_pos < $3", (ident, below)
        elif kind == "s":
            where, params = "seller_id = $2 AND last_pos < $3", (ident, below)
        else:
            where, params = "managers_from IS NOT NULL AND last_pos < $2", (below,)
        rows = await self._fetch(
            f"SELECT {self._CHAT_COLUMNS} FROM chats WHERE {where} ORDER BY last_pos DESC LIMIT $1",
            limit,
            *params,
        )
        return [self._chat_entry(r) for r in rows]

    async def chat_entry(self, chat: str) -> ChatListEntry | None:
        rows = await self._fetch(f"SELECT {self._CHAT_COLUMNS} FROM chats WHERE chat = $1", chat)
        return self._chat_entry(rows[0]) if rows else None

    async def count_unread(
        self, chat: str, side: str, after_seq: int, hide_kinds: Collection[str] = ()
    ) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM events WHERE stream = $1 AND seq > $2 AND has_text"
            " AND side <> $3 AND kind <> ALL($4::text[])",
            chat,
            after_seq,
            side,
            sorted(hide_kinds),
        )
        return int(rows[0][0])

    async def claims_of_chat(self, chat: str) -> list[tuple[str, str, str]]:
        rows = await self._fetch(
            "SELECT claim, ord, state FROM claims WHERE chat = $1 ORDER BY claim", chat
        )
        return [(str(c), str(o), str(s)) for c, o, s in rows]

    async def chat_of_claim(self, claim: str) -> str | None:
        rows = await self._fetch("SELECT chat FROM claims WHERE claim = $1", claim)
        return str(rows[0][0]) if rows else None

    async def waiting_claims(self) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT claim, chat FROM claims"
            " WHERE state IN ('requested', 'awaiting_buyer') ORDER BY claim"
        )
        return [(str(claim), str(chat)) for claim, chat in rows]

    async def claims_seen_by(
        self, key: str, state: str | None = None, order: str | None = None
    ) -> list[tuple[str, str]]:
        kind, ident = parse_key(key)
        params: list[Any] = []
        if kind == "m":
            where = "h.managers_from IS NOT NULL"
        else:
            params.append(ident)
            where = ("h.buyer_id" if kind == "b" else "h.seller_id") + " = $1"
        if state is not None:
            params.append(state)
            where += f" AND c.state = ${len(params)}"
        if order is not None:
            params.append(order)
            where += f" AND c.ord = ${len(params)}"
        rows = await self._fetch(
            f"SELECT c.claim, c.chat FROM claims c JOIN chats h ON h.chat = c.chat"
            f" WHERE {where} ORDER BY c.claim",
            *params,
        )
        return [(str(claim), str(chat)) for claim, chat in rows]

    async def order_card(self, order: str) -> bytes | None:
        rows = await self._fetch("SELECT card FROM orders WHERE ord = $1", order)
        return bytes(rows[0][0]) if rows else None

    async def orders_between(self, buyer: str, seller: str) -> list[bytes]:
        rows = await self._fetch(
            "SELECT card FROM orders WHERE buyer_id = $1 AND seller_id = $2 ORDER BY pos DESC",
            buyer,
            seller,
        )
        return [bytes(r[0]) for r in rows]

    async def party_name(self, key: str) -> str | None:
        kind, ident = parse_key(key)
        column = {"b": "buyer", "s": "seller"}.get(kind)
        if column is None:
            return None
        rows = await self._fetch(
            f"SELECT {column}_name FROM orders WHERE {column}_id = $1 ORDER BY pos DESC LIMIT 1",
            ident,
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
        sql = (
            "SELECT e.pos, e.body FROM search s JOIN chats c ON c.chat = s.chat"
            " JOIN events e ON e.pos = s.pos WHERE s.words @@ $1::tsquery"
        )
        params: list[Any] = [search_query(words)]
        if kind == "b":
            params.append(ident)
            sql += f" AND c.buyer_id = ${len(params)}"
        elif kind == "s":
            params.append(ident)
            sql += f" AND c.seller_id = ${len(params)}"
        else:
            # Managers search a disputed chat in full (docs/protocol.md 2), not from the dispute on.
            sql += " AND c.managers_from IS NOT NULL"
        if chat is not None:
            params.append(chat)
            sql += f" AND s.chat = ${len(params)}"
        if hide_kinds:
            params.append(sorted(hide_kinds))
            sql += f" AND e.kind <> ALL(${len(params)}::text[])"
        params.append(limit)
        sql += f" ORDER BY s.pos DESC LIMIT ${len(params)}"
        return _stored(await self._fetch(sql, *params))

    async def files_of_chat(self, chat: str) -> list[FileEntryRow]:
        rows = await self._fetch(
            "SELECT pos, seq, file, name, mime, size, at FROM files WHERE chat = $1"
            " ORDER BY pos DESC, file",
            chat,
        )
        return [
            FileEntryRow(pos=int(p), seq=int(q), file=f, name=n, mime=m, size=int(z), at=a)
            for p, q, f, n, m, z, a in rows
        ]

    async def chats_with_file(self, file: str) -> list[str]:
        # The files projection also lists orders' photos, under the orders' streams.
        rows = await self._fetch(
            "SELECT DISTINCT chat FROM files WHERE file = $1 AND substr(chat, 1, $2) <> $3",
            file,
            len(ORDER_STREAM),
            ORDER_STREAM,
        )
        return [str(r[0]) for r in rows]

    async def orders_with_file(self, file: str) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT chat FROM files WHERE file = $1 AND substr(chat, 1, $2) = $3"
            " ORDER BY chat",
            file,
            len(ORDER_STREAM),
            ORDER_STREAM,
        )
        return [str(r[0])[len(ORDER_STREAM) :] for r in rows]

    async def balances(self, key: str) -> dict[str, int]:
        kind, ident = parse_key(key)
        if kind == "b":
            sql = "SELECT currency, sum(value) FROM ledger WHERE buyer_id = $1 GROUP BY currency"
        elif kind == "s":
            sql = "SELECT currency, -sum(value) FROM ledger WHERE seller_id = $1 GROUP BY currency"
        else:
            raise ValueError("managers have no balance")
        return {str(c): int(v) for c, v in await self._fetch(sql, ident)}

    async def sales_report(self, seller: str) -> list[LedgerEntry]:
        rows = await self._fetch(
            "SELECT at, ord, article, name, value, currency, reason FROM ledger"
            " WHERE seller_id = $1 ORDER BY at, claim",
            seller,
        )
        return [
            LedgerEntry(at=at, order=o, article=a, name=n, value=-int(v), currency=c, reason=r)
            for at, o, a, n, v, c, r in rows
        ]

    # ---- rebuild -----------------------------------------------------------------------------

    async def rebuild(self, project: Callable[[Stored], list[Row]]) -> None:
        # Under the log's lock: a node that is still running waits instead of writing rows
        # that the rebuild would then count twice.
        async with self._require().acquire() as conn, conn.transaction():
            await self._lock_log(conn)
            await conn.execute(f"TRUNCATE {', '.join(schema.PROJECTION_TABLES)}")
            after = 0
            while True:
                rows = await conn.fetch(
                    "SELECT pos, body FROM events WHERE pos > $1 ORDER BY pos LIMIT 2000", after
                )
                chunk = _stored(rows)
                if not chunk:
                    break
                # Rows of a chunk go by type, in the type order live commits use, which is
                # all the order they depend on.
                params: dict[type[Row], list[tuple[Any, ...]]] = {t: [] for t in ROW_SQL}
                for stored in chunk:
                    positions = {stored.event.seq: stored.pos}
                    for row in project(stored):
                        params[type(row)].append(row_params(row, positions))
                await self._write_rows(conn, params)
                after = chunk[-1].pos

    # ---- API keys ----------------------------------------------------------------------------

    _KEY_COLUMNS = "id, shop, name, scopes, digest, created_at"

    @staticmethod
    def _key(row: asyncpg.Record) -> ApiKeyRecord:
        return ApiKeyRecord(
            id=str(row[0]),
            shop=str(row[1]),
            name=str(row[2]),
            scopes=tuple(row[3]),
            digest=bytes(row[4]),
            created_at=row[5],
        )

    async def create_key(self, record: ApiKeyRecord) -> None:
        # One statement, committed on return; no need for the log's lock: a key is no event.
        await self._require().execute(
            "INSERT INTO api_keys (id, shop, name, scopes, digest, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record.id,
            record.shop,
            record.name,
            list(record.scopes),
            record.digest,
            record.created_at,
        )

    async def key_by_digest(self, digest: bytes) -> ApiKeyRecord | None:
        rows = await self._fetch(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE digest = $1 AND revoked_at IS NULL",
            digest,
        )
        return self._key(rows[0]) if rows else None

    async def keys_of_shop(self, shop: str) -> list[ApiKeyRecord]:
        rows = await self._fetch(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE shop = $1 AND revoked_at IS NULL"
            " ORDER BY created_at, id",
            shop,
        )
        return [self._key(r) for r in rows]

    async def revoke_key(self, shop: str, key: str, at: datetime) -> bool:
        revoked = await self._require().fetchval(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND shop = $3"
            " AND revoked_at IS NULL RETURNING id",
            at,
            key,
            shop,
        )
        return revoked is not None

    async def live_keys(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        rows = await self._fetch(
            "SELECT id FROM api_keys WHERE id = ANY($1::text[]) AND revoked_at IS NULL", list(keys)
        )
        return {str(r[0]) for r in rows}
