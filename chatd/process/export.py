"""`chatd export`: the event log of a database as JSON Lines (`protocol.logfile`).

It reads the store directly (SQLite in WAL mode lets it run beside a serving chatd; or the
PostgreSQL log of several nodes with `--store`), page by page in position order, so a log of
any size streams through in bounded memory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chatd.arg_types import database_arg
from chatd.progress import Progress
from protocol.logfile import LogWriter, record_of

if TYPE_CHECKING:
    from chatd.store.base import EventStore

PAGE = 5000


async def export_store(
    store: EventStore, out: str | Path, page: int = PAGE, progress: Progress | None = None
) -> int:
    """Writes every event of `store` to `out` (`-`: standard output); the count."""
    after = 0
    with LogWriter(out) as writer:
        while True:
            batch = await store.read_all(after, page)
            for stored in batch:
                writer.write(record_of(stored.pos, stored.event))
            if progress is not None:
                progress.advance(len(batch))
            if len(batch) < page:
                return writer.count
            after = batch[-1].pos


async def export_db(db: str | Path, out: str | Path, store_url: str | None = None) -> int:
    """The log of SQLite at `db`, or of the store at `store_url` (postgresql://...)."""
    # Imported here: `chatd --help` and the other commands need none of the server.
    from chatd.process.assemble import make_store
    from chatd.store.stats import StoreStats

    store = make_store(store_url, db=Path(db), synchronous="full", stats=StoreStats())
    await store.open()
    try:
        # Positions are dense from 1: the last one is the number of events to write.
        with Progress("export", await store.last_position()) as progress:
            return await export_store(store, out, progress=progress)
    finally:
        await store.close()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the event log as JSON Lines",
        description="Write every event of the log, in position order, one JSON object a "
        "line: the format `chatd replay` reads. Safe beside a running server.",
    )
    parser.add_argument(
        "--db", type=database_arg, default="chatd.db", help="SQLite database (default: %(default)s)"
    )
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="a shared log, postgresql://USER@HOST:PORT/DATABASE, instead of --db "
        "(env CHATD_STORE)",
    )
    parser.add_argument(
        "--out", "-o", default="-", help="output file, - for standard output (default: -)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chatd.process.assemble import SettingsError
    from chatd.store.schema_version import SchemaTooNew

    store_url: str | None = getattr(args, "store", None)
    if not store_url and not Path(args.db).exists():
        print(f"chatd export: no database at {args.db}", file=sys.stderr)
        return 2
    try:
        count = asyncio.run(export_db(args.db, args.out, store_url))
    except (SettingsError, SchemaTooNew) as exc:
        print(f"chatd export: {exc}", file=sys.stderr)
        return 2
    if args.out != "-":
        print(f"{count} events written to {args.out}", file=sys.stderr)
    return 0
