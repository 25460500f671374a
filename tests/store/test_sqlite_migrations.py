"""SQLite's schema versions: a database of the last release without versions
(tests/fixtures/previous_release.sql, made by that release's own code) taken to this one, a
new database equal to a migrated one, and the refusals."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.store import sqlite_migrations
from chatd.store.schema_version import SchemaTooNew
from chatd.store.sqlite import SqliteStore
from chatd.store.sqlite_migrations import Migration, latest, migrate, statements, user_version
from protocol.events import decode_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PREVIOUS_RELEASE = FIXTURES / "previous_release.sql"
PREVIOUS_EVENTS = 27


def previous_release(path: Path) -> Path:
    """A database file as the last release without versions left it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(PREVIOUS_RELEASE.read_text())
    return path


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def schema_of(db: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """Every table, index and trigger by name: its type and its SQL without comments and
    with whitespace normalized, so that two databases of the same schema compare equal
    however each got there."""
    found: dict[str, tuple[str, str]] = {}
    for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master"):
        text = re.sub(r"--[^\n]*", "", sql or "")
        text = re.sub(r"\s+", " ", text)
        text = re.sub(r"\s*([(),])\s*", r"\1", text).strip()
        found[name] = (kind, text.replace("IF NOT EXISTS ", ""))
    return found


def test_the_previous_release_is_brought_to_this_version_step_by_step(tmp_path: Path) -> None:
    path = previous_release(tmp_path / "old.db")
    with opened(path) as db:
        assert user_version(db) == 0
        report = migrate(db, "old.db")
        tables = set(schema_of(db))
        version = user_version(db)
        indexed = db.execute("SELECT count(*) FROM search").fetchone()[0]
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        check = db.execute("PRAGMA integrity_check").fetchone()[0]

    assert (report.before, report.after, report.created) == (0, latest(), False)
    assert [step.split(":")[0] for step in report.steps] == [str(n) for n in range(1, latest() + 1)]
    assert report.describe().startswith(f"old.db: schema version 0 → {latest()} (1: ")
    assert version == latest()
    # Step 1 gave it what the last release added (API keys, webhooks); step 2 moved the
    # second search index's texts into the first, and dropped it.
    assert {"api_keys", "webhooks", "webhook_deliveries", "search_queue"} <= tables
    assert "search_recent" not in tables
    assert indexed == 14
    assert (events, check) == (PREVIOUS_EVENTS, "ok")


async def test_the_store_serves_a_migrated_previous_release(tmp_path: Path) -> None:
    path = previous_release(tmp_path / "old.db")
    store = SqliteStore(path)
    await store.open()
    try:
        log = await store.read_all(0, 100)
        chats = await store.list_chats("s:shop-kunchenko", None, 100)
        # Texts the old release kept in its second index are found.
        found = await store.search("b:buyer-svetlana", ["кардиган"], None, 10)
        claims = await store.claims_seen_by("s:shop-kunchenko")
    finally:
        await store.close()

    assert [s.pos for s in log] == list(range(1, PREVIOUS_EVENTS + 1))
    with opened(path) as db:
        bodies = [bytes(b) for (b,) in db.execute("SELECT body FROM events ORDER BY pos")]
        assert user_version(db) == latest()
    assert [s.event for s in log] == [decode_event(b) for b in bodies]
    assert len(chats) == 6
    assert [s.event.text for s in found] == [
        "Добрый день! Подскажите, кардиган сильно садится после стирки?"
    ]
    assert len(claims) == 3


def test_a_new_database_has_the_schema_a_migrated_one_has(tmp_path: Path) -> None:
    # New databases are made from sqlite_schema, old ones by the steps: a change to the
    # schema without its step (or a step that differs from it) fails here.
    with opened(tmp_path / "new.db") as new:
        report = migrate(new, "new.db")
        made = schema_of(new)
        assert user_version(new) == latest()
    with opened(previous_release(tmp_path / "old.db")) as old:
        migrate(old, "old.db")
        migrated = schema_of(old)

    assert report.created and report.describe() == f"new.db: created at schema version {latest()}"
    assert made == migrated


def test_a_database_made_by_the_last_release_without_versions_is_version_0(
    tmp_path: Path,
) -> None:
    # The last release made databases with API keys and webhooks already, and no version.
    path = previous_release(tmp_path / "last.db")
    with opened(path) as db:
        for statement in statements(sqlite_migrations._V1):
            db.execute(statement)
        db.execute("INSERT INTO api_keys VALUES ('k1', 's', 'n', 'read', x'01', 't', NULL)")
        report = migrate(db, "last.db")
        keys = db.execute("SELECT id FROM api_keys").fetchall()

    assert (report.before, report.after) == (0, latest())
    assert keys == [("k1",)]


def test_an_up_to_date_database_is_left_alone(tmp_path: Path) -> None:
    path = previous_release(tmp_path / "old.db")
    first = sqlite_migrations.migrate_file(path)
    again = sqlite_migrations.migrate_file(path)

    assert first.steps and not again.steps
    assert again.describe() == f"{path}: schema version {latest()}, up to date"


async def test_a_database_newer_than_this_code_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "newer.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with opened(path) as db:
        db.execute(f"PRAGMA user_version = {latest() + 1}")
        before = schema_of(db)

    store = SqliteStore(path)
    with pytest.raises(SchemaTooNew) as refused:
        await store.open()
    with pytest.raises(SchemaTooNew):
        sqlite_migrations.check_not_newer(path)

    assert refused.value.found == latest() + 1
    assert f"newer than this chatd knows ({latest()})" in str(refused.value)
    with opened(path) as db:
        assert schema_of(db) == before
        assert user_version(db) == latest() + 1


def test_a_step_that_fails_leaves_the_database_at_the_version_before_it(
    tmp_path: Path,
) -> None:
    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (n INTEGER)")
        raise sqlite3.OperationalError("the step fails half way")

    steps = (*sqlite_migrations.MIGRATIONS, Migration("fails", half_done))
    path = previous_release(tmp_path / "old.db")
    with opened(path) as db:
        with pytest.raises(sqlite3.OperationalError, match="half way"):
            migrate(db, "old.db", steps)
        assert user_version(db) == len(steps) - 1
        assert "half" not in schema_of(db)
        assert not db.in_transaction


def test_two_processes_migrating_at_once_apply_each_step_once(tmp_path: Path) -> None:
    # Each step takes the write lock and reads the version again under it: the texts step 2
    # moves between the search indexes are moved once, not once per process.
    path = previous_release(tmp_path / "old.db")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            start.wait()
            sqlite_migrations.migrate_file(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with opened(path) as db:
        assert user_version(db) == latest()
        assert db.execute("SELECT count(*) FROM search").fetchone()[0] == 14


def test_a_script_is_split_into_whole_statements() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT ';');  -- trailing
    CREATE INDEX b ON a (x);
    -- nothing after this
    """
    assert statements(script) == [
        "-- a comment; with a semicolon\n    CREATE TABLE a (x TEXT DEFAULT ';');  -- trailing",
        "CREATE INDEX b ON a (x);",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE a (x")
