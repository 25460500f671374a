"""The webhook endpoints on PostgreSQL (chatd.store.base.WebhookStore), a part of
`PostgresStore`.

Plain statements on the pool: none takes the log's lock, since nothing here is an event.
Several nodes reach the same rows; the lease columns decide which one delivers to an
endpoint, and every write that moves its progress checks the lease in its own WHERE clause.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatd.store.base import (
    DELIVERIES_KEPT,
    DeliveryRecord,
    WebhookProgress,
    WebhookRecord,
    WebhookStore,
)

if TYPE_CHECKING:
    from chatd.store.postgres import Pool

_COLUMNS = "id, shop, url, events, description, secret, created_at"
_DELIVERY_COLUMNS = "endpoint, message, pos, chat, seq, kind, attempt, at, outcome, status, error"


def _record(row: asyncpg.Record) -> WebhookRecord:
    return WebhookRecord(
        id=str(row[0]),
        shop=str(row[1]),
        url=str(row[2]),
        events=tuple(row[3]),
        description=row[4],
        secret=str(row[5]),
        created_at=row[6],
    )


def _delivery(row: asyncpg.Record) -> DeliveryRecord:
    return DeliveryRecord(
        endpoint=str(row[0]),
        message=str(row[1]),
        pos=int(row[2]),
        chat=str(row[3]),
        seq=int(row[4]),
        kind=str(row[5]),
        attempt=int(row[6]),
        at=row[7],
        outcome=str(row[8]),
        status=row[9],
        error=row[10],
    )


class PostgresWebhooks(WebhookStore):
    """The webhook half of `PostgresStore`, which provides the pool."""

    if TYPE_CHECKING:

        def _require(self) -> Pool: ...

        async def _fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]: ...

    async def create_webhook(self, record: WebhookRecord, cursor: int) -> None:
        await self._require().execute(
            "INSERT INTO webhooks (id, shop, url, events, description, secret, created_at,"
            " cursor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            record.id,
            record.shop,
            record.url,
            list(record.events),
            record.description,
            record.secret,
            record.created_at,
            cursor,
        )

    async def webhooks_of_shop(self, shop: str) -> list[WebhookRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM webhooks WHERE shop = $1 AND deleted_at IS NULL"
            " ORDER BY created_at, id",
            shop,
        )
        return [_record(r) for r in rows]

    async def live_webhooks(self) -> list[WebhookRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
        )
        return [_record(r) for r in rows]

    async def delete_webhook(self, shop: str, endpoint: str, at: datetime) -> bool:
        deleted = await self._require().fetchval(
            "UPDATE webhooks SET deleted_at = $1, lease_owner = NULL, lease_until = NULL"
            " WHERE id = $2 AND shop = $3 AND deleted_at IS NULL RETURNING id",
            at,
            endpoint,
            shop,
        )
        return deleted is not None

    async def lease_webhook(
        self, endpoint: str, owner: str, now: datetime, until: datetime
    ) -> WebhookProgress | None:
        # One statement: PostgreSQL locks the row it updates, so of two nodes racing for a
        # free lease the second re-reads the row after the first commits, and finds it taken.
        row = await self._require().fetchrow(
            "UPDATE webhooks SET lease_owner = $1, lease_until = $2"
            " WHERE id = $3 AND deleted_at IS NULL"
            " AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)"
            " RETURNING cursor, attempts, retry_at",
            owner,
            until,
            endpoint,
            now,
        )
        if row is None:
            return None
        return WebhookProgress(cursor=int(row[0]), attempts=int(row[1]), retry_at=row[2])

    async def renew_webhook_leases(self, owner: str, until: datetime) -> set[str]:
        rows = await self._fetch(
            "UPDATE webhooks SET lease_until = $1 WHERE lease_owner = $2 AND deleted_at IS NULL"
            " RETURNING id",
            until,
            owner,
        )
        return {str(r[0]) for r in rows}

    async def release_webhook(self, endpoint: str, owner: str) -> None:
        await self._require().execute(
            "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL"
            " WHERE id = $1 AND lease_owner = $2",
            endpoint,
            owner,
        )

    async def advance_webhook(
        self,
        endpoint: str,
        owner: str,
        progress: WebhookProgress,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        async with self._require().acquire() as conn, conn.transaction():
            moved = await conn.fetchval(
                "UPDATE webhooks SET cursor = $1, attempts = $2, retry_at = $3"
                " WHERE id = $4 AND lease_owner = $5 AND deleted_at IS NULL AND cursor <= $1"
                " RETURNING id",
                progress.cursor,
                progress.attempts,
                progress.retry_at,
                endpoint,
                owner,
            )
            if moved is None:
                return False
            if delivery is not None:
                # The endpoint's row is locked by the UPDATE above until the commit, so two
                # writers never number two attempts alike.
                n = await conn.fetchval(
                    "SELECT coalesce(max(n), 0) + 1 FROM webhook_deliveries WHERE endpoint = $1",
                    endpoint,
                )
                await conn.execute(
                    f"INSERT INTO webhook_deliveries (n, {_DELIVERY_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    n,
                    delivery.endpoint,
                    delivery.message,
                    delivery.pos,
                    delivery.chat,
                    delivery.seq,
                    delivery.kind,
                    delivery.attempt,
                    delivery.at,
                    delivery.outcome,
                    delivery.status,
                    delivery.error,
                )
                await conn.execute(
                    "DELETE FROM webhook_deliveries WHERE endpoint = $1 AND n <= $2",
                    endpoint,
                    int(n) - DELIVERIES_KEPT,
                )
        return True

    async def webhook_deliveries(self, endpoint: str, limit: int) -> list[DeliveryRecord]:
        rows = await self._fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint = $1"
            " ORDER BY n DESC LIMIT $2",
            endpoint,
            limit,
        )
        return [_delivery(r) for r in rows]
