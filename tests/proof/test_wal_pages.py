"""`python -m chatd.proof.wal_pages` at a small size: it runs, and its figures are sane."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_wal_pages_program_prints_a_row_per_commit_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.wal_pages", "--chats", "40", "--history", "2",
         "--messages", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    rows = [
        [float(x) for x in line.split()]
        for line in done.stdout.splitlines()
        if re.fullmatch(r"\s*\d+(\s+[\d.]+){5}", line)
    ]
    assert [int(row[0]) for row in rows] == [1, 3, 10], done.stdout
    for together, per_commit, frames, kib, cpu, system in rows:
        # The messages sent together share commits, and every message writes some pages
        # (its event, its feed rows, its nonce, its chat's row), fewer the more share a commit.
        assert 1 <= per_commit <= together
        assert 0.5 < frames < 40
        assert abs(kib - frames * 4) < 0.25  # both printed to one decimal
        # The writer's own clock, which the kernel advances a tick (a few ms) at a time: a
        # phase of few commits may read no system time at all.
        assert 0 <= system <= cpu
    assert rows[0][2] > rows[2][2], done.stdout
    # A commit's fixed costs (the fsync, the statements' set-up) shared by more messages:
    # at 300 messages the phases differ by many ticks.
    assert rows[0][4] > rows[2][4] > 0, done.stdout


def test_the_wal_pages_program_names_the_owner_of_each_frame() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.wal_pages", "--chats", "40", "--history", "2",
         "--messages", "60", "--sync", "normal"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    assert "synchronous=normal" in done.stdout
    owners = {
        match.group(1): [float(x) for x in match.group(2).split()]
        for match in re.finditer(r"(?m)^\s*(\S.*?)((?:\s+\d+\.\d\d){3})$", done.stdout)
    }
    # Each message's event, its (stream, seq) entry, its feed rows and nonce are written by
    # every commit that holds it, so each of them owns frames at every commit size.
    for name in ("events", "events (stream, seq)", "feed", "nonces", "chats"):
        assert name in owners, done.stdout
        assert all(share > 0 for share in owners[name]), (name, done.stdout)
    # A message moves its chat in the shop's index of activity, not in the buyer's, whose few
    # chats are sorted when read: no frame of that index is written for a message.
    assert "chats_by_seller" in owners, done.stdout
    assert "chats_by_buyer" not in owners, done.stdout
    # The shares add up to the frames a message of the first table.
    frames = [
        float(line.split()[2])
        for line in done.stdout.splitlines()
        if re.fullmatch(r"\s*\d+(\s+[\d.]+){5}", line)
    ]
    for column, total in enumerate(frames):
        assert abs(sum(shares[column] for shares in owners.values()) - total) < 0.1 * len(owners)
