"""`chatd replay`: reads and checks the log, splits it over client processes, shows the
progress, merges what the processes measured, and writes the report and its chart."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from chatd.loadtest.chart import render_html
from chatd.loadtest.plan import Plan, Share, make_plan
from chatd.loadtest.progress import Counters, ProgressBar, SharedCounters, read_shared
from chatd.loadtest.replay import Progress, ReplaySettings, replay_share
from chatd.loadtest.report import ReplayRun, report, summary_rows
from chatd.loadtest.results import Outcome, merge
from chatd.loadtest.system import pin, raise_open_files
from chatd.loadtest.validate import LogCheck, check_log
from protocol.logfile import read_log

READY_TIMEOUT = 600.0
START_DELAY = 0.3


class ReplayError(Exception):
    """The log cannot be replayed (it is not a valid log, say)."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    log: str
    settings: ReplaySettings
    processes: int = 1
    cpus: set[int] | None = None  # pin the client processes here
    report: str | None = None  # JSON path
    chart: str | None = None  # HTML path
    progress: bool = True
    check: bool = True  # refuse a log that fails validation


def _load(options: ReplayOptions) -> tuple[LogCheck, Plan]:
    records = list(read_log(options.log))
    check = check_log(records)
    if options.check and not check.ok:
        listed = "\n  ".join(check.problems)
        raise ReplayError(f"{options.log}: {check.problem_count} problems:\n  {listed}")
    return check, make_plan(records, options.processes)


async def _in_process(share: Share, options: ReplayOptions) -> Outcome:
    raise_open_files()
    pin(options.cpus)
    counters = Counters()
    bar = ProgressBar(share.actions, counters.read, enabled=options.progress)

    async def draw() -> None:
        while True:
            bar.render()
            await asyncio.sleep(0.25)

    drawing: asyncio.Task[None] | None = None

    async def go() -> float:
        nonlocal drawing
        bar.started = time.monotonic()
        drawing = asyncio.create_task(draw())
        return time.time() + START_DELAY

    try:
        return await replay_share(share, options.settings, counters, go)
    finally:
        if drawing is not None:
            drawing.cancel()
            bar.finish()


def _worker(
    share: Share,
    settings: ReplaySettings,
    slots: Any,
    ready: Any,
    go_event: MpEvent,
    start_at: Any,
    results: Any,
    cpus: set[int] | None,
) -> None:
    """A client process: replays one share and puts its outcome on `results`."""
    pin(cpus)
    raise_open_files()
    progress: Progress = SharedCounters(slots, share.index)

    async def go() -> float:
        ready.put(share.index)
        await asyncio.to_thread(go_event.wait)
        value: float = start_at.value
        return value

    try:
        outcome = asyncio.run(replay_share(share, settings, progress, go))
    except BaseException as exc:  # reported as an error of the run, not lost
        outcome = Outcome(actions=share.actions)
        outcome.errors["worker"] += 1
        outcome.example(f"process {share.index}: {type(exc).__name__}: {exc}")
        ready.put(share.index)
    results.put((share.index, outcome))


def _in_processes(plan: Plan, options: ReplayOptions) -> list[Outcome]:
    context = multiprocessing.get_context("spawn")
    count = len(plan.shares)
    slots = context.Array("q", 2 * count, lock=False)
    ready = context.Queue()
    results = context.Queue()
    go_event = context.Event()
    start_at = context.Value("d", 0.0, lock=False)
    bar = ProgressBar(plan.actions, lambda: read_shared(slots), enabled=options.progress)
    workers = [
        context.Process(
            target=_worker,
            args=(share, options.settings, slots, ready, go_event, start_at, results, options.cpus),
            name=f"chatd-replay-{share.index}",
        )
        for share in plan.shares
    ]
    for worker in workers:
        worker.start()
    try:
        waiting = count
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting:
            try:
                ready.get(timeout=1.0)
                waiting -= 1
            except queue.Empty:
                if time.monotonic() > deadline or not any(w.is_alive() for w in workers):
                    raise ReplayError("the client processes did not connect in time") from None
        start_at.value = time.time() + START_DELAY
        bar.started = time.monotonic()
        go_event.set()
        outcomes: dict[int, Outcome] = {}
        while len(outcomes) < count:
            try:
                index, outcome = results.get(timeout=0.25)
                outcomes[index] = outcome
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    raise ReplayError("a client process ended without its results") from None
            bar.render()
        bar.finish()
        return [outcomes[i] for i in sorted(outcomes)]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()


def run_replay(options: ReplayOptions) -> ReplayRun:
    check, plan = _load(options)
    processes = len(plan.shares)
    if options.progress:
        sockets = plan.connections * options.settings.connections
        print(
            f"replay: {plan.actions} commands of {check.events} events, "
            f"{sockets} sockets in {processes} process(es); connecting",
            file=sys.stderr,
            flush=True,
        )
    started = datetime.now(UTC)
    if processes == 1:
        outcomes = [asyncio.run(_in_process(plan.shares[0], options))]
    else:
        outcomes = _in_processes(plan, options)
    outcome, acks, deliveries = merge(outcomes)
    duration = max(outcome.finished, outcome.last_delivery)
    run = ReplayRun(
        log=options.log,
        check=check,
        plan=plan,
        settings=options.settings,
        processes=processes,
        started_at=started,
        duration=duration,
        outcome=outcome,
        acks=acks,
        deliveries=deliveries,
    )
    write_outputs(run, options.report, options.chart)
    return run


def write_outputs(run: ReplayRun, report_path: str | None, chart_path: str | None) -> None:
    if chart_path:
        Path(chart_path).parent.mkdir(parents=True, exist_ok=True)
        title = f"chatd replay of {Path(run.log).name}"
        Path(chart_path).write_text(render_html(title, summary_rows(run), run.timeline()))
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        body = report(run, chart_path)
        Path(report_path).write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
