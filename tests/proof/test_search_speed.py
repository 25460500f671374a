"""`python -m chatd.proof.search_speed` at a small size: it runs, and what it finds is right."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_search_speed_program_prints_a_row_per_query_and_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.search_speed", "--sizes", "20,60", "--searches", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [
        line.split()
        for line in done.stdout.splitlines()
        if re.fullmatch(r"\s*\d+\s+[a-z]+(\s+[\d.]+){4}", line)
    ]
    found = {(int(size), query): int(count) for size, query, count, *_ in rows}
    # One message holds the number asked for; every message holds the word, and a search
    # answers at most its limit; no message holds «возврат».
    assert found[(20, "selective")] == found[(60, "selective")] == 1, done.stdout
    assert found[(20, "broad")] == 20 and found[(60, "broad")] == 50, done.stdout
    assert found[(20, "nothing")] == found[(60, "nothing")] == 0, done.stdout
    for _, _, _, p50, most, cpu in rows:
        assert 0 < float(p50) <= float(most), done.stdout
        assert float(cpu) >= 0, done.stdout
