"""`chatd serve --store ... --hub ...` and CHATD_STORE / CHATD_HUB: SQLite and the in-process
hub stay the defaults; several nodes take PostgreSQL and Redis."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from chatd.hub.local import LocalHub
from chatd.hub.redis import RedisHub
from chatd.process.assemble import SettingsError, make_hub, make_store
from chatd.process.cli import build_parser, main
from chatd.store.base import EventStore
from chatd.store.postgres import PostgresStore
from chatd.store.sqlite import SqliteStore
from chatd.store.stats import StoreStats

DSN = "postgresql://chatd@db.example:5432/chatd"


def parse(monkeypatch: pytest.MonkeyPatch, *argv: str, **env: str) -> argparse.Namespace:
    for key in ("CHATD_STORE", "CHATD_HUB", "CHATD_FILES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return build_parser().parse_args(["serve", *argv])


def store_of(args: argparse.Namespace) -> EventStore:
    return make_store(args.store, db=Path(args.db), synchronous="full", stats=StoreStats())


def test_sqlite_and_the_local_hub_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse(monkeypatch)
    store = store_of(args)

    assert isinstance(store, SqliteStore)
    assert isinstance(make_hub(args.hub, store), LocalHub)
    assert args.files is None


@pytest.mark.parametrize("how", ["options", "environment"])
def test_postgresql_and_redis_by_option_or_environment(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "options":
        args = parse(monkeypatch, "--store", DSN, "--hub", "redis://r:6379/0", "--files", "/f")
    else:
        args = parse(monkeypatch, CHATD_STORE=DSN, CHATD_HUB="redis://r:6379/0", CHATD_FILES="/f")
    store = store_of(args)

    assert isinstance(store, PostgresStore)
    assert isinstance(make_hub(args.hub, store), RedisHub)
    assert args.files == "/f"


def test_an_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse(monkeypatch, "--hub", "local", CHATD_STORE=DSN, CHATD_HUB="redis://r/0")

    assert isinstance(make_hub(args.hub, store_of(args)), LocalHub)


def test_what_cannot_work_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = store_of(parse(monkeypatch))
    with pytest.raises(SettingsError, match="shared log"):
        make_hub("redis://r:6379/0", sqlite)
    with pytest.raises(SettingsError, match="unknown hub"):
        make_hub("kafka://k", sqlite)
    with pytest.raises(SettingsError, match="unknown store"):
        make_store("mysql://m/db", db=Path("x.db"), synchronous="full", stats=StoreStats())


def test_serve_says_what_is_wrong_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CHATD_SECRET", "s" * 32)
    db = str(tmp_path / "x.db")

    assert main(["serve", "--db", db, "--hub", "redis://127.0.0.1:6379/0"]) == 2
    assert "--store postgresql://" in capsys.readouterr().err
