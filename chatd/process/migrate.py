"""`chatd migrate`: brings a database's schema to this chatd's version, and says from which
to which; and the check `chatd serve` makes before it starts.

`chatd serve` (and every command that opens the store) migrates by itself when it opens the
database; this command does it ahead of a deployment, or shows what is pending (`--check`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from chatd.store import sqlite_migrations
from chatd.store.schema_version import SchemaReport, SchemaTooNew

# How long the check before `chatd serve` waits for PostgreSQL: past it, the server's own
# start-up reports what is wrong with the database.
PRECHECK_TIMEOUT = 5.0


def _is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


async def migrate_postgres(dsn: str, schema_name: str = "public") -> SchemaReport:
    import asyncpg

    from chatd.store.postgres import lock_key
    from chatd.store.postgres_migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema_name, lock_key("migrate", schema_name))
    finally:
        await conn.close()


async def postgres_version(
    dsn: str, schema_name: str = "public", connect_timeout: float = 60.0
) -> int | None:
    import asyncpg

    from chatd.store.postgres_migrations import stored_version

    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        return await stored_version(conn, schema_name)
    finally:
        await conn.close()


def refuse_newer_schema(store_url: str | None, db: Path) -> str | None:
    """Why `chatd serve` must not start on this database (it is newer than this code), or
    None. Nothing is written."""
    try:
        if _is_postgres(store_url):
            assert store_url is not None
            _check_postgres_not_newer(store_url)
        elif not store_url:
            sqlite_migrations.check_not_newer(db)
    except SchemaTooNew as exc:
        return str(exc)
    return None


def _check_postgres_not_newer(dsn: str) -> None:
    from chatd.extras import missing_extra

    if missing_extra("postgres") is not None:
        return  # no driver (chatd[postgres]): assembling the store says what to install
    import asyncpg

    from chatd.store import postgres_migrations

    try:
        found = asyncio.run(postgres_version(dsn, connect_timeout=PRECHECK_TIMEOUT))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return  # not answering, or refusing us: the server's own start-up says so
    known = postgres_migrations.latest()
    if found is not None and found > known:
        raise SchemaTooNew("PostgreSQL schema public", found, known)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="bring the database's schema to this version",
        description="Apply the pending schema migrations to the database and print the "
        "version it was at and the one it is at now. chatd serve does the same when it "
        "starts; a database newer than this chatd is refused by both.",
    )
    parser.add_argument("--db", default="chatd.db", help="SQLite database (default: %(default)s)")
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="a shared log, postgresql://USER@HOST:PORT/DATABASE, instead of --db "
        "(env CHATD_STORE)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only say which version the database is at; exit 1 if migrations are pending",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        if _is_postgres(args.store):
            return _run_postgres(args.store, args.check)
        if args.store:
            print(f"chatd migrate: unknown store {args.store!r}", file=sys.stderr)
            return 2
        return _run_sqlite(Path(args.db), args.check)
    except SchemaTooNew as exc:
        print(f"chatd migrate: {exc}", file=sys.stderr)
        return 2


def _run_sqlite(db: Path, check: bool) -> int:
    known = sqlite_migrations.latest()
    try:
        if check:
            found = sqlite_migrations.stored_version(db)
            if found is None:
                raise FileNotFoundError(f"no database at {db}")
            return _report_check(str(db), found, known)
        report = sqlite_migrations.migrate_file(db)
    except FileNotFoundError:
        print(f"chatd migrate: no database at {db}", file=sys.stderr)
        return 2
    print(report.describe())
    return 0


def _run_postgres(dsn: str, check: bool) -> int:
    from chatd.extras import missing_extra

    missing = missing_extra("postgres")
    if missing is not None:
        print(f"chatd migrate: --store postgresql://...: {missing}", file=sys.stderr)
        return 2
    import asyncpg

    from chatd.store import postgres_migrations

    try:
        if check:
            found = asyncio.run(postgres_version(dsn))
            known = postgres_migrations.latest()
            return _report_check("PostgreSQL schema public", found or 0, known)
        report = asyncio.run(migrate_postgres(dsn))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The error's own words, never the URL: it may hold a password.
        print(f"chatd migrate: PostgreSQL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(report.describe())
    return 0


def _report_check(where: str, found: int, known: int) -> int:
    if found > known:
        raise SchemaTooNew(where, found, known)
    if found == known:
        print(f"{where}: schema version {found}, up to date")
        return 0
    print(f"{where}: schema version {found}, {known - found} migration(s) pending to {known}")
    return 1
