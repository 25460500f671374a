"""What every test shares."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from chatd.observability.logs import StderrHandler


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """`chatd`'s `main`, run in a test's own process, sets up the process's logging (a
    handler on standard error, the level of `--log-level`): taken away after the test, so
    that the next test's output holds only its own lines."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in root.handlers[:]:
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    root.setLevel(level)
