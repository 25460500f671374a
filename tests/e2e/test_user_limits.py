"""Limits per user, over all of that user's connections."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import websockets

from tests.e2e.harness import ServerProcess, connect, token


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = ServerProcess(
        db=tmp_path / "limits.db",
        extra_args=(
            "--max-connections-per-user", "3", "--rate", "1000", "--burst", "1000",
            "--user-rate", "10", "--user-burst", "10",
        ),
    )  # fmt: skip
    process.start()
    yield process
    process.stop()


async def test_a_user_may_hold_only_so_many_connections(server: ServerProcess) -> None:
    tok = token("buyer", "many")
    async with connect(server, tok), connect(server, tok), connect(server, tok):
        async with websockets.connect(server.url) as fourth:
            await fourth.send(json.dumps({"type": "hello", "token": tok, "id": "h"}))
            refused = json.loads(await fourth.recv())
            assert refused["type"] == "error" and refused["code"] == "rate_limited"
            assert refused["id"] == "h" and "3 connections" in refused["message"]
            with pytest.raises(websockets.ConnectionClosed):
                await fourth.recv()
            assert fourth.close_code == 1008
        # Another user is not affected.
        async with connect(server, token("buyer", "someone-else")) as other:
            assert (await other.request({"type": "ping"}))["type"] == "pong"
    # Closed connections free their places.
    async with connect(server, tok) as again:
        assert (await again.request({"type": "ping"}))["type"] == "pong"


async def test_more_sockets_buy_no_more_budget(server: ServerProcess) -> None:
    tok = token("buyer", "budget")
    async with connect(server, tok) as one, connect(server, tok) as two:
        replies = await asyncio.gather(*(c.request({"type": "ping"}) for c in (one, two) * 10))
        passed = [r for r in replies if r["type"] == "pong"]
        refused = [r for r in replies if r["type"] == "error"]
        # Ten for the user in all, however they are spread over sockets.
        assert len(passed) == 10, replies
        assert all(r["code"] == "rate_limited" and r["details"]["retry_after"] > 0 for r in refused)
        await asyncio.sleep(refused[0]["details"]["retry_after"] + 0.05)
        assert (await two.request({"type": "ping"}))["type"] == "pong"
