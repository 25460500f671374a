"""Typing and presence across two nodes on one PostgreSQL log and one Redis: the buyer's socket
on one node, the operator's on the other (docs/protocol.md, "Typing and presence")."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.harness import connect, drain, order_body, register_order, token, uid
from tests.multinode.cluster import Cluster

pytestmark = pytest.mark.timeout(60)

GRACE = 2.0  # the server's default (chatd.hub.presence)


async def test_typing_and_presence_cross_the_nodes(cluster: Cluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_id, shop = uid("buyer"), uid("shop")
    order = order_body(uid("order"), buyer_id, shop)
    assert register_order(a, order).status_code == 201
    buyer_token = token("buyer", buyer_id, "Тимур")

    async with connect(b, token("seller", uid("op"), "Анна", seller=shop)) as anna:
        async with connect(a, buyer_token) as opener:
            opened = await opener.request({"type": "open", "seller": shop, "order": order["id"]})
            chat = opened["chat"]
        # The chat in view on node b, its buyer offline on node a.
        await asyncio.sleep(GRACE + 0.5)
        page = await anna.request({"type": "chats"})
        listed = next(c for c in page["chats"] if c["chat"] == chat)
        assert listed["online"] == {"buyer": False, "seller": True}
        await drain(anna, 0.1)

        async with connect(a, buyer_token) as buyer:
            came = await anna.next_frame("presence", 5)
            assert came == {"type": "presence", "chat": chat, "side": "buyer", "online": True}
            page = await anna.request({"type": "chats"})
            listed = next(c for c in page["chats"] if c["chat"] == chat)
            assert listed["online"] == {"buyer": True, "seller": True}
            # Node a's summary counts the operator on node b.
            page = await buyer.request({"type": "chats"})
            assert page["chats"][0]["online"] == {"buyer": True, "seller": True}

            await buyer.send_raw(json.dumps({"type": "typing", "chat": chat}))
            typed = await anna.next_frame("typing", 5)
            # The buyer as the chat names them (by the order), as their messages are.
            name = order["buyer"]["name"]
            assert typed == {"type": "typing", "chat": chat, "side": "buyer", "name": name}
            await anna.send_raw(json.dumps({"type": "typing", "chat": chat}))
            assert (await buyer.next_frame("typing", 5))["name"] == "Анна"

        gone = await anna.next_frame("presence", GRACE + 5)
        assert gone == {"type": "presence", "chat": chat, "side": "buyer", "online": False}
        history = await anna.request({"type": "history", "chat": chat})
        assert [e["kind"] for e in history["events"]] == ["chat.opened"]
