"""`chatd export`: the event log of a database as JSON Lines (`chatd.loadtest.logfile`).

It reads the store directly (SQLite in WAL mode lets it run beside a serving chatd), page by
page in position order, so a log of any size streams through in bounded memory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from chatd.loadtest.logfile import LogWriter, record_of
from chatd.store.base import EventStore
from chatd.store.sqlite import SqliteStore

PAGE = 5000


async def export_store(store: EventStore, out: str | Path, page: int = PAGE) -> int:
    """Writes every event of `store` to `out` (`-`: standard output); the count."""
    after = 0
    with LogWriter(out) as writer:
        while True:
            batch = await store.read_all(after, page)
            for stored in batch:
                writer.write(record_of(stored.pos, stored.event))
            if len(batch) < page:
                return writer.count
            after = batch[-1].pos


async def export_db(db: str | Path, out: str | Path) -> int:
    store = SqliteStore(Path(db))
    await store.open()
    try:
        return await export_store(store, out)
    finally:
        await store.close()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the event log as JSON Lines",
        description="Write every event of the log, in position order, one JSON object a "
        "line: the format `chatd replay` reads. Safe beside a running server.",
    )
    parser.add_argument("--db", default="chatd.db", help="SQLite database (default: %(default)s)")
    parser.add_argument(
        "--out", "-o", default="-", help="output file, - for standard output (default: -)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.db).exists():
        print(f"chatd export: no database at {args.db}", file=sys.stderr)
        return 2
    count = asyncio.run(export_db(args.db, args.out))
    if args.out != "-":
        print(f"{count} events written to {args.out}", file=sys.stderr)
    return 0
