"""PostgreSQL's schema versions, reported as SQLite's are: what `chatd migrate --store` and a
server's start-up say, from a schema of an earlier version."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from chatd.process.migrate import migrate_postgres, postgres_version
from chatd.store import postgres_migrations, postgres_schema
from chatd.store.postgres import PostgresStore
from chatd.store.schema_version import SchemaTooNew
from tests.backends import PG_DSN, drop_schemas, require_postgres, unique_name
from tests.store.contract import plain_request


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    await require_postgres()
    name = unique_name()
    yield name
    await drop_schemas(name)


def test_every_step_has_a_name() -> None:
    assert len(postgres_schema.MIGRATION_NAMES) == len(postgres_schema.MIGRATIONS)


async def test_a_new_schema_is_created_and_reported_like_sqlites(schema: str) -> None:
    before = await postgres_version(PG_DSN, schema)
    created = await migrate_postgres(PG_DSN, schema)
    again = await migrate_postgres(PG_DSN, schema)

    assert before is None
    latest = postgres_migrations.latest()
    assert created.describe() == f"PostgreSQL schema {schema}: created at schema version {latest}"
    assert (created.before, created.after, len(created.steps)) == (0, latest, latest)
    assert again.describe() == f"PostgreSQL schema {schema}: schema version {latest}, up to date"
    assert await postgres_version(PG_DSN, schema) == latest


async def test_a_schema_of_an_earlier_version_gets_the_later_steps_and_keeps_its_log(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A schema as chatd made it when it knew two steps (no API keys, no webhooks).
    with monkeypatch.context() as earlier:
        earlier.setattr(postgres_schema, "MIGRATIONS", postgres_schema.MIGRATIONS[:2])
        store = PostgresStore(PG_DSN, schema_name=schema, pool_size=2)
        await store.open()
        await store.append(plain_request("c1", 0, count=3))
        await store.close()
    assert await postgres_version(PG_DSN, schema) == 2

    report = await migrate_postgres(PG_DSN, schema)

    latest = postgres_migrations.latest()
    assert (report.before, report.after) == (2, latest)
    assert report.steps[:2] == ("3: API keys", "4: webhooks")
    assert len(report.steps) == latest - 2
    assert report.describe().startswith(
        f"PostgreSQL schema {schema}: schema version 2 → {latest} (3: API keys; 4: webhooks"
    )
    store = PostgresStore(PG_DSN, schema_name=schema, pool_size=2)
    await store.open()
    try:
        assert [s.pos for s in await store.read_all(0, 10)] == [1, 2, 3]
        assert await store.keys_of_shop("s1") == []
    finally:
        await store.close()


async def test_a_newer_schema_is_refused_with_the_versions_named(schema: str) -> None:
    await migrate_postgres(PG_DSN, schema)
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(
            f"UPDATE \"{schema}\".meta SET value = '99' WHERE key = 'schema_version'"
        )
    finally:
        await conn.close()

    with pytest.raises(SchemaTooNew) as refused:
        await migrate_postgres(PG_DSN, schema)

    assert (refused.value.found, refused.value.known) == (99, postgres_migrations.latest())
    assert f"PostgreSQL schema {schema} is at schema version 99" in str(refused.value)
    assert await postgres_version(PG_DSN, schema) == 99
