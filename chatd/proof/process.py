"""A `chatd serve` child process on a free loopback port, for the proof programs and the
end-to-end tests."""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    db: Path
    secret: str
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        # Per port: a server restarted on the same database on another port logs apart.
        return self.db.with_suffix(f".{self.port}.log")

    def start(self, timeout: float = 30.0) -> float:
        """Starts the server; the seconds until `/healthz` answered 200."""
        started = time.monotonic()
        env = {**os.environ, "CHATD_SECRET": self.secret}
        command = [
            sys.executable, "-m", "chatd.cli", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--db", str(self.db), "--log-level", "warning",
            *self.extra_args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chatd exited with {self.process.returncode}: {tail}")
            try:
                if httpx.get(self.http + "/healthz", timeout=0.5).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError("chatd did not become ready")

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
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid
