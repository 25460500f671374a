"""A long steady load on one fresh server: does anything grow that should not?

    python -m chatd.proof.soak [--minutes 10] [--minute-seconds 60] [--chats 1000]
        [--rate MSG_PER_S | --load-share 0.7] [--sync full|normal] [--workdir DIR] [--json FILE]

Some faults take minutes to show and none of them shows in a ten-second bench: a WAL that
grows without end (SQLite starts the WAL file over only when a checkpoint has copied all of
it and no reader still needs it, and under commits that never stop the background checkpoint
may never get there), memory that creeps up (something kept per message or per chat), and a
latency that creeps up with it (a longer WAL to search, a bigger database, a larger heap for
the garbage collector). So the program starts `chatd serve` on a new SQLite database (pinned
to CPU 0, rate limits lifted, like `chatd bench`; the load generator runs on CPU 1), opens
`--chats` chats of one buyer and one operator, and offers messages open-loop at a fixed rate
for `--minutes` periods of `--minute-seconds` seconds each, on one schedule that never pauses:
a pause between periods would let a server that fell behind catch up, and its checkpoint
reach the WAL's end, in exactly the quiet moment a soak must not give it. Without `--rate`, a
closed loop of 10 s first measures what this server delivers at most, and the soak offers
`--load-share` of that (70%): below capacity, so that a queue has no reason to grow, and a
latency that grows anyway is the server's doing.

Each period prints one line: the messages due in it, how many reached the other side, the
p50 and p99 latency (from a message's due time to its arrival, so a late server cannot hide
it), the `-wal` file's and the database file's sizes, the server's resident memory and the
share of its CPU it used, what it wrote to the disk per message, and its own worst pauses
of the period from its /metrics (chatd.proof.server_pauses): how late its event loop ran,
its longest garbage-collector pass and its longest group commit, each as the bound of the
histogram bucket reached. A p99 that jumps with the loop's lateness was the whole process
held up; one that jumps with the commits was the writer (the disk, most often); one that
jumps with neither was the load itself. The sizes and memory are read when the period's
last messages arrived; the WAL is also read every second, for its largest size. At the end,
verdicts:

- the WAL was never above 64 MiB;
- RSS and p99 are flat: every period from the second on within 10% (either way) of the
  second period's value (the first includes the start: caches and the heap fill up then);
- every message was delivered (a message that arrives more than 5 s late is counted missing
  in its period's line, and counted again at the end).

The exit status is 1 when a verdict fails, 2 when the run itself failed. The figures depend on
what else the machine does: on a shared machine latency varies by more than 10% from minute to
minute whatever the server does, so run it on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from chatd.arg_types import positive_float_arg, positive_int_arg
from chatd.launcher import Server
from chatd.loadtest.fleet import Fleet, LoadResult
from chatd.loadtest.servers import ServerSpec
from chatd.loadtest.system import pin, raise_open_files
from chatd.proof.server_pauses import PauseWatch, shown, stopped

MIB = 1024 * 1024
WAL_LIMIT = 64 * MIB
FLAT = 0.10  # largest change from the second period's value, either way
CAPACITY_WARMUP = 2.0
CAPACITY_SECONDS = 10.0
CAPACITY_WINDOW = 2  # messages in flight per socket in the closed loop, as `chatd bench`
WAL_EVERY = 1.0  # seconds between readings of the WAL's size


@dataclass(frozen=True, slots=True)
class SoakConfig:
    minutes: int = 10
    minute_seconds: float = 60.0
    chats: int = 1000
    rate: float | None = None  # None: `load_share` of the closed loop's delivered rate
    load_share: float = 0.7
    sync: str = "full"
    workdir: Path | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """One reporting period's figures; sizes in bytes, CPU as a share of one core."""

    period: int  # from 1
    elapsed_s: float  # since the load began, at the period's end
    sent: int
    delivered: int
    undelivered: int
    p50_ms: float
    p99_ms: float
    wal_bytes: int
    wal_max_bytes: int  # the largest of the readings during the period
    db_bytes: int
    rss_bytes: int
    disk_bytes: int  # what the server had written to storage in the period
    server_cpu: float
    client_cpu: float
    errors: dict[str, int]
    # The server's worst pauses of the period, from its /metrics (chatd.proof.server_pauses):
    # the bucket bound in ms, 0.0 for none, None past the histogram's last bound.
    loop_lag_ms: float | None = 0.0
    gc_ms: float | None = 0.0
    commit_ms: float | None = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    ok: bool
    detail: str


