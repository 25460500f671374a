"""Pauses of the whole process, for /metrics: how late the event loop runs a timer, and how
long each pass of the garbage collector takes.

Every socket's frames wait while the event loop is busy elsewhere: a callback that ran long,
a collector pass, SQLite's writer thread holding the interpreter, the process descheduled.
A latency percentile shows that something waited; these two say whether the whole loop did,
and whether the collector was why. Both cost next to nothing: one timer every half second,
and two calls per collector pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from chatd.observability.logs import fields

# How often the loop's lateness is sampled. A pause shorter than this may fall between two
# samples; one as long always shows.
LAG_PERIOD = 0.5
# A collector pass longer than this is also logged, with its generation and the collector's
# counts: the histogram says that such a pass happened, the log line when, and which.
SLOW_GC_SECONDS = 0.1

log = logging.getLogger(__name__)


class Pauses:
    def __init__(self, registry: CollectorRegistry, lag_period: float = LAG_PERIOD) -> None:
        self._lag = Histogram(
            "chatd_event_loop_lag_seconds",
            "How much later than asked the event loop ran a timer (sampled every 0.5 s)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=registry,
        )
        gc_pause = Histogram(
            "chatd_gc_pause_seconds",
            "Time of one pass of Python's garbage collector, by generation",
            ["generation"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self._gc_pause = [gc_pause.labels(str(generation)) for generation in range(3)]
        self._lag_period = lag_period
        self._lag_task: asyncio.Task[None] | None = None
        # A pass runs with the interpreter held, in whichever thread allocated, and passes
        # never overlap: one start time is enough.
        self._gc_started: float | None = None

    def start(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        if self._lag_task is None:
            self._lag_task = asyncio.create_task(self._sample_lag(), name="loop-lag")

    async def stop(self) -> None:
        # Removed, not left behind: a process may make and stop many apps (the tests do).
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        started, self._gc_started = self._gc_started, None
        generation = info.get("generation")
        if started is not None and isinstance(generation, int) and 0 <= generation < 3:
            took = time.perf_counter() - started
            self._gc_pause[generation].observe(took)
            if took > SLOW_GC_SECONDS:
                log.warning(
                    "slow garbage-collector pass: generation %d took %.0f ms, collected %s;"
                    " %d objects frozen, counts now %s",
                    generation,
                    1000 * took,
                    info.get("collected"),
                    gc.get_freeze_count(),
                    gc.get_count(),
                    extra=fields(event="slow_gc", generation=generation, ms=round(1000 * took)),
                )

    async def _sample_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._lag_period
            await asyncio.sleep(self._lag_period)
            self._lag.observe(max(0.0, loop.time() - asked))
