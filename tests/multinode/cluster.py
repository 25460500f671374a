"""The docker-compose topology without Docker: `chatd serve` nodes on loopback ports, sharing
a fresh PostgreSQL database (the log), the running Redis (the hub) and one files directory.
Clients pick a node, as a load balancer would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.backends import REDIS_URL, fresh_database, require_redis
from tests.e2e.harness import ServerProcess

UNLIMITED = ("--rate", "100000", "--burst", "100000")


class Cluster:
    def __init__(self, dsn: str, root: Path) -> None:
        self.dsn = dsn
        self.root = root
        self.nodes: dict[str, ServerProcess] = {}

    def args(self, hub: str = REDIS_URL) -> tuple[str, ...]:
        return (
            "--store",
            self.dsn,
            "--hub",
            hub,
            "--files",
            str(self.root / "files"),
            *UNLIMITED,
        )

    async def start(self, name: str, *, hub: str = REDIS_URL) -> ServerProcess:
        # --db only names the node's log file here: the store is PostgreSQL.
        node = ServerProcess(db=self.root / f"{name}.db", extra_args=self.args(hub))
        self.nodes[name] = node
        await asyncio.to_thread(node.start)
        return node

    def stop_all(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{node.log_path.read_text()[-3000:]}"
            for name, node in self.nodes.items()
            if node.log_path is not None and node.log_path.exists()
        )


@asynccontextmanager
async def cluster_of(root: Path, *names: str) -> AsyncIterator[Cluster]:
    await require_redis()
    async with fresh_database() as dsn:
        cluster = Cluster(dsn, root)
        try:
            for name in names:
                await cluster.start(name)
            yield cluster
        finally:
            cluster.stop_all()
