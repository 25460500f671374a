"""A server stopped by SIGINT or SIGTERM exits with status 0.

uvicorn catches SIGINT and SIGTERM, shuts down in order, then raises the same signal again
once its handlers are gone, so that the process dies of it: status 130 or 143 (or -2 / -15
to a parent), and a KeyboardInterrupt's traceback for SIGINT. For chatd a signal is the
normal way to stop (Ctrl-C, `docker stop`, systemd, a supervisor), and by then every socket
has been closed with 1001 and every acked write is on disk, so nothing failed. Dying of the
signal made `make run` report `make: *** [Makefile:17: run] Terminated` (or `Interrupt`),
which reads as a failure. So the signal is not raised again: the process ends with 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn


class ExitsCleanlyOnSignal(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            # Reached only when serving ended without an exception, i.e. after the orderly
            # shutdown. uvicorn re-raises what this list holds when the block ends.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()
