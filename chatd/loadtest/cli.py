"""The load commands of `chatd`: `gen-log`, `replay` and `bench`.

`add_parsers(subparsers)` adds them to the `chatd` parser; each sets `handler`, which takes
the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from chatd.arg_types import (
    checked_by,
    positive_float_arg,
    positive_int_arg,
    share_arg,
    timezone_arg,
)
from chatd.extras import missing_extra
from chatd.loadtest.system import parse_cpus
from chatd.progress import Progress
from protocol.logfile import LogRecord, write_log

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        return positive_float_arg(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"the speed is a positive factor or `max`, not {text!r}"
        ) from None


# A bad value of a load tool's option is refused where it is parsed, with one line naming it.
_positive = positive_int_arg
_share = share_arg
_cpus = checked_by(parse_cpus, "a CPU list such as 0, 1,3 or 2-5")


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def add_parsers(subparsers: Subparsers) -> None:
    _add_gen_log(subparsers)
    _add_replay(subparsers)
    _add_bench(subparsers)


# ---- gen-log ---------------------------------------------------------------------------------


def _add_gen_log(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "gen-log",
        help="make a synthetic message log",
        description="Make a realistic log of any size: shops with operators, buyers, Russian "
        "messages of realistic lengths, orders, and a share of returns through every path. "
        "The same seed gives the same log.",
    )
    parser.add_argument("--out", "-o", default="-", help="output file, - for standard output")
    parser.add_argument("--events", type=_positive, default=10_000, help="(default: %(default)s)")
    parser.add_argument("--shops", type=_positive, default=50, help="(default: %(default)s)")
    parser.add_argument("--buyers", type=_positive, default=500, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument(
        "--span",
        type=float,
        default=3600.0,
        help="seconds of log time the events spread over (default: %(default)s)",
    )
    parser.add_argument(
        "--returns",
        type=_share,
        default=0.15,
        help="share of the chats with an order that go through a return (default: %(default)s)",
    )
    parser.add_argument(
        "--start",
        type=_moment,
        default=None,
        help="the log's first moment, ISO 8601 with a zone (default: 2025-03-03T06:00:00Z)",
    )
    parser.add_argument("--marketplace-name", default="Wildberries")
    parser.add_argument("--timezone", type=timezone_arg, default="Europe/Moscow")
    parser.set_defaults(handler=run_gen_log)


def run_gen_log(args: argparse.Namespace) -> int:
    from chatd.loadtest.genlog import GenSpec, generate

    spec = GenSpec(
        shops=args.shops,
        buyers=args.buyers,
        events=args.events,
        seed=args.seed,
        span=args.span,
        returns=args.returns,
        marketplace=args.marketplace_name,
        timezone=args.timezone,
    )
    if args.start is not None:
        if args.start.tzinfo is None:
            print("chatd gen-log: --start needs a time zone (…Z or +03:00)", file=sys.stderr)
            return 2
        spec = dataclasses.replace(spec, start=args.start)
    try:
        with Progress("generating", spec.events) as made:
            records = generate(spec, made.advance)
    except ValueError as exc:
        print(f"chatd gen-log: {exc}", file=sys.stderr)
        return 2
    with Progress("writing", len(records)) as written:
        count = write_log(args.out, _counted(records, written))
    if args.out != "-":
        print(f"{count} events written to {args.out}", file=sys.stderr)
    return 0


def _counted(records: list[LogRecord], progress: Progress) -> Iterator[LogRecord]:
    for record in records:
        yield record
        progress.advance()


# ---- replay ----------------------------------------------------------------------------------


def _add_replay(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a message log against a server",
        description="Replay the conversations of a log over real sockets, one per actor, on "
        "an open-loop schedule, then check every participant's events against the log. "
        "Writes a JSON report and an HTML chart of latency over time. Mints the actors' "
        "tokens with CHATD_SECRET (the server's secret). Exit code 1 when anything was "
        "refused, lost or doubled.",
    )
    parser.add_argument("log", help="the log (JSON Lines), - for standard input")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws", help="(default: %(default)s)")
    parser.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="X|max",
        help="X: the log's pace times X; max: each chat's next command as soon as the one "
        "before is answered (default: max)",
    )
    parser.add_argument(
        "--connections",
        type=_positive,
        default=1,
        metavar="N",
        help="sockets per actor, like tabs or devices: each gets every event its user may "
        "see, and each is checked (default: %(default)s)",
    )
    parser.add_argument(
        "--processes",
        type=_positive,
        default=1,
        help="client processes, each with whole shops (default: %(default)s)",
    )
    parser.add_argument(
        "--cpus", type=_cpus, help="pin the client processes to these CPUs (e.g. 1 or 2-3)"
    )
    parser.add_argument("--report", default="replay-report.json", help="(default: %(default)s)")
    parser.add_argument("--chart", default="replay-chart.html", help="(default: %(default)s)")
    parser.add_argument(
        "--subprotocol", choices=("chatd.v1.json", "chatd.v1.msgpack"), default="chatd.v1.json"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for one answer"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds without a delivery before the missing ones count as lost",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-check", action="store_true", help="replay a log that fails validation anyway"
    )
    parser.set_defaults(handler=run_replay_command)


def run_replay_command(args: argparse.Namespace) -> int:
    missing = missing_extra("loadtest")
    if missing is not None:
        print(f"chatd replay: {missing}", file=sys.stderr)
        return 2
    from chatd.loadtest.replay import ReplaySettings
    from chatd.loadtest.report import summary_rows
    from chatd.loadtest.runner import ReplayError, ReplayOptions, run_replay

    secret = os.environ.get("CHATD_SECRET")
    if not secret:
        print("chatd replay: set CHATD_SECRET to the server's secret", file=sys.stderr)
        return 2
    # One line per HTTP request would drown the progress bar.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = ReplayOptions(
        log=args.log,
        settings=ReplaySettings(
            url=args.url,
            secret=secret,
            speed=args.speed,
            connections=args.connections,
            subprotocol=args.subprotocol,
            timeout=args.timeout,
            settle=args.settle,
        ),
        processes=args.processes,
        cpus=parse_cpus(args.cpus),
        report=args.report,
        chart=args.chart,
        progress=not args.no_progress,
        check=not args.no_check,
    )
    try:
        run = run_replay(options)
    except ReplayError as exc:
        print(f"chatd replay: {exc}", file=sys.stderr)
        return 2
    for name, value in summary_rows(run):
        print(f"{name:30} {value}")
    print(f"{'report':30} {args.report}")
    print(f"{'chart':30} {args.chart}")
    return 0 if run.ok else 1


# ---- bench -----------------------------------------------------------------------------------


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None


def _syncs(text: str) -> tuple[str, ...]:
    modes = tuple(part.strip() for part in text.split(",") if part.strip())
    if any(mode not in ("full", "normal") for mode in modes):
        raise argparse.ArgumentTypeError("sync modes are full and normal")
    return modes


def _add_bench(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure chatd against a minimal relay on this machine",
        description="Start chatd (with --sync full and normal) and the floor, a minimal "
        "starlette/uvicorn relay of the same frames with no log and no rules, each pinned "
        "to the server CPUs with the load generator on the others, and print side by side: "
        "the sustained delivered rate, p50/p99 latency at fixed offered loads, memory per "
        "idle connection and the catch-up time of a reconnect, with the ratios to the floor.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--chats", type=_positive, help="chats of one buyer and one operator")
    parser.add_argument("--idle", type=int, help="idle connections for the memory figure")
    parser.add_argument("--missed", type=int, help="missed events for the catch-up figure")
    parser.add_argument("--loads", type=_numbers, help="offered loads, msg/s (e.g. 1000,5000)")
    parser.add_argument("--warmup", type=float, help="seconds before each measured window")
    parser.add_argument("--duration", type=float, help="seconds of each measured window")
    parser.add_argument("--window", type=_positive, help="messages in flight per socket")
    parser.add_argument("--sync", type=_syncs, help="chatd's SQLite modes (default: full,normal)")
    parser.add_argument("--no-floor", action="store_true", help="measure chatd only")
    parser.add_argument("--server-cpus", type=_cpus, default="0", help="(default: %(default)s)")
    parser.add_argument("--client-cpus", type=_cpus, default="1", help="(default: %(default)s)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workdir", help="keep the databases and server logs here")
    parser.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    missing = missing_extra("loadtest")
    if missing is not None:
        print(f"chatd bench: {missing}", file=sys.stderr)
        return 2
    import json
    from pathlib import Path

    from chatd.loadtest.bench import QUICK, BenchConfig, run_bench
    from chatd.loadtest.benchtable import as_json, render

    config = QUICK if args.quick else BenchConfig()
    overrides = {
        "chats": args.chats,
        "idle": args.idle,
        "missed": args.missed,
        "loads": args.loads,
        "warmup": args.warmup,
        "duration": args.duration,
        "window": args.window,
        "syncs": args.sync,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config = dataclasses.replace(
        config,
        floor=not args.no_floor,
        server_cpus=parse_cpus(args.server_cpus),
        client_cpus=parse_cpus(args.client_cpus),
        workdir=Path(args.workdir) if args.workdir else None,
    )

    def say(text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    results = run_bench(config, say)
    print(render(config, results))
    if args.json:
        Path(args.json).write_text(
            json.dumps(as_json(config, results), ensure_ascii=False, indent=2) + "\n"
        )
    return 1 if any(r.errors for r in results) else 0
