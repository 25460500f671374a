"""`python -m chatd.proof.races` in small: 100 copies a burst, 6 requests and 4 offers left
to fall due, on two nodes sharing PostgreSQL and Redis, and on one SQLite node; the figures
it writes are checked against what it must have found."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backends import PG_DSN, REDIS_URL, require_postgres, require_redis

ROOT = Path(__file__).resolve().parents[2]
COPIES = 100
EXPECTED = {
    "approve no_return": {"return.approved": 1, "refund.issued": 1},
    "approve pvz": {"return.approved": 1},
    "logistics handed_in": {"return.handed_in": 1},
    "logistics arrived": {"return.arrived": 1, "refund.issued": 1},
    "logistics inspected": {"return.inspected": 1},
    "reject": {"return.rejected": 1},
    "dispute": {"return.disputed": 1},
    "resolve": {"return.resolved": 1, "refund.issued": 1},
    "send, one nonce": {"message": 1},
    "send, one nonce, 2 chats": {"message": 1},
    # Not duplicates: a hundred different messages into one chat at once, all kept.
    "send, many into one chat": {"message": COPIES},
}


def run_races(
    tmp_path: Path, store: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    figures = tmp_path / "races.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "chatd.proof.races", "--store", store,
            "--duplicates", str(COPIES), "--escalations", "6", "--offers", "4",
            "--deadline", "3", "--pg", PG_DSN, "--redis", REDIS_URL, "--json", str(figures),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )  # fmt: skip
    assert figures.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(figures.read_text())


def check(done: subprocess.CompletedProcess[str], figures: dict[str, Any]) -> None:
    out = done.stdout[-4000:] + done.stderr[-3000:]
    assert done.returncode == 0 and figures["ok"] and figures["problems"] == [], out
    [report] = figures["reports"]
    bursts = {b["name"]: b for b in report["bursts"]}
    assert set(bursts) == {*EXPECTED, "approve | reject"}, out
    for name, burst in bursts.items():
        assert burst["sent"] == COPIES, name
        # Every copy answered, by the log's truth: one did it, the others were refused.
        assert sum(burst["answers"].values()) == COPIES, (name, burst)
        assert burst["heard_once"] == burst["listeners"] > 0, (name, burst)
        if name in EXPECTED:
            assert burst["appended"] == EXPECTED[name], (name, burst)
        if name.startswith("send, "):
            assert burst["succeeded"] == COPIES, burst
            continue
        assert burst["succeeded"] == 1, (name, burst)
        refused = {k: v for k, v in burst["answers"].items() if k not in ("ack", "HTTP 200")}
        assert set(refused) <= {"error conflict", "HTTP 409 conflict"}, (name, burst)
    mixed = bursts["approve | reject"]["appended"]
    assert mixed in ({"return.approved": 1, "refund.issued": 1}, {"return.rejected": 1}), mixed
    assert bursts["approve no_return"]["ledger"] == 1 and bursts["reject"]["ledger"] == 0
    deadlines = report["deadlines"]
    assert sum(deadlines["outcomes"].values()) == 10, deadlines
    for outcome in deadlines["outcomes"]:
        assert outcome in (
            "request: return.escalated",
            "request: return.approved + refund.issued",
            "offer: return.expired",
            "offer: return.requested + return.escalated",
        ), deadlines
    # The racers at the deadline: each raced claim had ten tries, none answered internal.
    assert all(k in ("ack", "error conflict", "error return_already_requested")
               for k in deadlines["racers"]), deadlines  # fmt: skip
    assert deadlines["late_ms"]["min"] >= 0, deadlines


@pytest.mark.timeout(110)
def test_two_nodes_on_postgres_do_each_thing_once(tmp_path: Path) -> None:
    asyncio.run(require_postgres())
    asyncio.run(require_redis())
    done, figures = run_races(tmp_path, "postgres")
    check(done, figures)
    deadlines = figures["reports"][0]["deadlines"]
    # Three services in the test's own process raced the two nodes at every deadline.
    assert sum(deadlines["triggers"].values()) == 3 * 6 * 10, deadlines
    assert all(k.startswith(("done", "conflict")) for k in deadlines["triggers"]), deadlines


@pytest.mark.timeout(110)
def test_one_sqlite_node_with_many_sockets_does_each_thing_once(tmp_path: Path) -> None:
    done, figures = run_races(tmp_path, "sqlite")
    check(done, figures)
