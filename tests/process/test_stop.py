"""A normal stop looks normal: `chatd serve` exits 0 after its orderly shutdown on SIGINT or
SIGTERM, and `make run` prints no error when it is stopped. Real processes throughout: the
behaviour is that of processes and their signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatd.launcher import free_port

ROOT = Path(__file__).resolve().parents[2]
# The prerequisites of `make run`'s install step, copied so that it has nothing to do.
MAKE_INPUTS = ("Makefile", "pyproject.toml", "constraints.txt", "constraints-dev.txt")


def wait_ready(port: int, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}: {process.communicate()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("not ready")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    return {**env, **extra}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_chatd_serve_exits_0_after_an_orderly_stop(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chatd", "serve", "--port", str(port), "--db", "x.db"],
        cwd=tmp_path,
        env=clean_env(CHATD_SECRET="stop-tests-" + "x" * 32),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(port, server)
        server.send_signal(sig)
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()

    assert server.returncode == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert "Application shutdown complete" in out


@pytest.fixture
def make_dir(tmp_path: Path) -> Path:
    """The real Makefile in a directory of its own, with a venv whose chatd is this one's and
    whose install step is up to date (so `make run` only runs chatd)."""
    for name in MAKE_INPUTS:
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "chatd").symlink_to(Path(sys.executable).parent / "chatd")
    installed = tmp_path / ".venv" / ".installed"
    installed.touch()
    later = time.time() + 60
    os.utime(installed, (later, later))
    return tmp_path


# Who gets the signal: Ctrl-C in a terminal reaches every process of the foreground group;
# `kill` on make reaches make, which passes SIGTERM on to its child; a supervisor may signal
# chatd alone. make ends by a signal it received itself (it re-raises it: GNU make's way),
# silently; when only chatd was signalled, make ends with chatd's 0.
STOPS = [
    ("ctrl-c", signal.SIGINT, "group", -signal.SIGINT),
    ("sigterm-group", signal.SIGTERM, "group", -signal.SIGTERM),
    ("kill-make", signal.SIGTERM, "make", -signal.SIGTERM),
    ("sigterm-chatd", signal.SIGTERM, "chatd", 0),
    ("sigint-chatd", signal.SIGINT, "chatd", 0),
]


@pytest.mark.parametrize(
    ("sig", "target", "status"), [s[1:] for s in STOPS], ids=[s[0] for s in STOPS]
)
def test_stopping_make_run_prints_no_error(
    make_dir: Path, sig: signal.Signals, target: str, status: int
) -> None:
    port = free_port()
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=make_dir,
        env=clean_env(CHATD_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job has
    )
    try:
        wait_ready(port, make)
        [chatd] = children(make.pid)  # the recipe's shell exec'd chatd
        if target == "group":
            os.killpg(make.pid, sig)
        elif target == "make":
            os.kill(make.pid, sig)
        else:
            os.kill(chatd, sig)
        out, _ = make.communicate(timeout=30)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()

    assert "make: ***" not in out, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "Application shutdown complete" in out, out
    assert make.returncode == status, out
