"""Claim deadlines end to end, with short deadlines on the command line: a request the shop
never decides goes to the managers by itself while the server runs, and at start-up when
the deadline passed while no server ran; two nodes sharing a log escalate a claim once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    ServerProcess,
    chat_events,
    connect,
    open_claim,
    token,
    uid,
)
from tests.multinode.cluster import cluster_of

pytestmark = pytest.mark.timeout(90)

ESCALATED = (
    "Продавец не ответил на заявку вовремя. Заявка передана на рассмотрение менеджеру Wildberries."
)


def escalations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "return.escalated"]


async def history(server: ServerProcess, tok: str, chat: str) -> list[dict[str, Any]]:
    async with connect(server, tok) as client:
        page = await client.request({"type": "history", "chat": chat, "limit": 100})
    assert page["type"] == "history", page
    return page["events"]  # type: ignore[no-any-return]


async def test_a_request_nobody_decides_goes_to_the_managers_while_the_server_runs(
    tmp_path: Path,
) -> None:
    server = ServerProcess(db=tmp_path / "chatd.db", extra_args=("--claim-deadline", "2s"))
    server.start()
    try:
        buyer_id, shop = uid("buyer"), uid("shop")
        async with (
            connect(server, token("buyer", buyer_id)) as buyer,
            connect(server, token("manager", "mgr-1", "Ирина")) as manager,
        ):
            chat, claim = await open_claim(server, buyer, buyer_id, shop, uid("order"))
            requested_at = time.monotonic()
            events = await chat_events(buyer, chat, 3, timeout=10)  # opened, requested, +1
            waited = time.monotonic() - requested_at
            seen_by_manager = await chat_events(manager, chat, 1, timeout=5)
            summary = await buyer.request({"type": "chats"})
    finally:
        server.stop()

    [escalated] = escalations(events)
    assert escalated["text"] == ESCALATED
    assert escalated["author"]["role"] == "system"
    assert escalated["data"]["claim"] == claim
    # Within 5 s of the deadline (2 s after the request).
    assert 1.5 < waited < 7, waited
    assert escalations(seen_by_manager)
    [entry] = [c for c in summary["chats"] if c["chat"] == chat]
    assert [c["state"] for c in entry["claims"]] == ["disputed"]


async def test_a_deadline_that_passed_while_no_server_ran_fires_at_start(
    tmp_path: Path,
) -> None:
    db = tmp_path / "chatd.db"
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id)
    first = ServerProcess(db=db, extra_args=("--claim-deadline", "2s"))
    first.start()
    try:
        async with connect(first, buyer_token) as buyer:
            chat, _claim = await open_claim(first, buyer, buyer_id, shop, uid("order"))
    finally:
        first.stop()  # well before the deadline
    await asyncio.sleep(2.5)  # the deadline passes with no server

    second = ServerProcess(db=db, extra_args=("--claim-deadline", "2s"))
    second.start()
    try:
        deadline = time.monotonic() + 5
        while not escalations(found := await history(second, buyer_token, chat)):
            assert time.monotonic() < deadline, "no escalation after the restart"
            await asyncio.sleep(0.1)
    finally:
        second.stop()
    assert len(escalations(found)) == 1


async def test_two_nodes_escalate_a_claim_once(tmp_path: Path) -> None:
    async with cluster_of(tmp_path, "a") as cluster:
        # Both nodes with the short deadline; `cluster_of` started `a` with the defaults.
        cluster.nodes["a"].stop()
        for name in ("a", "b"):
            node = ServerProcess(
                db=tmp_path / f"{name}.db",
                extra_args=(*cluster.args(), "--claim-deadline", "1s"),
            )
            cluster.nodes[name] = node
            await asyncio.to_thread(node.start)
        a, b = cluster.nodes["a"], cluster.nodes["b"]
        chats: list[str] = []
        tokens: list[str] = []
        for n in range(6):
            buyer_id = uid(f"buyer{n}")
            tokens.append(token("buyer", buyer_id))
            node = (a, b)[n % 2]
            async with connect(node, tokens[-1]) as buyer:
                chat, _claim = await open_claim(node, buyer, buyer_id, uid("shop"), uid("order"))
            chats.append(chat)
        await asyncio.sleep(4)  # both nodes look at least once after every deadline
        found = [await history((a, b)[n % 2], tokens[n], chat) for n, chat in enumerate(chats)]

    assert [len(escalations(events)) for events in found] == [1] * len(chats)
