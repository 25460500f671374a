"""The PostgreSQL and Redis that the multi-node tests use for real (tests/system-deps starts
them).

Each test gets its own PostgreSQL schema or database, dropped afterwards, and its own Redis
channels (a hub's channel is named after its log, so a fresh schema gives fresh channels).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

PG_DSN = os.environ.get("CHATD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHATD_TEST_REDIS", "redis://127.0.0.1:6379/0")

_START_HINT = "tests/system-deps starts PostgreSQL and Redis (make test runs it)"


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def dsn_for(database: str) -> str:
    """PG_DSN with another database name."""
    base, _, _ = PG_DSN.rpartition("/")
    return f"{base}/{database}"


async def require_postgres() -> None:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_DSN} is not reachable ({exc}); {_START_HINT}")
    await conn.close()


async def require_redis() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); {_START_HINT}")
    finally:
        await client.aclose()


async def drop_schemas(*names: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty database for one test (its DSN), dropped afterwards."""
    await require_postgres()
    name = unique_name("chatd")
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield dsn_for(name)
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
