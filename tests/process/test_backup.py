"""`chatd backup`: one snapshot while another connection keeps committing, written whole or
not at all, and the refusals. (Under a running server's load: tests/e2e/test_backup.py.)"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from chatd.process.backup import BackupError, backup_sqlite
from chatd.store.sqlite_migrations import latest, migrate
from tests.process.in_process import run_chatd

PAD = b"x" * 3000  # about one page per event: a copy of many steps


def chatd_database(path: Path, events: int) -> Path:
    """A database of this version in WAL mode, as a server leaves it, with `events` rows."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        migrate(db, str(path))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
            " VALUES (?, 'c', ?, 'message', 'buyer', 1, ?)",
            [(n, n, PAD) for n in range(1, events + 1)],
        )
        db.execute("COMMIT")
    return path


def events_of(path: Path) -> list[tuple[int, int]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [(int(p), int(s)) for p, s in db.execute("SELECT pos, seq FROM events ORDER BY pos")]


def test_a_backup_is_one_snapshot_while_commits_go_on(tmp_path: Path) -> None:
    db = chatd_database(tmp_path / "live.db", 2000)
    stop = threading.Event()
    commits: list[float] = []

    def keep_committing() -> None:
        # Another connection, as the server's writer is: one event per commit, no pause.
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as writer:
            writer.execute("PRAGMA busy_timeout = 10000")
            pos = 2000
            while not stop.is_set():
                pos += 1
                writer.execute(
                    "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
                    " VALUES (?, 'c', ?, 'message', 'buyer', 1, ?)",
                    (pos, pos, PAD),
                )
                commits.append(time.monotonic())

    thread = threading.Thread(target=keep_committing)
    thread.start()
    try:
        while len(commits) < 20:
            time.sleep(0.001)
        started = time.monotonic()
        # One page a step: thousands of steps, with commits landing between them. Without
        # the snapshot held across steps, each commit would start the copy over.
        result = backup_sqlite(db, tmp_path / "copy.db", pages=1, check=True)
        ended = time.monotonic()
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()

    during = [t for t in commits if started < t < ended]
    copied = events_of(result.out)
    live = events_of(db)
    assert len(during) > 10, "the writer did not commit while the copy was taken"
    assert result.checked and result.schema_version == latest()
    assert copied == [e for e in live if e[0] <= result.last_pos]
    assert copied[-1][0] == result.last_pos and len(live) > len(copied) >= 2020
    # One file: what the copy's own WAL held was folded in when it was read back.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]


def test_without_a_held_snapshot_the_copy_starts_over_at_commits(tmp_path: Path) -> None:
    # Why `backup_sqlite` holds one read transaction: SQLite's backup alone reads each step
    # in a transaction of its own and starts over when the database changed between steps.
    db = chatd_database(tmp_path / "live.db", 2000)
    writer = sqlite3.connect(db, isolation_level=None)
    source = sqlite3.connect(db, isolation_level=None)
    target = sqlite3.connect(tmp_path / "copy.db")
    remaining: list[int] = []
    commits = 0

    def step(status: int, left: int, total: int) -> None:
        nonlocal commits
        remaining.append(left)
        if len(remaining) % 50 == 0 and commits < 3:  # a commit between two steps
            commits += 1
            n = 2000 + commits
            writer.execute(
                "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
                " VALUES (?, 'c', ?, 'message', 'buyer', 1, x'00')",
                (n, n),
            )

    try:
        source.backup(target, pages=10, progress=step)
    finally:
        for conn in (writer, source, target):
            conn.close()

    # Each commit sent it back to the first page (under commits that never stop, for ever).
    assert sum(1 for a, b in itertools.pairwise(remaining) if b > a) == commits == 3


def test_an_existing_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    db = chatd_database(tmp_path / "chatd.db", 5)
    out = tmp_path / "backup.db"
    out.write_bytes(b"an older backup")

    with pytest.raises(BackupError, match="exists: --force replaces it"):
        backup_sqlite(db, out)
    assert out.read_bytes() == b"an older backup"

    result = backup_sqlite(db, out, force=True)
    assert result.last_pos == 5 and events_of(out)[-1] == (5, 5)
    # Nothing of the copy's making is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if "backup" in p.name) == ["backup.db"]


def test_what_cannot_be_backed_up_is_refused(tmp_path: Path) -> None:
    db = chatd_database(tmp_path / "chatd.db", 1)
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")

    with pytest.raises(BackupError, match="no database at"):
        backup_sqlite(tmp_path / "missing.db", tmp_path / "b1.db")
    with pytest.raises(BackupError, match="not a chatd database"):
        backup_sqlite(other, tmp_path / "b2.db")
    with pytest.raises(BackupError, match="cannot replace the database it copies"):
        backup_sqlite(db, db, force=True)
    with pytest.raises(BackupError, match="no directory"):
        backup_sqlite(db, tmp_path / "nowhere" / "b3.db")
    assert not (tmp_path / "missing.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chatd.db", "other.db"]


def test_the_command_prints_the_last_position_and_refuses_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = chatd_database(tmp_path / "chatd.db", 7)
    out = tmp_path / "b.db"

    assert run_chatd(["backup", "--db", str(db), "--out", str(out), "--check"]) == 0
    printed = capsys.readouterr()
    assert f"{db} → {out}: up to log position 7 (schema version {latest()}" in printed.out
    assert "integrity_check ok" in printed.out
    assert printed.err == ""  # no progress lines off a terminal

    assert run_chatd(["backup", "--db", str(db), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"chatd backup: {out} exists: --force replaces it\n"


def test_a_postgresql_store_is_sent_to_its_own_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHATD_STORE", raising=False)
    out = tmp_path / "b.dump"
    code = run_chatd(["backup", "--store", "postgresql://chatd:secret@db/chatd", "--out", str(out)])

    err = capsys.readouterr().err
    assert code == 2
    assert "pg_dump" in err and "point-in-time recovery" in err and "secret" not in err
    assert not out.exists() and os.listdir(tmp_path) == []