@dataclass
class SoakReport:
    config: SoakConfig
    server: str
    db: str
    server_cpus: list[int] | None
    client_cpus: list[int] | None
    capacity_per_s: float | None
    rate_per_s: float
    periods: list[Period] = field(default_factory=list)
    sent: int = 0
    delivered: int = 0  # at the end, late deliveries included
    undelivered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    wal_max_bytes: int = 0
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def as_json(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["workdir"] = None if self.config.workdir is None else str(self.config.workdir)
        return {
            "program": "chatd.proof.soak",
            "config": config,
            "server": self.server,
            "db": self.db,
            "server_cpus": self.server_cpus,
            "client_cpus": self.client_cpus,
            "capacity_per_s": self.capacity_per_s,
            "rate_per_s": self.rate_per_s,
            "periods": [asdict(p) for p in self.periods],
            "final": {
                "sent": self.sent,
                "delivered": self.delivered,
                "undelivered": self.undelivered,
                "errors": self.errors,
            },
            "wal_max_bytes": self.wal_max_bytes,
            "verdicts": [asdict(v) for v in self.verdicts],
            "ok": self.ok,
        }


def file_size(path: Path) -> int:
    """A file's size, 0 when it does not exist (no WAL between a checkpoint's restart and
    the next write, or after the server closed the database)."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


class WalWatch:
    """Reads the WAL's size every WAL_EVERY seconds: the largest since the last `take`, and
    over the whole run."""

    def __init__(self, db: Path) -> None:
        self.wal = Path(str(db) + "-wal")
        self.period_max = 0
        self.run_max = 0

    def read(self) -> int:
        size = file_size(self.wal)
        self.period_max = max(self.period_max, size)
        self.run_max = max(self.run_max, size)
        return size

    def take(self) -> tuple[int, int]:
        """The size now and the largest since the last call."""
        size = self.read()
        largest, self.period_max = self.period_max, 0
        return size, largest

    async def run(self) -> None:
        while True:
            self.read()
            await asyncio.sleep(WAL_EVERY)


# ---- output -----------------------------------------------------------------------------------

HEADER = (
    f"{'period':>6} {'elapsed':>8} {'sent':>9} {'delivered':>9} {'undelivered':>11}"
    f" {'p50 ms':>8} {'p99 ms':>8} {'WAL MiB':>8} {'DB MiB':>8} {'RSS MiB':>8} {'CPU':>5}"
    f" {'disk KiB/msg':>12} {'lag≤ms':>7} {'gc≤ms':>6} {'commit≤ms':>10}"
)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def period_line(p: Period) -> str:
    return (
        f"{p.period:>6} {_clock(p.elapsed_s):>8} {p.sent:>9} {p.delivered:>9}"
        f" {p.undelivered:>11} {p.p50_ms:>8.1f} {p.p99_ms:>8.1f} {p.wal_bytes / MIB:>8.2f}"
        f" {p.db_bytes / MIB:>8.2f} {p.rss_bytes / MIB:>8.1f} {100 * p.server_cpu:>4.0f}%"
        f" {p.disk_bytes / 1024 / max(p.sent, 1):>12.1f} {shown(p.loop_lag_ms):>7}"
        f" {shown(p.gc_ms):>6} {shown(p.commit_ms):>10}"
    )


def flat(name: str, values: list[float], unit: str) -> Verdict:
    """Every value from the second on within FLAT of the second one."""
    if len(values) < 3:
        return Verdict(name, True, "not judged: no period after the second to compare")
    base = values[1]
    broke: list[str] = []
    for number, value in enumerate(values[2:], start=3):
        change = value / base - 1 if base else (0.0 if value == base else float("inf"))
        if abs(change) > FLAT:
            broke.append(f"{number} ({value:.1f} {unit}, {100 * change:+.0f}%)")
    against = f"against period 2's {base:.1f} {unit}"
    if broke:
        return Verdict(name, False, f"{against}, off by more than 10%: " + ", ".join(broke))
    span = "period 3" if len(values) == 3 else f"periods 3 to {len(values)}"
    return Verdict(name, True, f"{span} within 10% {against}")


def judge(report: SoakReport) -> list[Verdict]:
    wal = report.wal_max_bytes
    largest = max(report.periods, key=lambda p: p.wal_max_bytes, default=None)
    where = f" (period {largest.period})" if largest is not None else ""
    return [
        Verdict(
            "WAL never above 64 MiB",
            wal <= WAL_LIMIT,
            f"largest {wal / MIB:.2f} MiB{where}, read every {WAL_EVERY:g} s",
        ),
        flat("RSS flat", [p.rss_bytes / MIB for p in report.periods], "MiB"),
        flat("p99 flat", [p.p99_ms for p in report.periods], "ms"),
        Verdict(
            "everything delivered",
            report.undelivered == 0 and report.sent > 0,
            f"{report.delivered} of {report.sent}, {report.undelivered} undelivered at the end",
        ),
    ]


def summary(report: SoakReport) -> str:
    lines = [
        "",
        "summary",
        f"  sent / delivered / undelivered      {report.sent} / {report.delivered} /"
        f" {report.undelivered}",
        f"  errors                              {report.errors or 'none'}",
    ]
    if report.periods:
        client = max(p.client_cpu for p in report.periods)
        lines.append(f"  load generator CPU, busiest period  {100 * client:.0f}% of its core")
        if client > 0.9:
            lines.append(
                "  note: the load generator was near its limit; its own delays are in the latency"
            )
        if max(p.p50_ms for p in report.periods) > 1000:
            lines.append(
                "  note: a p50 of seconds means the server did not keep up with the offered rate"
                " (a busy machine, or the rate above its capacity): latency then grows with the"
                " backlog, and the sizes and memory were read when a period's messages arrived,"
                " late"
            )
    for verdict in report.verdicts:
        mark = "PASS" if verdict.ok else "FAIL"
        lines.append(f"  {verdict.name:<34}  {mark}  {verdict.detail}")
    lines.append(f"  verdict                             {'PASS' if report.ok else 'FAIL'}")
    return "\n".join(lines)


def say(text: str) -> None:
    print(f"soak: {text}", file=sys.stderr, flush=True)


# ---- the run ----------------------------------------------------------------------------------


class DiskMeter:
    """What the server has written to storage since the last `take`."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._last = server.disk_written()

    def take(self) -> int:
        now = self._server.disk_written()
        written, self._last = now - self._last, now
        return written


def _period(
    k: int,
    result: LoadResult,
    config: SoakConfig,
    server: Server,
    db: Path,
    watch: WalWatch,
    disk: DiskMeter,
    pauses: PauseWatch,
) -> Period:
    wal, wal_max = watch.take()
    worst = pauses.take()
    return Period(
        period=k + 1,
        elapsed_s=(k + 1) * config.minute_seconds,
        sent=result.sent,
        delivered=result.delivered,
        undelivered=result.missing,
        p50_ms=float(result.latency["p50"]),
        p99_ms=float(result.latency["p99"]),
        wal_bytes=wal,
        wal_max_bytes=wal_max,
        db_bytes=file_size(db),
        rss_bytes=server.rss(),
        disk_bytes=disk.take(),
        server_cpu=result.server_cpu,
        client_cpu=result.client_cpu,
        errors=result.errors,
        loop_lag_ms=worst.loop_lag_ms,
        gc_ms=worst.gc_ms,
        commit_ms=worst.commit_ms,
    )


async def _soak(config: SoakConfig, server: Server, db: Path, report: SoakReport) -> None:
    fleet = Fleet(server.url, server.secret, f"soak-{secrets.token_hex(3)}", server.cpu)
    say(f"opening {config.chats} chats ({2 * config.chats} sockets)")
    await fleet.open_chats(config.chats)
    watch = WalWatch(db)
    pauses = PauseWatch(server.http, config.minute_seconds)
    sampler: asyncio.Task[None] | None = None
    scraper: asyncio.Task[None] | None = None
    try:
        if config.rate is None:
            say(f"capacity: closed loop for {CAPACITY_SECONDS:g} s")
            capacity = await fleet.closed_loop(CAPACITY_WINDOW, CAPACITY_WARMUP, CAPACITY_SECONDS)
            if capacity.delivered_per_s <= 0:
                raise RuntimeError(f"the closed loop delivered nothing: {capacity.errors}")
            report.capacity_per_s = capacity.delivered_per_s
            report.rate_per_s = config.load_share * capacity.delivered_per_s
        offered = (
            f"{report.rate_per_s:.0f} msg/s offered"
            if report.capacity_per_s is None
            else f"{report.rate_per_s:.0f} msg/s offered ({100 * config.load_share:.0f}% of"
            f" {report.capacity_per_s:.0f} delivered in a closed loop)"
        )
        where = (
            f"server on CPU {report.server_cpus}, load on CPU {report.client_cpus}"
            if report.server_cpus
            else "server and load unpinned (one CPU)"
        )
        print(
            f"chatd soak: {report.server}, {config.chats} chats, {offered},"
            f" {config.minutes} periods of {config.minute_seconds:g} s, {where}",
            flush=True,
        )
        print(HEADER, flush=True)
        disk = DiskMeter(server)

        def on_period(k: int, result: LoadResult) -> None:
            figures = _period(k, result, config, server, db, watch, disk, pauses)
            report.periods.append(figures)
            print(period_line(figures), flush=True)

        sampler = asyncio.create_task(watch.run())
        scraper = asyncio.create_task(pauses.run())
        final = await fleet.open_loop_periods(
            report.rate_per_s, config.minute_seconds, config.minutes, on_period
        )
        watch.read()
        report.wal_max_bytes = watch.run_max
        report.sent = sum(r.sent for r in final)
        report.delivered = sum(r.delivered for r in final)
        report.undelivered = sum(r.missing for r in final)
        errors: Counter[str] = Counter()
        for r in final:
            errors.update(r.errors)
        report.errors = dict(errors)
    finally:
        if sampler is not None:
            sampler.cancel()
        await stopped(scraper)
        await fleet.close()


def run(config: SoakConfig) -> SoakReport:
    available = sorted(os.sched_getaffinity(0))
    server_cpus, client_cpus = (
        ({available[0]}, {available[1]}) if len(available) >= 2 else (None, None)
    )
    pin(client_cpus)
    raise_open_files()  # before the server starts: it inherits the limit
    spec = ServerSpec("chatd", config.sync)
    secret = "soak-" + secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="chatd-soak-") as scratch:
        workdir = config.workdir or Path(scratch)
        say(f"starting {spec.label} in {workdir}")
        with spec.server(workdir, secret, server_cpus) as server:
            db = server.db
            report = SoakReport(
                config=config,
                server=spec.label,
                db=str(db),
                server_cpus=sorted(server_cpus) if server_cpus else None,
                client_cpus=sorted(client_cpus) if client_cpus else None,
                capacity_per_s=None,
                rate_per_s=config.rate or 0.0,
            )
            started = time.monotonic()
            asyncio.run(_soak(config, server, db, report))
            say(f"done in {time.monotonic() - started:.0f} s; stopping the server")
    report.verdicts = judge(report)
    return report


