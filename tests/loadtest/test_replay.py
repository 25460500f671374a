"""`chatd replay` against a real server: every event made again, none lost or doubled."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from chatd.loadtest.genlog import GenSpec, generate
from chatd.loadtest.replay import ReplaySettings
from chatd.loadtest.runner import ReplayError, ReplayOptions, run_replay
from chatd.process.export import run as export
from protocol.logfile import LogRecord, event_of, read_log, write_log
from tests.e2e.harness import SECRET, ServerProcess
from tests.loadtest.conftest import start_loaded_server


def _log(path: Path, **spec: object) -> Path:
    write_log(path, generate(GenSpec(**spec)))  # type: ignore[arg-type]
    return path


Conversation = list[tuple[str, str, str | None]]


def _conversations(records: list[LogRecord]) -> dict[tuple[str, str], Conversation]:
    """Every chat, by its buyer and shop, as its events' (kind, author role, text)."""
    chats: dict[str, Conversation] = defaultdict(list)
    parties: dict[str, tuple[str, str]] = {}
    for record in records:
        if record.stream.startswith("order:"):
            continue
        if record.kind == "chat.opened":
            data = event_of(record).data
            parties[record.stream] = (data.buyer.id, data.seller.id)
        chats[record.stream].append((record.kind, record.author.role, record.text))
    return {parties[chat]: events for chat, events in chats.items()}


def test_replay_at_max_speed_makes_every_event_again(server: ServerProcess, tmp_path: Path) -> None:
    log = _log(tmp_path / "log.jsonl", shops=8, buyers=60, events=1200, returns=0.6, seed=21)
    report, chart = tmp_path / "report.json", tmp_path / "chart.html"
    options = ReplayOptions(
        log=str(log),
        settings=ReplaySettings(url=server.url, secret=SECRET, settle=5),
        report=str(report),
        chart=str(chart),
        progress=False,
    )
    run = run_replay(options)
    body = json.loads(report.read_text())
    assert run.ok, body["check"]["examples"]
    assert body["errors"]["total"] == 0
    assert body["check"] == {"lost": 0, "doubled": 0, "mismatched": 0, "examples": []}
    chat_events = sum(1 for r in read_log(log) if not r.stream.startswith("order:"))
    assert body["delivered"]["events"] == chat_events
    assert body["delivered"]["deliveries"] >= 2 * chat_events
    for key in ("p50", "p90", "p99", "p99.9", "max"):
        assert body["latency_ms"]["delivery"][key] > 0
    assert body["timeline"] and body["chart"] == str(chart)
    assert "<svg" in chart.read_text()

    # What the server now holds is the log's conversations, in the log's order.
    exported = tmp_path / "export.jsonl"
    assert export(_namespace(server.db, exported)) == 0
    assert _conversations(list(read_log(exported))) == _conversations(list(read_log(log)))


def test_replay_on_the_logs_schedule_with_two_processes(
    server: ServerProcess, tmp_path: Path
) -> None:
    log = _log(tmp_path / "log.jsonl", shops=6, buyers=40, events=500, span=20.0, seed=22)
    options = ReplayOptions(
        log=str(log),
        settings=ReplaySettings(url=server.url, secret=SECRET, speed=10.0, connections=2),
        processes=2,
        report=str(tmp_path / "report.json"),
        chart=str(tmp_path / "chart.html"),
        progress=False,
    )
    run = run_replay(options)
    assert run.ok, run.outcome.examples
    assert run.processes == 2
    assert 1.5 < run.duration < 15  # 20 s of log at x10
    body = json.loads((tmp_path / "report.json").read_text())
    assert body["run"]["speed"] == 10.0 and body["offered"]["per_s"] > 0


def test_a_second_replay_into_the_same_server_is_seen_as_doubled(tmp_path: Path) -> None:
    log = _log(tmp_path / "log.jsonl", shops=3, buyers=20, events=200, returns=0.0, seed=23)
    server = start_loaded_server(tmp_path / "db.sqlite")
    try:
        settings = ReplaySettings(url=server.url, secret=SECRET, settle=3)
        first = run_replay(ReplayOptions(log=str(log), settings=settings, progress=False))
        assert first.ok
        # The chats exist now: `open` answers with them, and the messages are appended
        # again after the first ones: the chats hold more than the log has.
        second = run_replay(ReplayOptions(log=str(log), settings=settings, progress=False))
        assert second.outcome.error_count == 0
        assert second.outcome.doubled > 0 and not second.ok
    finally:
        server.stop()


def test_an_invalid_log_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    records = generate(GenSpec(shops=2, buyers=5, events=50, seed=1))
    log = tmp_path / "broken.jsonl"
    write_log(log, [r for r in records if r.kind != "chat.opened"])
    settings = ReplaySettings(url="ws://127.0.0.1:9/ws", secret=SECRET)
    with pytest.raises(ReplayError, match="problems"):
        run_replay(ReplayOptions(log=str(log), settings=settings, progress=False))


def _namespace(db: Path, out: Path) -> object:
    import argparse

    return argparse.Namespace(db=str(db), out=str(out))
