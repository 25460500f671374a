"""A buyer and a shop with two operators chatting, over real sockets."""

from __future__ import annotations

import asyncio
import json

from tests.e2e.harness import ServerProcess, connect, token

BUYER = token("buyer", "lyuda", "Люда")
ANNA = token("seller", "op-anna", "Анна", seller="shop1")
OLEG = token("seller", "op-oleg", "Олег", seller="shop1")


async def test_two_operators_and_a_buyer_see_every_event(server: ServerProcess) -> None:
    async with (
        connect(server, BUYER) as buyer,
        connect(server, ANNA) as anna,
        connect(server, OLEG) as oleg,
        connect(server, BUYER) as buyer_tab,
    ):
        chat = (await buyer.request({"type": "open", "seller": "shop1"}))["chat"]
        await buyer.request(
            {"type": "send", "chat": chat, "text": "Здравствуйте, товар не отправили."}
        )
        reply = await anna.request(
            {"type": "send", "chat": chat, "text": "Здравствуйте, скоро отправим, ожидайте."}
        )
        assert reply["type"] == "ack" and reply["seq"] == 3
        await oleg.request({"type": "send", "chat": chat, "text": "Спасибо за обращение."})

        for client in (buyer, anna, oleg, buyer_tab):
            events = await client.wait_events(4)
            assert [e["seq"] for e in events] == [1, 2, 3, 4]
            assert [e["kind"] for e in events] == ["chat.opened", "message", "message", "message"]
        shop_message = anna.events[2]
        assert shop_message["author"]["role"] == "seller"
        assert shop_message["author"]["id"] == "shop1"
        assert shop_message["author"]["operator"] == {"id": "op-anna", "name": "Анна"}
        assert oleg.events[3]["author"]["operator"] == {"id": "op-oleg", "name": "Олег"}
        assert buyer.events[1]["author"]["role"] == "buyer"
        assert "operator" not in buyer.events[1]["author"]
        # Cursors increase along the feed.
        cursors = [e["cursor"] for e in buyer.events]
        assert len(set(cursors)) == 4


async def test_open_returns_the_existing_chat(server: ServerProcess) -> None:
    async with connect(server, BUYER) as buyer:
        first = await buyer.request({"type": "open", "seller": "shop-x"})
        second = await buyer.request({"type": "open", "seller": "shop-x"})
        assert first["chat"] == second["chat"]
        assert first["seq"] == second["seq"] == 1
        assert first["cursor"] == second["cursor"]
        opened = await buyer.wait_events(1)
        assert len(opened) == 1
        await asyncio.sleep(0.2)
        assert len(buyer.events) == 1


async def test_concurrent_opens_make_one_chat(server: ServerProcess) -> None:
    async with connect(server, BUYER) as one, connect(server, BUYER) as two:
        acks = await asyncio.gather(
            *(c.request({"type": "open", "seller": "shop-race"}) for c in (one, two, one, two))
        )
        assert len({a["chat"] for a in acks}) == 1
        assert {a["seq"] for a in acks} == {1}
        history = await one.request({"type": "history", "chat": acks[0]["chat"]})
        assert [e["kind"] for e in history["events"]] == ["chat.opened"]


async def test_history_pages_backwards(server: ServerProcess) -> None:
    async with connect(server, BUYER) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "shop-h"}))["chat"]
        for i in range(1, 26):
            await buyer.request({"type": "send", "chat": chat, "text": f"сообщение {i}"})
        page = await buyer.request({"type": "history", "chat": chat, "limit": 10})
        assert [e["seq"] for e in page["events"]] == list(range(17, 27))
        assert page["more"] is True
        page = await buyer.request({"type": "history", "chat": chat, "before": 17, "limit": 10})
        assert [e["seq"] for e in page["events"]] == list(range(7, 17))
        assert page["more"] is True
        page = await buyer.request({"type": "history", "chat": chat, "before": 7, "limit": 10})
        assert [e["seq"] for e in page["events"]] == list(range(1, 7))
        assert page["more"] is False
        everything = await buyer.request({"type": "history", "chat": chat})
        assert len(everything["events"]) == 26 and everything["more"] is False
        assert everything["events"][5]["text"] == "сообщение 5"


async def test_nonce_makes_send_idempotent(server: ServerProcess) -> None:
    async with connect(server, BUYER) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "shop-n"}))["chat"]
        frame = {"type": "send", "chat": chat, "text": "один раз", "nonce": "n-1"}
        acks = await asyncio.gather(*(buyer.request(frame) for _ in range(3)))
        again = await buyer.request(frame)
        assert {(a["chat"], a["seq"], a["cursor"]) for a in [*acks, again]} == {
            (chat, 2, acks[0]["cursor"])
        }
        history = await buyer.request({"type": "history", "chat": chat})
        assert [e["text"] for e in history["events"][1:]] == ["один раз"]


