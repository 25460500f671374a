from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import SECRET, ServerProcess

# Tests that send as fast as they can turn the per-connection rate limit off.
UNLIMITED = (
    "--rate", "100000", "--burst", "100000", "--user-rate", "100000", "--user-burst", "100000"
)  # fmt: skip


def serve(db: Path, *extra_args: str) -> ServerProcess:
    process = ServerProcess(db=db, extra_args=extra_args)
    process.start()
    return process


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests of a module that do not restart it."""
    # A claim deadline short enough for the deadline story (undecided_request_goes_to_a_manager)
    # and long enough for every other story to decide its claims well before it.
    process = serve(
        tmp_path_factory.mktemp("client") / "chatd.db", *UNLIMITED, "--claim-deadline", "5s"
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, to kill and restart."""
    process = serve(tmp_path / "chatd.db", *UNLIMITED)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def secret() -> str:
    return SECRET
