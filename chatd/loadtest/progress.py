"""Progress of a run: counters that replay processes advance, and the bar that shows them.

On a terminal the bar redraws one line; elsewhere (a log, a CI run) it prints a line every
few seconds instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

WIDTH = 30
PLAIN_EVERY = 5.0


class Counters:
    """Actions done and errors, in one process."""

    def __init__(self) -> None:
        self.done = 0
        self.errors = 0

    def advance(self, done: int, errors: int) -> None:
        self.done += done
        self.errors += errors

    def read(self) -> tuple[int, int]:
        return self.done, self.errors


class SharedCounters:
    """The same, in slots `2 * index` and `2 * index + 1` of an array shared between
    processes; each process writes only its own slots, so no lock is needed."""

    def __init__(self, slots: Any, index: int) -> None:
        # A `multiprocessing.Array("q", ..., lock=False)`: ctypes, so typed as Any.
        self._slots = slots
        self._index = 2 * index

    def advance(self, done: int, errors: int) -> None:
        self._slots[self._index] += done
        self._slots[self._index + 1] += errors


def read_shared(slots: Sequence[int]) -> tuple[int, int]:
    values = list(slots)
    return sum(values[0::2]), sum(values[1::2])


class ProgressBar:
    def __init__(
        self,
        total: int,
        read: Callable[[], tuple[int, int]],
        *,
        label: str = "replay",
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = max(total, 1)
        self.read = read
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_plain = 0.0

    def line(self) -> str:
        done, errors = self.read()
        elapsed = time.monotonic() - self.started
        share = min(1.0, done / self.total)
        filled = int(share * WIDTH)
        rate = done / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.label} [{'#' * filled}{'-' * (WIDTH - filled)}] {share * 100:5.1f}% "
            f"{done}/{self.total} {rate:,.0f}/s errors {errors} {elapsed:.1f}s"
        )

    def render(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.tty else "") + self.line() + "\n")
        self.stream.flush()
