"""`python -m chatd.proof.crash` in small: kill -9 under load, then the proof that every
acked event is kept exactly once, seq gapless, SQLite sound and the projections equal to a
rebuild. The 50-cycle run for the README is the same program with `--cycles 50`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatd.proof.crash import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_three_kill_9_cycles_under_load_keep_every_acked_event_exactly_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.crash", "--cycles", "3", "--workers", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "verdict                             PASS" in out, out
    for figure in (
        "acked events lost                   0",
        "duplicated messages                 0",
        "chats with a seq gap                0",
        "integrity_check failures            0",
        "projections unequal to a rebuild    0",
        "final replay of every feed          ok",
    ):
        assert figure in out, out  # fmt: skip


@pytest.mark.timeout(180)
async def test_synchronous_normal_survives_a_process_crash_too(tmp_path: Path) -> None:
    """NORMAL in WAL mode may lose the last commits on a power loss, never on a crash of the
    process alone: the operating system still holds what was written."""
    report = await run(2, workers=4, sync="normal", seed=2, root=tmp_path, echo=False)
    assert report.ok, report.findings.all() + report.final_replay
    assert len(report.cycles) == 2 and report.acked_total > 0
    assert all(cycle.acks > 0 for cycle in report.cycles)
