"""The server's own word on its worst pauses in each period, read from its /metrics.

A minute's p99 says that some messages waited; it does not say what they waited for. The
server keeps three histograms that do: how late its event loop ran a timer (the whole
process held up: a long callback, the garbage collector, the interpreter held by a thread,
the process descheduled), each pass of the garbage collector, and each group commit (the
writer held up: a slow fsync, a lock). For each, this reads the worst bucket any
observation reached in the period: "at most that long", to the histogram's resolution.

The page is fetched every `EVERY` seconds, not at the period's end, so that the load
generator never waits for it: a period's figures are those of the last fetch before its end
(so they may hold up to EVERY seconds of the period before). Rendering the page costs the
server ~10 ms of its loop; once a second that was 1% of its CPU in a soak, so it is read less
often. Only the three families' bucket lines are read from the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

EVERY = 5.0
LOOP_LAG = "chatd_event_loop_lag_seconds"
GC_PAUSE = "chatd_gc_pause_seconds"
COMMIT = "chatd_append_seconds"
FAMILIES = (LOOP_LAG, GC_PAUSE, COMMIT)

# A family's cumulative bucket counts by upper bound (seconds; math.inf for +Inf), summed
# over its labels.
Buckets = dict[float, float]


@dataclass(frozen=True, slots=True)
class Pauses:
    """The worst of each kind in one period, in ms, as the upper bound of the highest bucket
    reached (`in_ms`: None past the last bound); 0.0 when none was observed."""

    loop_lag_ms: float | None = 0.0
    gc_ms: float | None = 0.0
    commit_ms: float | None = 0.0


def read_buckets(page: str) -> dict[str, Buckets]:
    """The bucket lines of FAMILIES in a Prometheus text page."""
    found: dict[str, Buckets] = {name: {} for name in FAMILIES}
    for line in page.splitlines():
        if not line.startswith("chatd_") or "_bucket{" not in line:
            continue
        name = line[: line.index("_bucket{")]
        buckets = found.get(name)
        if buckets is None:
            continue
        labels, _, value = line.rpartition(" ")
        bound = labels[labels.index('le="') + 4 :]
        bound = bound[: bound.index('"')]
        le = math.inf if bound == "+Inf" else float(bound)
        buckets[le] = buckets.get(le, 0.0) + float(value)
    return found


def worst(before: Mapping[float, float], after: Mapping[float, float]) -> float:
    """The upper bound of the lowest bucket that holds every observation made between the
    two readings; 0.0 for none."""
    bounds = sorted(after)
    if not bounds:
        return 0.0
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return 0.0
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= total:
            return bound
    return math.inf


class PauseWatch:
    """Fetches the server's /metrics every EVERY seconds (a quarter period if less); `take`
    gives the period's worst."""

    def __init__(self, base_url: str, period_s: float) -> None:
        self._url = base_url.rstrip("/") + "/metrics"
        # Several readings a period, however short the periods.
        self._every = min(EVERY, period_s / 4)
        self._latest: dict[str, Buckets] = {name: {} for name in FAMILIES}
        self._taken = self._latest

    async def read(self, client: httpx.AsyncClient) -> None:
        try:
            answer = await client.get(self._url)
            answer.raise_for_status()
        except httpx.HTTPError:
            return  # the period then shows what the last good reading saw
        self._latest = read_buckets(answer.text)

    async def run(self) -> None:
        """Reads until cancelled; the first reading is where the first period starts from."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            await self.read(client)
            self._taken = self._latest
            while True:
                await asyncio.sleep(self._every)
                await self.read(client)

    def take(self) -> Pauses:
        latest, before = self._latest, self._taken
        self._taken = latest
        return Pauses(
            loop_lag_ms=in_ms(worst(before[LOOP_LAG], latest[LOOP_LAG])),
            gc_ms=in_ms(worst(before[GC_PAUSE], latest[GC_PAUSE])),
            commit_ms=in_ms(worst(before[COMMIT], latest[COMMIT])),
        )


def in_ms(seconds: float) -> float | None:
    """A pause for a report: milliseconds, None past the histogram's last bound."""
    return None if math.isinf(seconds) else round(1000 * seconds, 3)


def shown(ms: float | None) -> str:
    """A pause for a column: its bound in ms, `over` past the last bound, `-` for none."""
    if ms is None:
        return "over"
    return "-" if ms == 0.0 else f"{ms:g}"


async def stopped(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
