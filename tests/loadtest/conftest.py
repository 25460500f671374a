from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.loadtest.servers import lifted_limits
from tests.e2e.harness import SECRET, ServerProcess

__all__ = ["SECRET"]


def start_loaded_server(db: Path) -> ServerProcess:
    """A real `chatd serve` with the rate limits lifted, as a load test needs it."""
    server = ServerProcess(db=db, extra_args=(*lifted_limits(), "--queue", "100000"))
    server.start()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_loaded_server(tmp_path / "chatd.db")
    try:
        yield process
    finally:
        process.stop()
