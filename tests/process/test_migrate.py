"""`chatd migrate`: from which version to which, what is pending, and the refusals."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from chatd.store.sqlite_migrations import latest
from tests.process.in_process import run_chatd
from tests.store.test_sqlite_migrations import previous_release


@pytest.fixture(autouse=True)
def no_shared_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATD_STORE", raising=False)


def test_migrate_says_what_is_pending_then_applies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = previous_release(tmp_path / "chatd.db")

    assert run_chatd(["migrate", "--db", str(db), "--check"]) == 1
    assert capsys.readouterr().out == (
        f"{db}: schema version 0, {latest()} migration(s) pending to {latest()}\n"
    )
    assert run_chatd(["migrate", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{db}: schema version 0 → {latest()} (1: a database from before")
    assert "; 2: search texts queued" in out
    assert run_chatd(["migrate", "--db", str(db)]) == 0
    assert capsys.readouterr().out == f"{db}: schema version {latest()}, up to date\n"
    assert run_chatd(["migrate", "--db", str(db), "--check"]) == 0


def test_migrate_refuses_a_newer_database_and_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = previous_release(tmp_path / "chatd.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {latest() + 1}")
        conn.commit()
    missing = tmp_path / "missing.db"

    for args in (["--db", str(db)], ["--db", str(db), "--check"]):
        assert run_chatd(["migrate", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"chatd migrate: {db} is at schema version {latest() + 1}, newer")
    assert run_chatd(["migrate", "--db", str(missing)]) == 2
    assert capsys.readouterr().err == f"chatd migrate: no database at {missing}\n"
    assert not missing.exists()
