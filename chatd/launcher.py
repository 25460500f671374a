"""A server as a child process on a free loopback port, ready once `GET /healthz` answers 200:
`chatd serve` for the end-to-end tests, the proof programs and `chatd bench`, which also
starts its floor relay through it.

Imports the standard library and httpx only, never the server: the child is
`python -m chatd serve`, started as an operator would start it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT = 30.0
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def disk_written_bytes(pid: int) -> int:
    """What a process has had written to storage so far (`write_bytes` of /proc/PID/io): for
    a server, its WAL, the checkpoints' copies into the database file, its files."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of stat; the slice starts at field 3.
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Server:
    """`chatd serve --db DB` with CHATD_SECRET set, `extra_args` after chatd's own (a later
    option wins), optionally pinned to `cpus`. Its output goes to `log` (default: beside the
    database, one file per port, so a restart on another port logs apart)."""

    db: Path
    secret: str
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    cpus: set[int] | None = None
    log: Path | None = None
    name: str = "chatd"

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
        return self.log if self.log is not None else self.db.with_suffix(f".{self.port}.log")

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "chatd", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--db", str(self.db), "--log-level", "warning",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = READY_TIMEOUT) -> float:
        """Starts the server; the seconds until `/healthz` answered 200. RuntimeError, with
        the end of its log, when it exits first or is not ready within `timeout`."""
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CHATD_SECRET": self.secret}
        cpus = self.cpus

        def pin_child() -> None:
            # Before exec: every thread the server starts inherits it.
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pin_child if cpus else None,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {tail}")
            try:
                if httpx.get(self.http + "/healthz", timeout=0.5).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def disk_written(self) -> int:
        return disk_written_bytes(self.pid)

    def kill(self) -> None:
        """kill -9: no flushing, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> int:
        """SIGTERM, and the exit status once the server has shut down."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def stop(self) -> None:
        """SIGTERM, and kill -9 if it has not exited within 15 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