async def test_unread_counts_and_read_marks(server: ServerProcess) -> None:
    async with (
        connect(server, BUYER) as buyer,
        connect(server, ANNA) as anna,
        connect(server, OLEG) as oleg,
    ):
        chat = (await buyer.request({"type": "open", "seller": "shop1"}))["chat"]
        for text in ("Здравствуйте!", "Товар не отправили.", "Когда отправите?"):
            await buyer.request({"type": "send", "chat": chat, "text": text})

        def summary(page: dict, chat_id: str) -> dict:
            return next(c for c in page["chats"] if c["chat"] == chat_id)

        shop_view = summary(await anna.request({"type": "chats"}), chat)
        assert shop_view["unread"] == 3
        assert shop_view["reply_due"] is not None
        assert shop_view["last"]["text"] == "Когда отправите?"
        assert shop_view["buyer"]["id"] == "lyuda"
        buyer_view = summary(await buyer.request({"type": "chats"}), chat)
        assert buyer_view["unread"] == 0

        await anna.ws.send(json.dumps({"type": "read", "chat": chat, "seq": 3}))
        marks = [await c.next_frame("read") for c in (buyer, anna, oleg)]
        assert all(m == {"type": "read", "chat": chat, "side": "seller", "seq": 3} for m in marks)
        assert summary(await oleg.request({"type": "chats"}), chat)["unread"] == 1

        await oleg.request({"type": "send", "chat": chat, "text": "Отправим завтра."})
        shop_view = summary(await anna.request({"type": "chats"}), chat)
        assert shop_view["reply_due"] is None
        assert summary(await buyer.request({"type": "chats"}), chat)["unread"] == 1

        # A mark never goes back.
        await anna.ws.send(json.dumps({"type": "read", "chat": chat, "seq": 1}))
        mark = await anna.next_frame("read")
        assert mark["seq"] == 3
        await buyer.ws.send(json.dumps({"type": "read", "chat": chat, "seq": 5}))
        while (mark := await buyer.next_frame("read"))["side"] != "buyer":
            assert mark["seq"] == 3
        assert mark["seq"] == 5
        assert summary(await buyer.request({"type": "chats"}), chat)["unread"] == 0


async def test_chat_list_orders_by_activity_and_pages(server: ServerProcess) -> None:
    shop = token("seller", "op-list", "Оператор", seller="shop-list")
    async with connect(server, shop) as operator:
        chats = []
        for i in range(5):
            async with connect(server, token("buyer", f"list-b{i}")) as buyer:
                chat = (await buyer.request({"type": "open", "seller": "shop-list"}))["chat"]
                await buyer.request({"type": "send", "chat": chat, "text": f"вопрос {i}"})
                chats.append(chat)
        await operator.request({"type": "send", "chat": chats[1], "text": "ответ"})
        first = await operator.request({"type": "chats", "limit": 2})
        assert [c["chat"] for c in first["chats"]] == [chats[1], chats[4]]
        assert first["before"] is not None
        second = await operator.request({"type": "chats", "limit": 2, "before": first["before"]})
        assert [c["chat"] for c in second["chats"]] == [chats[3], chats[2]]
        third = await operator.request({"type": "chats", "limit": 2, "before": second["before"]})
        assert [c["chat"] for c in third["chats"]] == [chats[0]]
        assert third["before"] is None


async def test_search_is_case_insensitive_and_finds_yo_by_ye(server: ServerProcess) -> None:
    async with connect(server, BUYER) as buyer, connect(server, ANNA) as anna:
        chat = (await buyer.request({"type": "open", "seller": "shop1"}))["chat"]
        await buyer.request(
            {"type": "send", "chat": chat, "text": "Ёлочные игрушки пришли разбитыми"}
        )
        await anna.request({"type": "send", "chat": chat, "text": "Пришлите, пожалуйста, фото"})
        found = await anna.request({"type": "search", "q": "елочные"})
        assert [e["text"] for e in found["events"]] == ["Ёлочные игрушки пришли разбитыми"]
        found = await buyer.request({"type": "search", "q": "ФОТО", "chat": chat})
        assert [e["text"] for e in found["events"]] == ["Пришлите, пожалуйста, фото"]
        found = await buyer.request({"type": "search", "q": "пришл"})
        assert [e["seq"] for e in found["events"]] == [3, 2]
        stranger = token("buyer", "stranger")
        async with connect(server, stranger) as other:
            found = await other.request({"type": "search", "q": "фото"})
            assert found["events"] == []


async def test_msgpack_subprotocol(server: ServerProcess) -> None:
    async with connect(server, BUYER, binary=True) as buyer, connect(server, ANNA) as anna:
        assert buyer.ws.subprotocol == "chatd.v1.msgpack"
        chat = (await buyer.request({"type": "open", "seller": "shop1"}))["chat"]
        ack = await buyer.request({"type": "send", "chat": chat, "text": "бинарно"})
        assert ack["type"] == "ack"
        events = await anna.wait_events(2)
        assert events[-1]["text"] == "бинарно"
        mine = await buyer.wait_events(2)
        assert mine[-1]["text"] == "бинарно"
