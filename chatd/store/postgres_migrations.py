"""Bringing a PostgreSQL schema to this code's version (`postgres_schema.MIGRATIONS`).

The version is `meta.schema_version` (no row: a schema nobody made yet, version 0). All
pending steps and the new version run in one transaction under an advisory lock: DDL is
transactional in PostgreSQL, so a failed step leaves the schema as it was, and nodes
starting at once wait for each other instead of racing (the lock exists before the schema
does). Reported like SQLite's (chatd.store.schema_version).
"""

from __future__ import annotations

import logging
from typing import TypeAlias

import asyncpg

from chatd.store import postgres_schema as schema
from chatd.store.schema_version import SchemaReport, SchemaTooNew

log = logging.getLogger(__name__)

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


def latest() -> int:
    """The version this code makes and knows (read when asked: tests add steps)."""
    return len(schema.MIGRATIONS)


def step_name(number: int) -> str:
    """Step `number` (the one that makes that version) as "N: what it does"."""
    names = schema.MIGRATION_NAMES
    return f"{number}: {names[number - 1]}" if number <= len(names) else str(number)


async def migrate(conn: Connection, schema_name: str, lock: int) -> SchemaReport:
    """Creates the schema `schema_name`, or applies its pending steps; SchemaTooNew, and
    nothing written, if it is newer than this code. `lock` is the advisory lock key that
    every node migrating this schema takes."""
    where = f"PostgreSQL schema {schema_name}"
    newest = latest()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema_name}"')
        await conn.execute(schema.META)
        found = await _version(conn)
        if found > newest:
            raise SchemaTooNew(where, found, newest)
        steps: list[str] = []
        for number in range(found + 1, newest + 1):
            log.info("%s: schema version %d → %d", where, number - 1, number)
            await conn.execute(schema.MIGRATIONS[number - 1])
            steps.append(step_name(number))
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            str(newest),
        )
    report = SchemaReport(where, found, newest, tuple(steps), created=found == 0)
    log.log(logging.INFO if steps else logging.DEBUG, "%s", report.describe())
    return report


async def stored_version(conn: Connection, schema_name: str) -> int | None:
    """The version of schema `schema_name`, None if it has no chatd tables; writes nothing."""
    exists = await conn.fetchval(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'meta'",
        schema_name,
    )
    if exists is None:
        return None
    found = await conn.fetchval(
        f"SELECT value FROM \"{schema_name}\".meta WHERE key = 'schema_version'"
    )
    return int(found) if found is not None else 0


async def _version(conn: Connection) -> int:
    found = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(found) if found is not None else 0
