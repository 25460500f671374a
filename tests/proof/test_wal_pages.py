"""`python -m chatd.proof.wal_pages` at a small size: it runs, and its figures are sane."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_wal_pages_program_prints_a_row_per_commit_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.wal_pages", "--chats", "40", "--history", "2",
         "--messages", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    rows = [
        [float(x) for x in line.split()]
        for line in done.stdout.splitlines()
        if re.fullmatch(r"\s*\d+(\s+[\d.]+){3}", line)
    ]
    assert [int(row[0]) for row in rows] == [1, 3, 10], done.stdout
    for together, per_commit, frames, kib in rows:
        # The messages sent together share commits, and every message writes some pages
        # (its event, its feed rows, its chat's row), fewer the more share a commit.
        assert 1 <= per_commit <= together
        assert 0.5 < frames < 40
        assert abs(kib - frames * 4) < 0.25  # both printed to one decimal
    assert rows[0][2] > rows[2][2], done.stdout
