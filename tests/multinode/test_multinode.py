"""Several chatd nodes on one PostgreSQL log and one Redis, end to end over real sockets: a
buyer and a shop on different nodes, a node killed with kill -9, racing approvals on two
nodes, a node cut off from Redis."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets

from tests.backends import REDIS_URL
from tests.e2e.harness import (
    Client,
    ServerProcess,
    chat_events,
    connect,
    get_balances,
    get_sales_rows,
    order_body,
    register_order,
    token,
    uid,
)
from tests.hub.proxy import CuttableProxy
from tests.multinode.cluster import Cluster, cluster_of

pytestmark = pytest.mark.timeout(90)

PRICE = {"value": 118600, "currency": "RUB"}


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [event["seq"] for event in events]


async def history(client: Client, chat: str) -> list[dict[str, Any]]:
    page = await client.request({"type": "history", "chat": chat, "limit": 100})
    assert page["type"] == "history", page
    return page["events"]  # type: ignore[no-any-return]


async def wait_for_read(client: Client, chat: str, seq: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.next_frame("read", timeout)
            if frame["chat"] == chat and frame["seq"] >= seq:
                return


async def test_a_buyer_and_operators_on_different_nodes_chat_and_settle_a_return(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_id, shop_id = uid("buyer"), uid("shop")
    order = order_body(uid("order"), buyer_id, shop_id)
    assert register_order(a, order).status_code == 201
    shop_token = token("seller", uid("op"), "Анна", seller=shop_id)

    async with (
        connect(a, token("buyer", buyer_id, "Тимур")) as buyer,
        connect(b, shop_token) as anna,
        connect(b, token("seller", uid("op"), "Олег", seller=shop_id)) as oleg,
    ):
        chat = (await buyer.request({"type": "open", "seller": shop_id, "order": order["id"]}))[
            "chat"
        ]
        await buyer.request({"type": "send", "chat": chat, "text": "Юбка не подошла по размеру"})
        await chat_events(oleg, chat, 2)
        await anna.request({"type": "send", "chat": chat, "text": "Оформите возврат в чате"})
        await chat_events(buyer, chat, 3)
        await buyer.request({"type": "send", "chat": chat, "text": "Хорошо, оформляю"})
        await chat_events(oleg, chat, 4)
        # Node b wrote seq 3 itself and learnt of seq 4 only from node a: a read mark of
        # seq 4 on node b reaches the buyer on node a.
        await oleg.send_raw(json.dumps({"type": "read", "chat": chat, "seq": 4}))
        await wait_for_read(buyer, chat, 4)

        requested = await buyer.request(
            {"type": "return.request", "chat": chat, "order": order["id"]}
        )
        assert requested["type"] == "ack", requested
        await chat_events(oleg, chat, 5)
        approved = await oleg.request(
            {
                "type": "return.approve",
                "claim": requested["claim"],
                "mode": "no_return",
                "amount": PRICE,
            }
        )
        assert approved["type"] == "ack", approved

        kinds = ["chat.opened", "message", "message", "message"]
        kinds += ["return.requested", "return.approved", "refund.issued"]
        for client in (buyer, anna, oleg):
            events = await chat_events(client, chat, 7)
            await asyncio.sleep(0.3)
            events = [e for e in client.events if e["chat"] == chat]
            assert seqs(events) == list(range(1, 8))
            assert [e["kind"] for e in events] == kinds
        assert await history(buyer, chat) == await history(anna, chat)

    buyer_token = token("buyer", buyer_id)
    for node in (a, b):
        assert get_balances(node, buyer_token) == [PRICE]
    [row] = get_sales_rows(a, shop_token)
    assert (row["reason"], row["amount"]) == ("Возврат", {"value": -118600, "currency": "RUB"})


async def test_a_node_killed_mid_conversation_loses_and_doubles_nothing(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_id, shop_id = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id, "Тимур")
    sent: dict[str, str] = {}  # nonce -> text

    async with connect(b, token("seller", uid("op"), "Анна", seller=shop_id)) as anna:
        async with connect(a, buyer_token) as buyer:
            chat = (await buyer.request({"type": "open", "seller": shop_id}))["chat"]
            for n in range(5):
                sent[f"n{n}"] = f"сообщение {n}"
                ack = await buyer.request(
                    {"type": "send", "chat": chat, "text": sent[f"n{n}"], "nonce": f"n{n}"}
                )
                assert ack["type"] == "ack", ack
                await anna.request({"type": "send", "chat": chat, "text": f"ответ {n}"})
            await chat_events(buyer, chat, 11)
            # A burst the node may or may not have taken when it dies.
            for n in range(5, 25):
                sent[f"n{n}"] = f"сообщение {n}"
                frame = {"type": "send", "chat": chat, "text": sent[f"n{n}"], "nonce": f"n{n}"}
                await buyer.send_raw(json.dumps(frame))
            await asyncio.sleep(0.02)
            a.kill()
            await asyncio.wait_for(buyer.closed.wait(), 10)
            before = [e for e in buyer.events if e["chat"] == chat]

        # Node a is gone; the shop carries on at node b.
        for n in range(3):
            await anna.request({"type": "send", "chat": chat, "text": f"пока вас не было {n}"})

        cursor = before[-1]["cursor"]
        async with connect(b, buyer_token, since=cursor, read=False) as again:
            replayed: list[dict[str, Any]] = []
            frame = await again.recv()
            while frame["type"] == "event":
                replayed.append(frame)
                frame = await again.recv()
            assert frame["type"] == "synced", frame
            again.start_reading()
            # Whatever the dead node had not acked is sent again with its nonce.
            for nonce, text in sent.items():
                ack = await again.request(
                    {"type": "send", "chat": chat, "text": text, "nonce": nonce}
                )
                assert ack["type"] == "ack", ack
            await anna.request({"type": "send", "chat": chat, "text": "последний"})
            full = await history(again, chat)
            live = await chat_events(again, chat, len(full) - len(before) - len(replayed))

        seen = before + replayed + live
        assert seqs(seen) == seqs(full) == list(range(1, len(full) + 1))
        assert [e["cursor"] for e in seen] == [e["cursor"] for e in full]
        texts = Counter(e.get("text") for e in full)
        assert all(texts[text] == 1 for text in sent.values()), texts
        assert texts["последний"] == 1
        anna_seen = [e for e in anna.events if e["chat"] == chat]
        assert seqs(anna_seen) == seqs(full)


async def test_two_operators_on_two_nodes_approving_one_claim_at_once_refund_once(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_id, shop_id = uid("buyer"), uid("shop")
    shop_token = token("seller", uid("op"), "Анна", seller=shop_id)
    rounds = 6
    async with (
        connect(a, token("buyer", buyer_id)) as buyer,
        connect(a, shop_token) as anna,
        connect(b, token("seller", uid("op"), "Олег", seller=shop_id)) as oleg,
    ):
        chat = ""
        for _ in range(rounds):
            order = order_body(uid("order"), buyer_id, shop_id)
            assert register_order(b, order).status_code == 201
            chat = (await buyer.request({"type": "open", "seller": shop_id})).get("chat", chat)
            requested = await buyer.request(
                {"type": "return.request", "chat": chat, "order": order["id"]}
            )
            assert requested["type"] == "ack", requested
            approve = {
                "type": "return.approve",
                "claim": requested["claim"],
                "mode": "no_return",
                "amount": PRICE,
            }
            # Right after the ack on node a, before node b can have heard of the claim
            # through Redis: node b must still act on it (a client reads its own writes).
            answers = await asyncio.gather(anna.request(approve), oleg.request(approve))

            assert sorted(answer["type"] for answer in answers) == ["ack", "error"], answers
            [error] = [answer for answer in answers if answer["type"] == "error"]
            assert error["code"] == "conflict", error
        events = await history(buyer, chat)

    kinds = Counter(e["kind"] for e in events)
    assert (kinds["return.approved"], kinds["refund.issued"]) == (rounds, rounds)
    assert get_balances(b, token("buyer", buyer_id)) == [
        {"value": rounds * PRICE["value"], "currency": "RUB"}
    ]
    assert len(get_sales_rows(a, shop_token)) == rounds


async def test_a_node_cut_off_from_redis_still_delivers_everything(tmp_path: Path) -> None:
    parsed = urlsplit(REDIS_URL)
    proxy = CuttableProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    await proxy.start()
    try:
        async with cluster_of(tmp_path, "a") as cluster:
            a = cluster.nodes["a"]
            b = await cluster.start("b", hub=proxy.url)
            await run_cut_off_conversation(a, b, proxy)
    finally:
        await proxy.close()


async def run_cut_off_conversation(
    a: ServerProcess, b: ServerProcess, proxy: CuttableProxy
) -> None:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    async with (
        connect(a, token("buyer", buyer_id)) as buyer,
        connect(b, token("seller", uid("op"), "Анна", seller=shop_id)) as anna,
    ):
        chat = (await buyer.request({"type": "open", "seller": shop_id}))["chat"]
        await chat_events(anna, chat, 1)

        await proxy.cut()
        for n in range(5):
            await buyer.request({"type": "send", "chat": chat, "text": f"без redis {n}"})
        # Node b hears nothing through Redis now: it reads the log (once a second).
        await chat_events(anna, chat, 6, timeout=15)
        await anna.request({"type": "send", "chat": chat, "text": "ответ без redis"})
        await chat_events(buyer, chat, 7, timeout=15)

        await proxy.restore()
        for n in range(3):
            await buyer.request({"type": "send", "chat": chat, "text": f"с redis {n}"})
        await chat_events(anna, chat, 10, timeout=15)
        await asyncio.sleep(0.5)

        for client in (buyer, anna):
            assert seqs([e for e in client.events if e["chat"] == chat]) == list(range(1, 11))


async def test_a_cursor_from_one_node_is_good_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_token = token("buyer", uid("buyer"))
    async with connect(a, buyer_token) as buyer:
        chat = (await buyer.request({"type": "open", "seller": uid("shop")}))["chat"]
        ack = await buyer.request({"type": "send", "chat": chat, "text": "привет"})
    async with connect(b, buyer_token) as elsewhere:
        await elsewhere.request({"type": "send", "chat": chat, "text": "ещё раз"})

    async with websockets.connect(b.url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": buyer_token, "since": ack["cursor"]}))
        frames = [json.loads(await ws.recv()) for _ in range(3)]

    assert [f["type"] for f in frames] == ["welcome", "event", "synced"]
    assert frames[1]["text"] == "ещё раз"
