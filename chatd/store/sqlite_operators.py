"""The operators each shop is known to have, on SQLite (chatd.store.base.OperatorStore), a
part of `SqliteStore`.

Reads go through the store's reader pool; a write is one statement on the writer's thread
(`WriterThread.run`), between two group commits, as the keys' writes are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatd.store.base import OperatorRecord, OperatorStore

if TYPE_CHECKING:
    from chatd.store.sqlite_writer import WriterThread

_COLUMNS = "shop, id, name, seen_at"


def _record(row: Sequence[Any]) -> OperatorRecord:
    return OperatorRecord(
        shop=str(row[0]),
        id=str(row[1]),
        name=str(row[2]),
        seen_at=datetime.fromisoformat(row[3]),
    )


class SqliteOperators(OperatorStore):
    """The operators' part of `SqliteStore`, which provides the writer and the readers."""

    if TYPE_CHECKING:
        _writer: WriterThread

        async def _fetch(
            self, sql: str, params: Iterable[Any] = (), *, long: bool = False
        ) -> list[sqlite3.Row]: ...

    async def remember_operator(self, record: OperatorRecord) -> None:
        await self._writer.run(_remember, record)

    async def operator_of(self, shop: str, operator: str) -> OperatorRecord | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM operators WHERE shop = ? AND id = ?", (shop, operator)
        )
        return _record(rows[0]) if rows else None

    async def operators_of(self, shop: str) -> list[OperatorRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM operators WHERE shop = ? ORDER BY name, id", (shop,)
        )
        return [_record(r) for r in rows]


# ---- what runs on the writer's thread ----------------------------------------------------------


def _remember(db: sqlite3.Connection, record: OperatorRecord) -> None:
    # One statement in autocommit: committed on return.
    db.execute(
        "INSERT INTO operators (shop, id, name, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (shop, id) DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at",
        (record.shop, record.id, record.name, record.seen_at.isoformat()),
    )
