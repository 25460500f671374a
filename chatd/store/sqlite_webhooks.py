"""The webhook endpoints on SQLite (chatd.store.base.WebhookStore), a part of `SqliteStore`.

Reads go through the store's reader pool; every write is one call on the writer's thread
(`WriterThread.run`), between two group commits, as the API keys' writes are: the writer
is the one connection that writes, so nothing here waits for SQLite's write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatd.store.base import (
    DELIVERIES_KEPT,
    DeliveryRecord,
    WebhookProgress,
    WebhookRecord,
    WebhookStore,
)

if TYPE_CHECKING:
    from chatd.store.sqlite_writer import WriterThread

_COLUMNS = "id, shop, url, events, description, secret, created_at"
_DELIVERY_COLUMNS = "endpoint, message, pos, chat, seq, kind, attempt, at, outcome, status, error"


def _record(row: Sequence[Any]) -> WebhookRecord:
    return WebhookRecord(
        id=str(row[0]),
        shop=str(row[1]),
        url=str(row[2]),
        events=tuple(str(row[3]).split()),
        description=None if row[4] is None else str(row[4]),
        secret=str(row[5]),
        created_at=datetime.fromisoformat(row[6]),
    )


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        endpoint=str(row[0]),
        message=str(row[1]),
        pos=int(row[2]),
        chat=str(row[3]),
        seq=int(row[4]),
        kind=str(row[5]),
        attempt=int(row[6]),
        at=datetime.fromisoformat(row[7]),
        outcome=str(row[8]),
        status=None if row[9] is None else int(row[9]),
        error=None if row[10] is None else str(row[10]),
    )


class SqliteWebhooks(WebhookStore):
    """The webhook half of `SqliteStore`, which provides the writer and the readers."""

    if TYPE_CHECKING:
        _writer: WriterThread

        async def _fetch(
            self, sql: str, params: Iterable[Any] = (), *, long: bool = False
        ) -> list[sqlite3.Row]: ...

    async def create_webhook(self, record: WebhookRecord, cursor: int) -> None:
        await self._writer.run(_insert, record, cursor)

    async def webhooks_of_shop(self, shop: str) -> list[WebhookRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM webhooks WHERE shop = ? AND deleted_at IS NULL"
            " ORDER BY created_at, id",
            (shop,),
        )
        return [_record(r) for r in rows]

    async def live_webhooks(self) -> list[WebhookRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
        )
        return [_record(r) for r in rows]

    async def delete_webhook(self, shop: str, endpoint: str, at: datetime) -> bool:
        return await self._writer.run(_delete, shop, endpoint, at)

    async def lease_webhook(
        self, endpoint: str, owner: str, now: datetime, until: datetime
    ) -> WebhookProgress | None:
        return await self._writer.run(_lease, endpoint, owner, now, until)

    async def renew_webhook_leases(self, owner: str, until: datetime) -> set[str]:
        return await self._writer.run(_renew, owner, until)

    async def release_webhook(self, endpoint: str, owner: str) -> None:
        await self._writer.run(_release, endpoint, owner)

    async def advance_webhook(
        self,
        endpoint: str,
        owner: str,
        progress: WebhookProgress,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        return await self._writer.run(_advance, endpoint, owner, progress, delivery)

    async def webhook_deliveries(self, endpoint: str, limit: int) -> list[DeliveryRecord]:
        rows = await self._fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint = ?"
            " ORDER BY n DESC LIMIT ?",
            (endpoint, limit),
        )
        return [_delivery(r) for r in rows]


# ---- what runs on the writer's thread (autocommit: one statement commits on return) ----------


def _insert(db: sqlite3.Connection, record: WebhookRecord, cursor: int) -> None:
    db.execute(
        "INSERT INTO webhooks (id, shop, url, events, description, secret, created_at, cursor)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.shop,
            record.url,
            " ".join(record.events),
            record.description,
            record.secret,
            record.created_at.isoformat(),
            cursor,
        ),
    )


def _delete(db: sqlite3.Connection, shop: str, endpoint: str, at: datetime) -> bool:
    cursor = db.execute(
        "UPDATE webhooks SET deleted_at = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND shop = ? AND deleted_at IS NULL",
        (at.isoformat(), endpoint, shop),
    )
    return cursor.rowcount == 1


def _lease(
    db: sqlite3.Connection, endpoint: str, owner: str, now: datetime, until: datetime
) -> WebhookProgress | None:
    # fetchall, not fetchone: in autocommit the UPDATE commits only once its statement has
    # run to the end, which a RETURNING row left unread would put off.
    rows = db.execute(
        "UPDATE webhooks SET lease_owner = ?, lease_until = ?"
        " WHERE id = ? AND deleted_at IS NULL"
        " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
        " RETURNING cursor, attempts, retry_at",
        (owner, until.timestamp(), endpoint, owner, now.timestamp()),
    ).fetchall()
    if not rows:
        return None
    row = rows[0]
    retry_at = None if row[2] is None else datetime.fromisoformat(row[2])
    return WebhookProgress(cursor=int(row[0]), attempts=int(row[1]), retry_at=retry_at)


def _renew(db: sqlite3.Connection, owner: str, until: datetime) -> set[str]:
    rows = db.execute(
        "UPDATE webhooks SET lease_until = ? WHERE lease_owner = ? AND deleted_at IS NULL"
        " RETURNING id",
        (until.timestamp(), owner),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _release(db: sqlite3.Connection, endpoint: str, owner: str) -> None:
    db.execute(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ?",
        (endpoint, owner),
    )


def _advance(
    db: sqlite3.Connection,
    endpoint: str,
    owner: str,
    progress: WebhookProgress,
    delivery: DeliveryRecord | None,
) -> bool:
    # The progress and its attempt in one transaction: a kill -9 between them would
    # otherwise leave an attempt counted that the log does not show, or the other way round.
    db.execute("BEGIN IMMEDIATE")
    try:
        moved = db.execute(
            "UPDATE webhooks SET cursor = ?, attempts = ?, retry_at = ?"
            " WHERE id = ? AND lease_owner = ? AND deleted_at IS NULL AND cursor <= ?",
            (
                progress.cursor,
                progress.attempts,
                None if progress.retry_at is None else progress.retry_at.isoformat(),
                endpoint,
                owner,
                progress.cursor,
            ),
        ).rowcount
        if moved == 1 and delivery is not None:
            _log_delivery(db, delivery)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return moved == 1


def _log_delivery(db: sqlite3.Connection, delivery: DeliveryRecord) -> None:
    last = db.execute(
        "SELECT coalesce(max(n), 0) FROM webhook_deliveries WHERE endpoint = ?",
        (delivery.endpoint,),
    ).fetchone()
    n = int(last[0]) + 1
    db.execute(
        f"INSERT INTO webhook_deliveries (n, {_DELIVERY_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            n,
            delivery.endpoint,
            delivery.message,
            delivery.pos,
            delivery.chat,
            delivery.seq,
            delivery.kind,
            delivery.attempt,
            delivery.at.isoformat(),
            delivery.outcome,
            delivery.status,
            delivery.error,
        ),
    )
    db.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint = ? AND n <= ?",
        (delivery.endpoint, n - DELIVERIES_KEPT),
    )
