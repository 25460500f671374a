"""`python -m chatd.proof.filter_speed` briefly: it runs, and each row is what it claims."""

from __future__ import annotations

import subprocess
import sys

from chatd.proof import filter_speed


def test_the_filter_speed_program_prints_every_group_and_flags_nothing_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.filter_speed", "--repeat", "1", "--min-time", "0.001"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [
        line.split()
        for line in done.stdout.splitlines()
        if line.startswith("after number ")  # not the group's median, "after number:"
    ]
    assert len(rows) == len(filter_speed.AFTER_NUMBER), done.stdout
    assert all(row[-1] == "-" for row in rows), done.stdout  # nothing found in them
    for group in (*filter_speed.CLEAN, "after number"):
        assert f"{group}:" in done.stdout


def test_the_messages_after_a_number_are_read_after_a_tail() -> None:
    # Each case's first message ends in a number, so the chat keeps a tail to read after.
    for _, before, _ in filter_speed.AFTER_NUMBER:
        assert filter_speed.number_tail("", before) != ""
