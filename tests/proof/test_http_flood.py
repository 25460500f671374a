"""`python -m chatd.proof.http_flood` in small: 8 clients for 3 s beside oversize bodies,
slow headers and bodies and idle connections, with a 2 s header deadline so that the slow
ones are let go within the test; its figures and verdicts are the real ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_a_short_flood_is_answered_and_leaves_nothing_behind(tmp_path: Path) -> None:
    figures = tmp_path / "flood.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "chatd.proof.http_flood", "--clients", "8", "--seconds", "3",
            "--idle", "40", "--slow", "4", "--oversize", "2", "--quiet", "0.5",
            "--settle", "4", "--header-timeout", "2", "--json", str(figures),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )  # fmt: skip
    out = done.stdout[-4000:] + done.stderr[-3000:]
    assert figures.exists(), out
    report = json.loads(figures.read_text())
    assert done.returncode == 0 and report["ok"], out
    assert all(report["verdicts"].values()), out
    # The flood reached the handlers: every kind of request was made and answered as it
    # must be (with the HTTP rate limits lifted, nothing is 429).
    kinds = report["kinds"]
    for kind in (
        "chats 200", "history 200", "events 200", "send 201", "healthz 200", "claims 200",
        "unknown route 404", "wrong method 405", "bad token 401", "not json 400",
    ):  # fmt: skip
        assert kinds.get(kind, 0) > 0, (kind, kinds)
    assert report["requests"] == sum(report["statuses"].values()) > 100
    assert not any(int(status) >= 500 for status in report["statuses"])
    # Every oversize body refused with 413, every slow connection let go by the server.
    assert report["oversize"] and all(k.endswith(": 413") for k in report["oversize"])
    slow = report["slow"]
    assert slow["closed"] >= 4 and slow["held_s"]["max"] <= 2 + 6, slow
    assert not any("still open" in k for k in slow["answers"]), slow
    # Open files back to where they were; the bystander's chat lost nothing.
    files = report["server"]["open_files"]
    assert files["peak"] > files["before"] + 20 and files["after"] <= files["before"] + 16, files
    for phase, row in report["bystander"].items():
        assert row["sent"] == row["delivered"] > 0, (phase, row)
    assert "bystander chat, flood" in done.stdout and "verdicts:" in done.stdout
