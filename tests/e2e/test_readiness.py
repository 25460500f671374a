"""`/readyz` follows the store and the hub for real: a node on a PostgreSQL and a Redis of the
test's own (tests/private_services.py), stopped and started again under it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ServerProcess
from tests.private_services import PrivatePostgres, PrivateRedis


@pytest.fixture
def services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    postgres, redis = PrivatePostgres(), PrivateRedis()
    try:
        postgres.init()
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        postgres.remove()
        redis.remove()


READY = (200, {"store": "ok", "hub": "ok"})


def readiness(server: ServerProcess) -> tuple[int, dict[str, str]]:
    answer = httpx.get(server.http + "/readyz", timeout=10)
    body = answer.json()
    checks = body["checks"] if answer.status_code == 200 else body["error"]["details"]["checks"]
    return answer.status_code, checks


def eventually(probe: Callable[[], Any], wanted: Callable[[Any], bool], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if wanted(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"still {seen!r} after {timeout} s")
        time.sleep(0.05)


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(server.http + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def test_readyz_turns_503_when_postgres_or_redis_stops_and_200_when_it_returns(
    tmp_path: Path, services: tuple[PrivatePostgres, PrivateRedis]
) -> None:
    postgres, redis = services
    node = ServerProcess(
        db=tmp_path / "node.db",
        extra_args=(
            "--store", postgres.dsn, "--hub", redis.url, "--files", str(tmp_path / "files"),
            "--log-level", "info", "--log-format", "json",
        ),
    )  # fmt: skip
    with node:
        assert readiness(node) == READY

        postgres.stop()
        _, checks = eventually(lambda: readiness(node), lambda seen: seen[0] == 503)
        assert checks["store"] in ("failing", "timeout") and checks["hub"] == "ok", checks
        # The process still answers: not a reason to restart it.
        assert httpx.get(node.http + "/livez", timeout=5).status_code == 200
        postgres.start()
        eventually(lambda: readiness(node), lambda seen: seen == READY)

        redis.stop()
        _, checks = eventually(lambda: readiness(node), lambda seen: seen[0] == 503)
        assert checks["hub"] in ("failing", "timeout") and checks["store"] == "ok", checks
        eventually(lambda: metric(node, "chatd_hub_up"), lambda up: up == 0)
        redis.start()
        eventually(lambda: readiness(node), lambda seen: seen == READY)
        # The hub's subscription comes back too, and is counted.
        eventually(lambda: metric(node, "chatd_hub_up"), lambda up: up == 1)
        assert metric(node, "chatd_hub_reconnections_total") >= 1

    # Each change of a part's state is one line, whatever the number of probes.
    changes = [
        (line["event"], line["part"])
        for line in map(json.loads, node.log_path.read_text().splitlines())
        if line.get("event") in ("not_ready", "ready_again")
    ]
    assert changes == [
        ("not_ready", "store"),
        ("ready_again", "store"),
        ("not_ready", "hub"),
        ("ready_again", "hub"),
    ]
