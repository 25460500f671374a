"""`chatd backup`: a consistent copy of a SQLite database, taken while the server runs.

SQLite's online backup API copies the database page by page through a connection of its
own. That connection holds one read transaction from the first page to the last, so the
copy is one snapshot of the log: every commit up to a moment, nothing after it, whatever the
server commits meanwhile. (Without it, each step would open a read transaction of its own,
and a commit between two steps would start the copy over, for ever under steady load.) In WAL
mode a reader never blocks the writer, so the server goes on committing throughout; what the
snapshot holds back is the checkpoint, and the WAL grows by what is committed during the copy
until it ends. The copy goes in steps of `PAGES_PER_STEP` pages only to show its progress.

The copy is written to a temporary file beside `--out`, synced, and renamed into place, so a
file at `--out` is always a whole backup; an existing one is replaced only with `--force`.
PostgreSQL has its own tools for this (README.md, "Backups and migrations").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chatd.progress import Progress

# 4 MiB of 4 KiB pages a step: a few milliseconds each.
PAGES_PER_STEP = 1024

POSTGRES_ADVICE = (
    "the log is in PostgreSQL, which has its own tools for this: pg_dump --format=custom for "
    "a copy (restored with pg_restore), or continuous archiving of base backups and WAL for "
    'point-in-time recovery; see README.md, "Backups and migrations"'
)


class BackupError(Exception):
    """A backup that cannot be taken as asked; nothing was written at `--out`."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    out: Path
    last_pos: int  # the last log position the backup holds
    schema_version: int
    size: int  # bytes
    seconds: float
    checked: bool  # whether `PRAGMA integrity_check` passed on the copy

    def describe(self, source: Path) -> str:
        mib = self.size / (1024 * 1024)
        checked = ", integrity_check ok" if self.checked else ""
        return (
            f"{source} → {self.out}: up to log position {self.last_pos} "
            f"(schema version {self.schema_version}, {mib:.1f} MiB in {self.seconds:.1f} s"
            f"{checked})"
        )


