"""The shop's notes and assignments across two nodes (docs/protocol.md, "The operator's day"):
written on one node, they reach the shop's operators on the other through Redis, and never the
buyer there; an operator who signed in on one node is known to the other."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import chat_events, connect, drain, token, uid
from tests.multinode.cluster import Cluster

pytestmark = pytest.mark.timeout(90)


async def test_a_note_on_one_node_reaches_the_shop_on_the_other_and_never_the_buyer(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    buyer_id, shop_id, boris_id = uid("buyer"), uid("shop"), uid("boris")
    async with (
        connect(b, token("buyer", buyer_id, "Тимур")) as buyer,
        connect(a, token("seller", uid("anna"), "Анна", seller=shop_id)) as anna,
        connect(b, token("seller", boris_id, "Борис", seller=shop_id)) as boris,
    ):
        chat = (await buyer.request({"type": "open", "seller": shop_id}))["chat"]
        # Boris signed in on node b; node a assigns the chat to him.
        given = await anna.request({"type": "assign", "chat": chat, "operator": boris_id})
        assert given["type"] == "ack", given
        noted = await anna.request({"type": "note", "chat": chat, "text": "Секретик"})
        assert noted["type"] == "ack", noted
        sent = await anna.request({"type": "send", "chat": chat, "text": "Здравствуйте!"})
        assert sent["type"] == "ack", sent
        events = await chat_events(boris, chat, 4)
        assert [e["kind"] for e in events] == ["chat.opened", "chat.assigned", "note", "message"]
        seen = await chat_events(buyer, chat, 2)
        await drain(buyer, 0.5)
        assert [(e["seq"], e["kind"]) for e in buyer.events if e["chat"] == chat] == [
            (1, "chat.opened"),
            (4, "message"),
        ], seen
        assert "Секретик" not in json.dumps(buyer.events, ensure_ascii=False)
        listed = await boris.request({"type": "chats"})
        [summary] = [c for c in listed["chats"] if c["chat"] == chat]
        assert summary["assignee"] == {"id": boris_id, "name": "Борис"}