class Outcome(Protocol):
    """What a steady-load program's run reports: its verdicts' sum, and its figures."""

    @property
    def ok(self) -> bool: ...

    def as_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Outcome)


def load_parser(prog: str, description: str | None, minutes: int) -> argparse.ArgumentParser:
    """The options of a program that holds a steady load on one server (this one, and
    `chatd.proof.long_run`): its periods, chats, rate or share of capacity, and where it
    keeps what it made."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=positive_int_arg, default=minutes, help="periods to run")
    parser.add_argument(
        "--minute-seconds", type=positive_float_arg, default=60.0, help="seconds of one period"
    )
    parser.add_argument("--chats", type=positive_int_arg, default=1000)
    parser.add_argument(
        "--rate",
        type=positive_float_arg,
        default=None,
        help="messages a second offered (default: --load-share of a closed loop's rate)",
    )
    parser.add_argument("--load-share", type=positive_float_arg, default=0.7)
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the database and log")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    return parser


def load_config(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of a run's config (`SoakConfig`, `LongRunConfig`) from `load_parser`'s."""
    return {
        "minutes": args.minutes,
        "minute_seconds": args.minute_seconds,
        "chats": args.chats,
        "rate": args.rate,
        "load_share": args.load_share,
        "sync": args.sync,
        "workdir": args.workdir,
    }


def run_program(run_it: Callable[[], R], summarise: Callable[[R], str], out: Path | None) -> int:
    """Runs a steady-load program to its exit status: 0 when every verdict holds, 1 when
    one fails, 2 when the run itself failed. SIGTERM ends it as Ctrl-C does, so that the
    server it started is stopped too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    affinity = os.sched_getaffinity(0)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        report = run_it()
    except (OSError, RuntimeError, TimeoutError, ConnectionError) as exc:
        say(f"failed: {type(exc).__name__}: {exc}")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.sched_setaffinity(0, affinity)
    print(summarise(report), flush=True)
    if out is not None:
        out.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = load_parser("python -m chatd.proof.soak", __doc__, minutes=10).parse_args(argv)
    config = SoakConfig(**load_config(args))
    return run_program(lambda: run(config), summary, args.json)


if __name__ == "__main__":
    sys.exit(main())
