"""`chatd bench`: chatd and the floor, measured in one run on the same machine.

For each server (chatd with `--sync full`, with `--sync normal`, and the floor), each on a
fresh process pinned to the server CPUs while the load generator runs on the others:

1. memory per idle connection: resident memory over N authenticated idle sockets;
2. N chats of one buyer and one operator, both connected: the sustained delivered rate
   (closed loop), then p50/p99 latency at fixed offered loads (open loop);
3. chatd only: catch-up of a reconnect after M missed events (`hello.since` to `synced`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chatd.launcher import Server
from chatd.loadtest.catchup import CatchUpResult, measure_catch_up
from chatd.loadtest.fleet import Fleet, LoadResult
from chatd.loadtest.idle import IdleResult, measure_idle
from chatd.loadtest.servers import ServerSpec
from chatd.loadtest.system import cpu_count, pin, raise_open_files

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    chats: int = 1000
    idle: int = 10_000
    missed: int = 10_000
    loads: tuple[float, ...] = (1000.0, 2500.0, 5000.0)
    warmup: float = 3.0
    duration: float = 10.0
    window: int = 2  # messages in flight per socket in the closed loop
    settle: float = 2.0  # seconds of quiet before reading the server's memory
    syncs: tuple[str, ...] = ("full", "normal")
    floor: bool = True
    server_cpus: set[int] | None = field(default_factory=lambda: {0})
    client_cpus: set[int] | None = field(default_factory=lambda: {1})
    workdir: Path | None = None


QUICK = BenchConfig(
    chats=50,
    idle=200,
    missed=1000,
    loads=(200.0, 500.0),
    warmup=0.3,
    duration=1.0,
    settle=0.5,
    syncs=("full",),
)


@dataclass
class ServerFigures:
    label: str
    sustained: LoadResult | None = None
    loads: list[LoadResult] = field(default_factory=list)
    idle: IdleResult | None = None
    catch_up: CatchUpResult | None = None
    errors: list[str] = field(default_factory=list)


def _specs(config: BenchConfig) -> list[ServerSpec]:
    specs = [ServerSpec("chatd", sync) for sync in config.syncs]
    if config.floor:
        specs.append(ServerSpec("floor"))
    return specs


async def _measure_load(
    server: Server, config: BenchConfig, figures: ServerFigures, say: Say
) -> None:
    fleet = Fleet(server.url, server.secret, f"bench-{secrets.token_hex(3)}", server.cpu)
    say(f"{figures.label}: {config.chats} chats, {2 * config.chats} sockets")
    await fleet.open_chats(config.chats)
    try:
        say(f"{figures.label}: sustained rate (closed loop, {config.duration:g} s)")
        figures.sustained = await fleet.closed_loop(config.window, config.warmup, config.duration)
        say(f"{figures.label}:   {figures.sustained.delivered_per_s:,.0f} delivered/s")
        for rate in config.loads:
            say(f"{figures.label}: open loop at {rate:,.0f} msg/s ({config.duration:g} s)")
            result = await fleet.open_loop(rate, config.warmup, config.duration)
            figures.loads.append(result)
            say(f"{figures.label}:   p99 {result.latency['p99']} ms, missing {result.missing}")
    finally:
        await fleet.close()


async def _measure_server(
    spec: ServerSpec, config: BenchConfig, secret: str, workdir: Path, say: Say
) -> ServerFigures:
    figures = ServerFigures(spec.label)
    if config.idle:
        with spec.server(workdir, secret, config.server_cpus) as server:
            say(f"{spec.label}: {config.idle} idle connections")
            figures.idle = await measure_idle(
                server.url, secret, config.idle, server.rss, settle=config.settle
            )
    with spec.server(workdir, secret, config.server_cpus) as server:
        await _measure_load(server, config, figures, say)
        if spec.kind == "chatd" and config.missed:
            say(f"{spec.label}: catch-up after {config.missed} missed events")
            figures.catch_up = await measure_catch_up(
                server.url, secret, f"cu-{secrets.token_hex(3)}", config.missed
            )
    return figures


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that the servers this run started are stopped too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run_bench(config: BenchConfig, say: Say) -> list[ServerFigures]:
    _stop_on_sigterm()
    available = cpu_count()
    if available < 2:
        say("one CPU only: the server and the load generator share it (no pinning)")
        config = dataclasses.replace(config, server_cpus=None, client_cpus=None)
    pin(config.client_cpus)
    raise_open_files()
    secret = "bench-" + secrets.token_urlsafe(32)
    results: list[ServerFigures] = []
    with tempfile.TemporaryDirectory(prefix="chatd-bench-") as scratch:
        workdir = config.workdir or Path(scratch)
        for spec in _specs(config):
            try:
                results.append(asyncio.run(_measure_server(spec, config, secret, workdir, say)))
            except (OSError, RuntimeError, TimeoutError, ConnectionError) as exc:
                say(f"{spec.label}: failed: {type(exc).__name__}: {exc}")
                results.append(ServerFigures(spec.label, errors=[f"{type(exc).__name__}: {exc}"]))
    return results
