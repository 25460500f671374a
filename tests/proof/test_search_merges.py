"""`python -m chatd.proof.search_merges` at a small size: it runs, and its figures are sane."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_search_merges_program_prints_a_row_per_stretch_of_texts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.search_merges", "--texts", "30000", "--every",
         "10000", "--per-commit", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    rows = [
        line.split()
        for line in done.stdout.splitlines()
        if re.fullmatch(r"\s*[\d,]+\s+\d+\s+\d+\s+[\d.]+\s+\d+\s+\d+", line)
    ]
    assert [row[0] for row in rows] == ["10,000", "20,000", "30,000"], done.stdout
    sizes = [int(row[1]) for row in rows]
    assert sizes == sorted(sizes) and sizes[-1] > 0, done.stdout
    for _, _, steps, longest, over_50, over_100 in rows:
        # Every stretch indexes texts and so leaves segments to merge: steps are taken.
        assert int(steps) > 0 and float(longest) > 0, done.stdout
        assert int(steps) >= int(over_50) >= int(over_100), done.stdout
    assert "30,000 texts in" in done.stdout
