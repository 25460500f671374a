"""The operators each shop is known to have, on PostgreSQL (chatd.store.base.OperatorStore),
a part of `PostgresStore`.

Plain statements on the pool: none takes the log's lock, since nothing here is an event.
Nodes that see one operator at once both upsert the same row; the later name wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from chatd.store.base import OperatorRecord, OperatorStore

if TYPE_CHECKING:
    from chatd.store.postgres import Pool

_COLUMNS = "shop, id, name, seen_at"


def _record(row: asyncpg.Record) -> OperatorRecord:
    return OperatorRecord(shop=str(row[0]), id=str(row[1]), name=str(row[2]), seen_at=row[3])


class PostgresOperators(OperatorStore):
    """The operators' part of `PostgresStore`, which provides the pool."""

    if TYPE_CHECKING:

        def _require(self) -> Pool: ...

        async def _fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]: ...

    async def remember_operator(self, record: OperatorRecord) -> None:
        await self._require().execute(
            "INSERT INTO operators (shop, id, name, seen_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (shop, id) DO UPDATE SET name = excluded.name,"
            " seen_at = excluded.seen_at",
            record.shop,
            record.id,
            record.name,
            record.seen_at,
        )

    async def operator_of(self, shop: str, operator: str) -> OperatorRecord | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM operators WHERE shop = $1 AND id = $2", shop, operator
        )
        return _record(rows[0]) if rows else None

    async def operators_of(self, shop: str) -> list[OperatorRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM operators WHERE shop = $1 ORDER BY name, id", shop
        )
        return [_record(r) for r in rows]
