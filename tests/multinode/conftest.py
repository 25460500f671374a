from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.multinode.cluster import Cluster, cluster_of


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two nodes, `a` and `b`, on one fresh database."""
    async with cluster_of(tmp_path, "a", "b") as nodes:
        yield nodes
