"""Servers for `chatd bench`: a real `chatd serve`, or the floor relay, as a child process on
a free loopback port, pinned to its own CPUs, started fresh for each measurement."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chatd.loadtest.system import cpu_seconds, rss_bytes

READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """`kind` is `chatd` or `floor`; `sync` is chatd's SQLite synchronous mode."""

    kind: str
    sync: str = "full"

    @property
    def label(self) -> str:
        return f"chatd({self.sync})" if self.kind == "chatd" else "floor"

    def command(self, port: int, db: Path) -> list[str]:
        if self.kind == "floor":
            return [sys.executable, "-m", "chatd.loadtest.floor", "--port", str(port)]
        return [
            sys.executable,
            "-m",
            "chatd.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(db),
            "--queue",
            "100000",
            "--sync",
            self.sync,
            "--log-level",
            "warning",
            *lifted_limits(),
        ]


# Rate limits are for people, not for a load generator: each of these that this chatd has
# is lifted.
_LIMIT_FLAGS = ("--rate", "--burst", "--user-rate", "--user-burst")


@functools.cache
def lifted_limits() -> tuple[str, ...]:
    usage = subprocess.run(
        [sys.executable, "-m", "chatd.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    flags: list[str] = []
    for flag in _LIMIT_FLAGS:
        if flag + " " in usage or flag + "\n" in usage:
            flags += [flag, "1000000"]
    return tuple(flags)


@dataclass
class Server:
    spec: ServerSpec
    workdir: Path
    secret: str
    cpus: set[int] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.spec.label}.{self.port}.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        db = self.workdir / f"{self.spec.label}.{self.port}.db"
        env = {**os.environ, "CHATD_SECRET": self.secret}
        cpus = self.cpus

        def pin_child() -> None:
            # Before exec: every thread the server starts (aiosqlite's too) inherits it.
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.spec.command(self.port, db),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pin_child,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.spec.label} exited: {tail}")
            try:
                if httpx.get(self.http + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec.label} did not become ready")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
