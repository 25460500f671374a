"""`chatd bench --quick` runs end to end: chatd and the floor, and the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_quick_prints_the_table(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "chatd", "bench", "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for row in (
        "sustained delivered msg/s",
        "p99 latency @ 200 msg/s, ms",
        "memory per idle connection, KiB",
        "catch-up of 1000 missed events, s",
        "goals:",
    ):
        assert row in table, table
    assert "chatd(full)" in table and "floor" in table and "full/floor" in table
    body = json.loads(figures.read_text())
    labels = [server["label"] for server in body["servers"]]
    assert labels == ["chatd(full)", "floor"]
    for server in body["servers"]:
        assert server["errors"] == []
        assert server["sustained"]["delivered_per_s"] > 0
        assert all(load["missing"] == 0 for load in server["loads"])
        assert server["idle"]["connections"] == 200
    assert body["servers"][0]["catch_up"]["received"] == [1000, 1000, 1000]
