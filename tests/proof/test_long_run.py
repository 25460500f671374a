"""`python -m chatd.proof.long_run` in small: three periods of three seconds at 100 msg/s over
20 chats, with every other kind of the mix beside the messages, and the figures it prints
and writes are the real ones; and its own rules for small integers and sparse p99s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatd.proof.long_run import (
    FD_SLACK,
    RECONNECT_SHARE,
    RETURNS_PER_PERIOD,
    at_most_above,
    sparse_p99,
)
from chatd.proof.server_pauses import shown

ROOT = Path(__file__).resolve().parents[2]
CHATS, RATE, PERIODS, SECONDS = 20, 100, 3, 3
# A return is four answered steps: the order registered, `open` with it, the request, the
# shop's decision.
RETURN_STEPS = 4


def long_run(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    figures, workdir = tmp_path / "long_run.json", tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable, "-m", "chatd.proof.long_run", "--chats", str(CHATS),
            "--rate", str(RATE), "--minutes", str(PERIODS), "--minute-seconds", str(SECONDS),
            "--workdir", str(workdir), "--json", str(figures),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )  # fmt: skip
    # Flatness over tiny periods is noise: the run may fail those verdicts, not the others.
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(figures.read_text())


@pytest.mark.timeout(60)
def test_three_short_periods_run_every_kind_and_report_the_real_figures(tmp_path: Path) -> None:
    done, report = long_run(tmp_path)
    periods = report["periods"]
    assert [p["period"] for p in periods] == [1, 2, 3]
    for p in periods:
        # 100 msg/s for 3 s, every one delivered; each other kind happened and was answered.
        assert RATE * SECONDS - 1 <= p["sent"] <= RATE * SECONDS + 1, p
        assert p["delivered"] == p["sent"] and p["undelivered"] == 0, p
        assert 0 < p["p50_ms"] <= p["p99_ms"], p
        for kind, figures in p["kinds"].items():
            assert figures["sent"] > 0, (kind, p)
        # Every socket is a file of the server's, besides its database and log.
        assert p["open_files"] > 2 * CHATS, p
        assert p["wal_bytes"] > 0 and p["db_bytes"] > 0 and p["rss_bytes"] > 0, p
        assert p["disk_bytes"] >= 4096, p
        assert p["loop_lag_ms"] is None or p["loop_lag_ms"] >= 1, p
        assert p["commit_ms"] is None or p["commit_ms"] >= 0.5, p

    final = report["final"]
    assert final["delivered"] == final["sent"] > 0 and final["undelivered"] == 0
    for kind, figures in final["kinds"].items():
        assert figures["answered"] == figures["sent"] > 0, (kind, figures)
        assert figures["failed"] == 0 and figures["errors"] == {}, (kind, figures)
    kinds = final["kinds"]
    assert kinds["message"]["sent"] == final["sent"]
    assert kinds["return"]["sent"] == RETURN_STEPS * RETURNS_PER_PERIOD * PERIODS
    reconnects = round(RECONNECT_SHARE * 2 * CHATS) * PERIODS
    assert kinds["reconnect"]["sent"] == reconnects
    # Each chat gets a message every 0.2 s, to either side in turn: a side away for half a
    # second misses at least one, which its replay must bring.
    assert final["replayed"] >= reconnects
    assert final["gaps"] == final["repeats"] == 0
    assert final["closed_by_server"] == {} and final["stray"] == {}

    verdicts = {v["name"]: v["ok"] for v in report["verdicts"]}
    for name in (
        "WAL never above 64 MiB",
        "everything delivered",
        "nothing missed or repeated",
        "every request answered",
    ):
        assert verdicts[name], (name, report["verdicts"])
    assert report["ok"] == (done.returncode == 0) == all(verdicts.values())

    # The database the sizes were read from is the server's, kept in --workdir.
    db = Path(report["db"])
    assert db.parent == tmp_path / "work" and db.stat().st_size >= periods[-1]["db_bytes"]
    # The printed lines carry the same figures: the soak's columns, then the open files.
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["period", "elapsed"])
    for p, line in zip(periods, lines[header + 1 : header + 1 + PERIODS], strict=True):
        cells = line.split()
        assert cells[0] == str(p["period"]) and cells[2:5] == [
            str(p["sent"]), str(p["delivered"]), "0"
        ], line  # fmt: skip
        assert cells[11] == f"{p['disk_bytes'] / 1024 / p['sent']:.1f}", line
        assert cells[12:15] == [shown(p["loop_lag_ms"]), shown(p["gc_ms"]), shown(p["commit_ms"])]
        assert cells[15] == str(p["open_files"]), line
    assert "every request answered" in done.stdout


def test_open_files_may_move_by_a_few_but_not_grow() -> None:
    steady = [2040, 2030, 2030 + FD_SLACK, 2025]
    assert at_most_above("open files", steady, FD_SLACK, "files").ok
    leaking = [2040, 2030, 2035, 2030 + FD_SLACK + 1]
    verdict = at_most_above("open files", leaking, FD_SLACK, "files")
    assert not verdict.ok and "4 (2039 files)" in verdict.detail


def test_a_sparse_p99_may_jump_with_the_servers_stalls_but_not_grow() -> None:
    # Period 2's own p99 was 20 ms, its messages' 100 ms: 200 ms is within twice the stalls.
    assert sparse_p99("p99", [30.0, 20.0, 200.0, 60.0], stalls=100.0).ok
    growing = sparse_p99("p99", [30.0, 20.0, 120.0, 206.0], stalls=100.0)
    assert not growing.ok and "4 (206.0 ms)" in growing.detail
