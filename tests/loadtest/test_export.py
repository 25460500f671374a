"""`chatd export`: the log of a running server, as JSON Lines, round-trips."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from chatd.loadtest.genlog import GenSpec, generate
from chatd.loadtest.replay import ReplaySettings
from chatd.loadtest.runner import ReplayOptions, run_replay
from chatd.process.export import export_db, run
from chatd.store.sqlite import SqliteStore
from protocol.logfile import decode, encode, event_of, read_log, record_of
from tests.e2e.harness import SECRET, ServerProcess


async def _stored(db: Path) -> list[tuple[int, object]]:
    store = SqliteStore(db)
    await store.open()
    try:
        return [(s.pos, s.event) for s in await store.read_all(0, 1_000_000)]
    finally:
        await store.close()


def test_every_generated_record_survives_the_json_lines_encoding() -> None:
    for record in generate(GenSpec(shops=5, buyers=30, events=800, returns=1.0, seed=2)):
        again = decode(encode(record))
        assert event_of(again) == event_of(record)
        assert record_of(again.pos, event_of(again)) == record_of(record.pos, event_of(record))


def test_export_of_a_running_servers_log_round_trips(server: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "generated.jsonl"
    from protocol.logfile import write_log

    write_log(log, generate(GenSpec(shops=4, buyers=20, events=300, returns=0.6, seed=9)))
    settings = ReplaySettings(url=server.url, secret=SECRET, settle=5)
    assert run_replay(ReplayOptions(log=str(log), settings=settings, progress=False)).ok

    out = tmp_path / "export.jsonl"
    args = argparse.Namespace(db=str(server.db), out=str(out))
    assert run(args) == 0  # beside the running server
    exported = list(read_log(out))
    stored = asyncio.run(_stored(server.db))
    assert len(exported) == len(stored) == 300
    assert [(r.pos, event_of(r)) for r in exported] == stored

    again = tmp_path / "again.jsonl"
    assert asyncio.run(export_db(server.db, again)) == 300
    assert again.read_bytes() == out.read_bytes()


def test_export_of_a_missing_database_says_so(tmp_path: Path) -> None:
    args = argparse.Namespace(db=str(tmp_path / "none.db"), out=str(tmp_path / "out.jsonl"))
    assert run(args) == 2
