"""Progress of the long offline commands (`rebuild`, `export`, `gen-log`, `demo`, `backup`).

On a terminal, a rich progress bar on standard error. Anywhere else (a pipe, a CI log, a
test) no bar and no control characters: a plain line every `PLAIN_EVERY` seconds for a
long run, and a last one when it ends, and nothing at all for a run shorter than that, so
that the logs of tests and scripts hold only what the commands print on purpose.

Imports the standard library only, and rich when there is a terminal to draw on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar

if TYPE_CHECKING:
    import rich.progress

PLAIN_EVERY = 5.0

P = ParamSpec("P")
R = TypeVar("R")


class Progress:
    """`with Progress("rebuild", total) as bar: ... bar.advance(n)`.

    `advance` may be called from another thread (the SQLite writer's, during a rebuild), but
    from one thread at a time."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        every: float = PLAIN_EVERY,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._every = every
        self._started = time.monotonic()
        self._next_line = self._started + every
        self._lines = 0
        self._bar: rich.progress.Progress | None = None
        self._task: Any = None

    @property
    def on_terminal(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty is not None and isatty())

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._next_line = self._started + self._every
        if self.on_terminal:
            self._bar = _rich_bar(self._stream, self.unit)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._lines and kind is None:
            self._write_line()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.advance(self._task, count)
            return
        now = time.monotonic()
        if now >= self._next_line:
            self._next_line = now + self._every
            self._write_line()

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def counting(self, work: Callable[P, R]) -> Callable[P, R]:
        """`work`, advancing the bar by one on each call (a projector called per event)."""

        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            result = work(*args, **kwargs)
            self.advance()
            return result

        return counted

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        if self.total:
            share = min(100.0, 100.0 * self.done / self.total)
            return (
                f"{self.label}: {self.done}/{self.total} {self.unit} ({share:.0f}%), "
                f"{elapsed:.0f} s"
            )
        return f"{self.label}: {self.done} {self.unit}, {elapsed:.0f} s"

    def _write_line(self) -> None:
        self._lines += 1
        self._stream.write(self.line() + "\n")
        self._stream.flush()


def _rich_bar(stream: TextIO, unit: str) -> rich.progress.Progress:
    # Imported only for a terminal: the commands start faster without it, and a pipe or a
    # log never sees it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        # Standard output may be the command's data (`chatd export --out -`): it must never
        # pass through the bar's console.
        redirect_stdout=False,
        redirect_stderr=False,
    )
