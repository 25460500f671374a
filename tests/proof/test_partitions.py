"""`python -m chatd.proof.partitions` in small: two nodes, PostgreSQL and Redis in network
namespaces of their own, every kind of fault for 2 s while clients write through both nodes;
nothing acked is lost or doubled, no seq gaps, every client has every event within 5 s of
the heal, and nothing of the lab outlives the program, however it ends."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest

from chatd.proof.netlab import preflight

ROOT = Path(__file__).resolve().parents[2]
# The faults of the program's own list that found defects, and one of each other kind:
# `redis-restart` cuts a node from Redis, `postgres-mid-write` from PostgreSQL.
SCENARIOS = "redis-restart,postgres-mid-write,clients,lossy-postgres,lossy-redis"


def _require_lab() -> None:
    problems = preflight()
    if problems:
        pytest.fail("the partitions proof needs network namespaces: " + "; ".join(problems))


def _prefix_in(out: str) -> str | None:
    """The prefix of the run's namespaces, as its first line names them."""
    found = re.search(r"namespaces (chatdp-\d+-[0-9a-f]+-)", out)
    return found.group(1) if found else None


def _prefix(out: str) -> str:
    prefix = _prefix_in(out)
    assert prefix is not None, out[-3000:]
    return prefix


def _left_over(prefix: str, marks: list[str]) -> list[str]:
    """Namespaces of the run, and processes naming any of `marks`, still there."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [line for line in namespaces.splitlines() if line.startswith(prefix)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(mark in command for mark in marks):
            left.append(f"process {entry.name}: {command}")
    return left


def _fail_with_the_stacks_of(program: subprocess.Popen[str], out: str) -> NoReturn:
    """A program that did not end in time: where each of its threads was (it prints them
    on SIGUSR1), then it is killed and what it left is removed."""
    program.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    program.kill()
    rest, _ = program.communicate()
    out += rest
    prefix = _prefix_in(out)
    if prefix is not None:
        for left in _left_over(prefix, []):
            name = left.split()[0]
            # Its services first: deleting a namespace ends none of the processes in it.
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    pytest.fail("it did not end within 60 s of SIGTERM; its output and stacks:\n" + out[-8000:])


@pytest.mark.timeout(150)
def test_every_fault_loses_nothing_doubles_nothing_and_heals_within_5_s(tmp_path: Path) -> None:
    _require_lab()
    report, workdir = tmp_path / "partitions.json", tmp_path / "work"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "chatd.proof.partitions", "--scenarios", SCENARIOS,
            "--chats", "4", "--shops", "2", "--warmup", "0.5", "--cut", "2", "--settle", "0.5",
            "--workdir", str(workdir), "--json", str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )  # fmt: skip
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out[-6000:] + done.stderr[-3000:]
    figures = json.loads(report.read_text())
    assert figures["ok"] is True
    scenarios = {s["scenario"]: s for s in figures["scenarios"]}
    assert list(scenarios) == SCENARIOS.split(",")
    for name, s in scenarios.items():
        where = f"{name}: {s}"
        assert s["acked"] > 50 and s["events"] >= s["acked"], where
        assert s["lost"] == s["undelivered"] == 0, where
        assert s["duplicated"] == s["doubled"] == 0, where
        assert s["seq_gaps"] == 0, where
        assert s["heal_s"] is not None and s["heal_s"] <= 5.0, where
        assert s["final_s"] is not None, where
        assert 1.9 <= s["cut_s"] <= 4.0, where
        # Node b wrote on, and node a took its clients back after the heal.
        assert s["other_stall_s"] <= 5.0 and s["home_acks"] > 0, where
        assert s["redis_back_s"] is not None, where
        if not s["silence_expected"]:
            assert s["seen"]["silent"] == 0 and s["seen"]["longest_wait_s"] <= 5.0, where
        assert s["findings"] == [], where
    assert scenarios["postgres-mid-write"]["held_lock"] is True
    assert scenarios["lossy-postgres"]["impairment"]["dropped"] > 0
    # The printed table carries the same figures.
    for name, s in scenarios.items():
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        cells = row.split()
        assert cells[2:6] == [str(s["acked"]), "0", "0", "0"], row
        assert cells[-1] == "ok", row
    assert "all passed" in out
    # The lab is gone: its namespaces, PostgreSQL, Redis and the nodes.
    data = re.search(r"\(data in (\S+)\)", out)
    assert data, out[:2000]
    assert _left_over(_prefix(out), [data.group(1), str(workdir)]) == []
    assert not Path(data.group(1)).exists()
    print(f"\nthe small partitions run took {took:.0f} s")


@pytest.mark.timeout(120)
def test_sigterm_mid_run_removes_every_namespace_and_process(tmp_path: Path) -> None:
    _require_lab()
    workdir = tmp_path / "work"
    program = subprocess.Popen(
        [
            sys.executable, "-m", "chatd.proof.partitions", "--scenarios", "postgres",
            "--chats", "2", "--shops", "1", "--cut", "30", "--workdir", str(workdir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert program.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = program.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("-- postgres"):
            break
    out = "".join(lines)
    assert "-- postgres" in out, out
    time.sleep(1.0)  # into the scenario: clients writing, node a about to be cut
    # SIGUSR1 asks for every thread's stack, and the run goes on.
    program.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    program.send_signal(signal.SIGTERM)
    try:
        rest, _ = program.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _fail_with_the_stacks_of(program, out)
    out += rest
    assert program.returncode == 130, out[-3000:]
    assert "interrupted" in out
    assert "Current thread" in out and "in main" in out, out[-3000:]
    data = re.search(r"\(data in (\S+)\)", out)
    assert data, out
    assert _left_over(_prefix(out), [data.group(1), str(workdir)]) == []


def test_without_namespaces_it_says_so_and_runs_nothing(tmp_path: Path) -> None:
    """No `ip` on the PATH here: the program names what is missing and exits 2."""
    done = subprocess.run(
        [sys.executable, "-m", "chatd.proof.partitions", "--workdir", str(tmp_path / "w")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(tmp_path)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot make the network namespaces" in done.stdout
    assert "no `ip`" in done.stdout
    assert "nothing was run" in done.stdout
    assert not (tmp_path / "w").exists()
