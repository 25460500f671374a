"""`chatd` run in the test's own process (no interpreter start-up), leaving the logging of
the process as it found it."""

from __future__ import annotations

import logging

from chatd.process.cli import main


def run_chatd(args: list[str]) -> int:
    """`chatd ARGS`; the exit code. `main` puts its own handler on the root logger, writing
    to whatever standard error is at that moment (pytest's capture, gone after the test):
    the handlers and level from before come back after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main(args)
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
