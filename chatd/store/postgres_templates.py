"""The shops' canned replies on PostgreSQL (chatd.store.base.TemplateStore), a part of
`PostgresStore`.

Plain statements on the pool: none takes the log's lock, since nothing here is an event.
Several nodes write one shop's templates; a write that checks before it writes (the shop's
count before an insert) first locks the shop's row in `template_shops`, so two nodes
creating at once are counted one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatd.store.base import ShortcutTaken, TemplateRecord, TemplateStore, TooManyTemplates

if TYPE_CHECKING:
    from chatd.store.postgres import Pool

_COLUMNS = "id, shop, shortcut, title, text, created_at, updated_at"
_INSERT = f"INSERT INTO templates ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
_MARK_SEEN = (
    "INSERT INTO template_shops (shop, seen_at) VALUES ($1, $2)"
    " ON CONFLICT (shop) DO NOTHING RETURNING shop"
)


def _record(row: asyncpg.Record) -> TemplateRecord:
    return TemplateRecord(
        id=str(row[0]),
        shop=str(row[1]),
        shortcut=str(row[2]),
        title=str(row[3]),
        text=str(row[4]),
        created_at=row[5],
        updated_at=row[6],
    )


def _values(record: TemplateRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.shop,
        record.shortcut,
        record.title,
        record.text,
        record.created_at,
        record.updated_at,
    )


class PostgresTemplates(TemplateStore):
    """The templates' part of `PostgresStore`, which provides the pool."""

    if TYPE_CHECKING:

        def _require(self) -> Pool: ...

        async def _fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]: ...

    async def templates_of_shop(self, shop: str) -> list[TemplateRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM templates WHERE shop = $1 ORDER BY shortcut", shop
        )
        return [_record(r) for r in rows]

    async def seed_templates(
        self, shop: str, at: datetime, records: Sequence[TemplateRecord]
    ) -> bool:
        pool = self._require()
        # The common case, answered without a transaction.
        if await pool.fetchval("SELECT 1 FROM template_shops WHERE shop = $1", shop):
            return False
        async with pool.acquire() as conn, conn.transaction():
            # Of two nodes seeding at once, the second waits on the first's row and then
            # inserts nothing: the defaults are written once.
            if await conn.fetchval(_MARK_SEEN, shop, at) is None:
                return False
            if records:
                await conn.executemany(_INSERT, [_values(record) for record in records])
        return True

    async def create_template(self, record: TemplateRecord, limit: int) -> None:
        async with self._require().acquire() as conn, conn.transaction():
            await conn.execute(_MARK_SEEN, record.shop, record.created_at)
            # Serialises the shop's creations: the count below is then the one the insert
            # adds to.
            await conn.execute(
                "SELECT 1 FROM template_shops WHERE shop = $1 FOR UPDATE", record.shop
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM templates WHERE shop = $1", record.shop
            )
            if int(count) >= limit:
                raise TooManyTemplates(f"the shop keeps {count} templates already")
            try:
                await conn.execute(_INSERT, *_values(record))
            except asyncpg.UniqueViolationError as exc:
                raise ShortcutTaken(record.shortcut) from exc

    async def update_template(self, record: TemplateRecord) -> TemplateRecord | None:
        try:
            row = await self._require().fetchrow(
                "UPDATE templates SET shortcut = $1, title = $2, text = $3, updated_at = $4"
                f" WHERE id = $5 AND shop = $6 RETURNING {_COLUMNS}",
                record.shortcut,
                record.title,
                record.text,
                record.updated_at,
                record.id,
                record.shop,
            )
        except asyncpg.UniqueViolationError as exc:
            raise ShortcutTaken(record.shortcut) from exc
        return _record(row) if row is not None else None

    async def delete_template(self, shop: str, template: str) -> bool:
        deleted = await self._require().fetchval(
            "DELETE FROM templates WHERE id = $1 AND shop = $2 RETURNING id", template, shop
        )
        return deleted is not None
