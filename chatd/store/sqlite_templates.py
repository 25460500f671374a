"""The shops' canned replies on SQLite (chatd.store.base.TemplateStore), a part of
`SqliteStore`.

Reads go through the store's reader pool; every write is one call on the writer's thread
(`WriterThread.run`), between two group commits, as the keys' and the webhooks' are: the
writer is the one connection that writes, so a check and the write it guards (the shop's
count before an insert, "never seen" before the defaults) run with nothing in between.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatd.store.base import ShortcutTaken, TemplateRecord, TemplateStore, TooManyTemplates

if TYPE_CHECKING:
    from chatd.store.sqlite_writer import WriterThread

_COLUMNS = "id, shop, shortcut, title, text, created_at, updated_at"


def _record(row: Sequence[Any]) -> TemplateRecord:
    return TemplateRecord(
        id=str(row[0]),
        shop=str(row[1]),
        shortcut=str(row[2]),
        title=str(row[3]),
        text=str(row[4]),
        created_at=datetime.fromisoformat(row[5]),
        updated_at=datetime.fromisoformat(row[6]),
    )


class SqliteTemplates(TemplateStore):
    """The templates' part of `SqliteStore`, which provides the writer and the readers."""

    if TYPE_CHECKING:
        _writer: WriterThread

        async def _fetch(
            self, sql: str, params: Iterable[Any] = (), *, long: bool = False
        ) -> list[sqlite3.Row]: ...

    async def templates_of_shop(self, shop: str) -> list[TemplateRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM templates WHERE shop = ? ORDER BY shortcut", (shop,)
        )
        return [_record(r) for r in rows]

    async def seed_templates(
        self, shop: str, at: datetime, records: Sequence[TemplateRecord]
    ) -> bool:
        return await self._writer.run(_seed, shop, at, records)

    async def create_template(self, record: TemplateRecord, limit: int) -> None:
        await self._writer.run(_create, record, limit)

    async def update_template(self, record: TemplateRecord) -> TemplateRecord | None:
        return await self._writer.run(_update, record)

    async def delete_template(self, shop: str, template: str) -> bool:
        return await self._writer.run(_delete, shop, template)


# ---- what runs on the writer's thread ----------------------------------------------------------


def _transaction(db: sqlite3.Connection) -> None:
    # The writer's connection is in autocommit mode: a check and its write need their own.
    db.execute("BEGIN IMMEDIATE")


def _mark_seen(db: sqlite3.Connection, shop: str, at: datetime) -> bool:
    """Marks the shop seen; whether it was not before."""
    cursor = db.execute(
        "INSERT INTO template_shops (shop, seen_at) VALUES (?, ?) ON CONFLICT (shop) DO NOTHING",
        (shop, at.isoformat()),
    )
    return cursor.rowcount == 1


def _insert(db: sqlite3.Connection, record: TemplateRecord) -> None:
    db.execute(
        f"INSERT INTO templates ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.shop,
            record.shortcut,
            record.title,
            record.text,
            record.created_at.isoformat(),
            record.updated_at.isoformat(),
        ),
    )


def _seed(
    db: sqlite3.Connection, shop: str, at: datetime, records: Sequence[TemplateRecord]
) -> bool:
    if db.execute("SELECT 1 FROM template_shops WHERE shop = ?", (shop,)).fetchone():
        return False  # the common case, read without taking the write lock
    _transaction(db)
    try:
        first = _mark_seen(db, shop, at)
        if first:
            for record in records:
                _insert(db, record)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return first


def _create(db: sqlite3.Connection, record: TemplateRecord, limit: int) -> None:
    _transaction(db)
    try:
        _mark_seen(db, record.shop, record.created_at)
        count = db.execute(
            "SELECT count(*) FROM templates WHERE shop = ?", (record.shop,)
        ).fetchone()[0]
        if int(count) >= limit:
            raise TooManyTemplates(f"the shop keeps {count} templates already")
        try:
            _insert(db, record)
        except sqlite3.IntegrityError as exc:
            raise ShortcutTaken(record.shortcut) from exc
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _update(db: sqlite3.Connection, record: TemplateRecord) -> TemplateRecord | None:
    try:
        # fetchall: in autocommit the UPDATE commits only once its statement has run to the
        # end, which a RETURNING row left unread would put off.
        rows = db.execute(
            "UPDATE templates SET shortcut = ?, title = ?, text = ?, updated_at = ?"
            f" WHERE id = ? AND shop = ? RETURNING {_COLUMNS}",
            (
                record.shortcut,
                record.title,
                record.text,
                record.updated_at.isoformat(),
                record.id,
                record.shop,
            ),
        ).fetchall()
    except sqlite3.IntegrityError as exc:
        raise ShortcutTaken(record.shortcut) from exc
    return _record(rows[0]) if rows else None


def _delete(db: sqlite3.Connection, shop: str, template: str) -> bool:
    cursor = db.execute("DELETE FROM templates WHERE id = ? AND shop = ?", (template, shop))
    return cursor.rowcount == 1
