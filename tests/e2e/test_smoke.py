from __future__ import annotations

from tests.e2e.harness import ServerProcess, connect, token


async def test_buyer_and_shop_chat(server: ServerProcess) -> None:
    buyer_token = token("buyer", "b1", "Люда")
    shop_token = token("seller", "op1", "Анна", seller="shop1")
    async with connect(server, buyer_token) as buyer, connect(server, shop_token) as shop:
        opened = await buyer.request({"type": "open", "seller": "shop1"})
        assert opened["type"] == "ack", opened
        chat = opened["chat"]
        sent = await buyer.request(
            {"type": "send", "chat": chat, "text": "Здравствуйте, товар не отправили."}
        )
        assert sent["type"] == "ack" and sent["seq"] == 2, sent
        events = await shop.wait_events(2)
        assert [e["kind"] for e in events] == ["chat.opened", "message"]
        assert events[1]["text"] == "Здравствуйте, товар не отправили."
        assert events[1]["author"] == {"role": "buyer", "id": "b1", "name": "b1"}