def backup_sqlite(
    db: Path,
    out: Path,
    *,
    force: bool = False,
    check: bool = False,
    pages: int = PAGES_PER_STEP,
    progress: Progress | None = None,
) -> BackupResult:
    """Copies the database at `db` to `out` as one snapshot; BackupError when it cannot."""
    started = time.monotonic()
    _check_paths(db, out, force)
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        last_pos, version = _copy(db, partial, pages, progress)
        checked = _finish(partial, last_pos, check)
        _sync(partial)
        if force:
            os.replace(partial, out)
        else:
            try:
                # A link fails if `out` appeared since the check: never replaced unasked.
                os.link(partial, out)
            except FileExistsError:
                raise BackupError(f"{out} exists: --force replaces it") from None
            except OSError:
                # A file system without hard links: the check above has to do.
                if out.exists():
                    raise BackupError(f"{out} exists: --force replaces it") from None
                os.replace(partial, out)
        _sync_directory(out.parent)
    finally:
        for leftover in (partial, *(Path(f"{partial}{end}") for end in _SIDE_FILES)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupResult(
        out=out,
        last_pos=last_pos,
        schema_version=version,
        size=out.stat().st_size,
        seconds=time.monotonic() - started,
        checked=checked,
    )


_SIDE_FILES = ("-journal", "-wal", "-shm")


def _check_paths(db: Path, out: Path, force: bool) -> None:
    if not db.is_file():
        raise BackupError(f"no database at {db}")
    if not out.parent.is_dir():
        raise BackupError(f"no directory {out.parent} for the backup")
    if out.exists():
        if out.is_dir():
            raise BackupError(f"{out} is a directory: name the backup's file")
        if out.samefile(db):
            raise BackupError("the backup cannot replace the database it copies")
        if not force:
            raise BackupError(f"{out} exists: --force replaces it")


def _copy(db: Path, partial: Path, pages: int, progress: Progress | None) -> tuple[int, int]:
    """The copy; the last log position and the schema version it holds."""
    # An existing file only (mode=rw: a mistyped path makes no empty database), never
    # written through (query_only), waiting out a commit's brief lock.
    source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    target = sqlite3.connect(partial, isolation_level=None)
    try:
        source.execute("PRAGMA query_only = 1")
        source.execute("PRAGMA busy_timeout = 10000")
        found = source.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()
        if found is None:
            raise BackupError(f"{db} is not a chatd database (it has no events table)")
        # The snapshot: the first read after BEGIN fixes it, and the backup's steps read
        # through this same transaction, so they all see this moment of the log.
        source.execute("BEGIN")
        last_pos = int(source.execute("SELECT coalesce(max(pos), 0) FROM events").fetchone()[0])
        version = int(source.execute("PRAGMA user_version").fetchone()[0])

        def advance(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress.set_total(total)
                progress.advance(total - remaining - progress.done)

        source.backup(target, pages=pages, progress=advance)
        source.execute("COMMIT")
    except sqlite3.Error as exc:
        raise BackupError(f"copying {db}: {exc}") from exc
    finally:
        target.close()
        source.close()
    return last_pos, version


def _finish(partial: Path, last_pos: int, check: bool) -> bool:
    """Opens the copy as the server would, reads its last position back and gives it a log
    id of its own; with `check`, SQLite's integrity_check too. Closing it folds its WAL into
    the one file.

    The new log id is for the day the copy is restored. Clients hold cursors into the log
    they were served, some past the copy's last position; on the restored log those
    positions are taken again by new events, which such a cursor would skip without a word.
    A cursor carries its log's id, so under a new id every old cursor is refused
    (`bad_cursor`) and its client loads its chats again instead."""
    copy = sqlite3.connect(partial, isolation_level=None)
    try:
        found = int(copy.execute("SELECT coalesce(max(pos), 0) FROM events").fetchone()[0])
        if found != last_pos:
            raise BackupError(f"the copy ends at position {found}, not {last_pos}")
        copy.execute("BEGIN IMMEDIATE")
        row = copy.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
        copy.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("log_id", secrets.token_hex(8)),
                # Where the copy came from, as the source's cursor of its last position.
                ("copied_from", f"{row[0] if row else ''}.{last_pos:x}"),
            ],
        )
        copy.execute("COMMIT")
        if check:
            problems = [str(row[0]) for row in copy.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError("the copy fails integrity_check: " + "; ".join(problems[:5]))
    except sqlite3.Error as exc:
        raise BackupError(f"reading the copy back: {exc}") from exc
    finally:
        copy.close()
    return check


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_directory(path: Path) -> None:
    """The rename itself survives a crash only once the directory is synced."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the command ----------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="copy the SQLite database, safely while the server runs",
        description="Copy the SQLite database to a file as one consistent snapshot, while "
        "the server goes on serving (SQLite's online backup). Prints the last log position "
        "the copy holds. To restore: stop the server, put the copy in the database's place "
        "(removing the old database's -wal and -shm files), start the server. For "
        "PostgreSQL, use pg_dump or continuous archiving.",
    )
    parser.add_argument("--db", default="chatd.db", help="SQLite database (default: %(default)s)")
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="a PostgreSQL log, postgresql://...: says which tools back it up (env CHATD_STORE)",
    )
    parser.add_argument("--out", "-o", required=True, help="the backup file to write")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run SQLite's integrity_check on the copy before it is put in place",
    )
    parser.set_defaults(handler=run)


def _is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def run(args: argparse.Namespace) -> int:
    if _is_postgres(args.store) or _is_postgres(args.db):
        print(f"chatd backup: {POSTGRES_ADVICE}", file=sys.stderr)
        return 2
    if args.store:
        print(f"chatd backup: unknown store {args.store!r}", file=sys.stderr)
        return 2
    db, out = Path(args.db), Path(args.out)
    try:
        with Progress("backup", None, unit="pages") as progress:
            result = backup_sqlite(db, out, force=args.force, check=args.check, progress=progress)
    except BackupError as exc:
        print(f"chatd backup: {exc}", file=sys.stderr)
        return 2
    print(result.describe(db))
    return 0
