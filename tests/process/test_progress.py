"""Progress bars of `rebuild`, `export`, `gen-log` and `demo`: drawn on a terminal, and
nothing but the commands' own lines anywhere else."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatd.process.demo import STEPS
from chatd.progress import Progress
from tests.process.in_process import run_chatd


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_short_run_prints_nothing() -> None:
    out = io.StringIO()
    with Progress("rebuild", 100, stream=out) as bar:
        bar.advance(60)
        bar.advance(40)
    assert out.getvalue() == ""


def test_off_a_terminal_a_long_run_prints_plain_lines_and_a_last_one() -> None:
    out = io.StringIO()
    with Progress("export", 200, stream=out, every=0.01) as bar:
        time.sleep(0.02)
        bar.advance(50)
        bar.advance(150)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "export: 50/200 events (25%)",
        "export: 200/200 events (100%)",
    ]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_on_a_terminal_a_bar_is_drawn() -> None:
    out = Terminal()
    with Progress("rebuild", 10, stream=out) as bar:
        counted = bar.counting(lambda n: n * 2)
        assert [counted(n) for n in range(10)] == [n * 2 for n in range(10)]
    drawn = out.getvalue()
    assert "rebuild" in drawn and "10/10" in drawn and "━" in drawn


def on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """`chatd ARGS` in a child process whose standard error is a terminal (a pty); the exit
    code and what it drew there."""
    screen, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatd", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(child)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(screen, 65536)
        except OSError:  # the child has closed its end
            break
        if not chunk:
            break
        drawn += chunk
    process.communicate(timeout=60)
    os.close(screen)
    # Without rich's colours and cursor moves: the text the bar shows.
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))
    return process.returncode, shown


# Each command, the label of its bar and what the bar shows when done (the demo's events:
# as many as it writes).
COMMANDS = [
    (["demo", "--db", "chatd.db"], "demo", f"{STEPS}/{STEPS} steps"),
    (["rebuild", "--db", "chatd.db"], "rebuild", r"(\d+)/\1 events"),
    (["export", "--db", "chatd.db", "--out", "log.jsonl"], "export", r"(\d+)/\1 events"),
    (["gen-log", "--events", "300", "--out", "gen.jsonl"], "writing", "300/300 events"),
]


def test_the_commands_draw_bars_on_a_terminal(tmp_path: Path) -> None:
    for args, label, count in COMMANDS:
        code, drawn = on_terminal(args, tmp_path)
        assert code == 0, drawn
        assert label in drawn and re.search(count, drawn) and "━" in drawn, (args, drawn)


def test_the_commands_print_only_their_own_lines_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process, where standard error is pytest's capture and no terminal.
    monkeypatch.chdir(tmp_path)
    printed = []
    for args, _, _ in COMMANDS:
        assert run_chatd(args) == 0
        printed.append(capsys.readouterr())

    assert [p.out for p in printed] == [
        "demo data loaded\n",
        "projections rebuilt from the log\n",
        "",
        "",
    ]
    # Standard error holds the log's lines (what was done to the database) and the lines
    # the commands print; no bar, no progress line.
    logged = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
    said = [[ln for ln in p.err.splitlines() if not logged.match(ln)] for p in printed]
    with contextlib.closing(sqlite3.connect(tmp_path / "chatd.db")) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert said == [
        [],
        [],
        [f"{events} events written to log.jsonl"],
        ["300 events written to gen.jsonl"],
    ]
