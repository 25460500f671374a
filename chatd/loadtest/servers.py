"""Servers for `chatd bench`: a real `chatd serve`, or the floor relay, started fresh for each
measurement by `chatd.launcher` on a free loopback port, pinned to their own CPUs."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chatd.launcher import Server, free_port


class Floor(Server):
    """The floor relay (`python -m chatd.loadtest.floor`); it keeps nothing, so `db` is only
    where chatd's database would be."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "chatd.loadtest.floor", "--port", str(self.port)]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """`kind` is `chatd` or `floor`; `sync` is chatd's SQLite synchronous mode."""

    kind: str
    sync: str = "full"

    @property
    def label(self) -> str:
        return f"chatd({self.sync})" if self.kind == "chatd" else "floor"

    def server(self, workdir: Path, secret: str, cpus: set[int] | None = None) -> Server:
        """A new server (not started) whose database and log in `workdir` are named by the
        label and the port."""
        port = free_port()
        db, log = workdir / f"{self.label}.{port}.db", workdir / f"{self.label}.{port}.log"
        if self.kind == "floor":
            return Floor(db, secret, port=port, cpus=cpus, log=log, name=self.label)
        args = ("--queue", "100000", "--sync", self.sync, *lifted_limits())
        return Server(db, secret, args, port=port, cpus=cpus, log=log, name=self.label)


# Rate limits are for people, not for a load generator: each of these that this chatd has
# is lifted.
_LIMIT_FLAGS = ("--rate", "--burst", "--user-rate", "--user-burst")


@functools.cache
def lifted_limits() -> tuple[str, ...]:
    usage = subprocess.run(
        [sys.executable, "-m", "chatd", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    flags: list[str] = []
    for flag in _LIMIT_FLAGS:
        if flag + " " in usage or flag + "\n" in usage:
            flags += [flag, "1000000"]
    return tuple(flags)
