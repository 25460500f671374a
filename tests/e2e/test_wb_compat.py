"""WB's Buyers Chat API shapes under /api/v1/seller/, against a real `chatd serve`.

The bot here is written from the shapes alone (docs/protocol.md, "WB-compatible routes"):
plain httpx and the fields of the answers; chatd is used only to make tokens and keys and to
play the buyer. It lists the chats, follows the events with `next` page by page (and from a
Unix time), replies with a file and downloads files; another shop cannot reply with a
forged or foreign `replySign`; without a key the answer is 401."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.api_keys import create_key
from tests.e2e.harness import ServerProcess, connect, module_server, open_claim, token, uid

pytestmark = pytest.mark.timeout(60)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 200
PDF = b"%PDF-1.4\n" + b"\x04" * 200 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "wb") as process:
        yield process


@dataclass(frozen=True)
class Shop:
    id: str
    key: str
    buyer: str
    order: str
    chat: str


async def a_shop(srv: ServerProcess) -> Shop:
    """A shop with an API key and one buyer's chat about an order, with a return request."""
    shop, buyer, order = uid("shop"), uid("buyer"), uid("order")
    operator = token("seller", uid("op"), "Анна", seller=shop)
    key = create_key(srv, operator, "WB bot", ("chat:read", "chat:write"))["key"]
    async with connect(srv, token("buyer", buyer)) as socket:
        chat, _ = await open_claim(srv, socket, buyer, shop, order)
    return Shop(shop, key, buyer, order, chat)


async def buyer_writes(srv: ServerProcess, shop: Shop, texts: list[str]) -> None:
    async with connect(srv, token("buyer", shop.buyer)) as socket:
        for text in texts:
            sent = await socket.request({"type": "send", "chat": shop.chat, "text": text})
            assert sent["type"] == "ack", sent


def wb(srv: ServerProcess, key: str) -> httpx.Client:
    """What a WB bot holds: the base URL and `Authorization: <key>`, no `Bearer`."""
    return httpx.Client(base_url=srv.http, headers={"Authorization": key}, timeout=10)


def follow(bot: httpx.Client, first: str | None, limit: int) -> tuple[list[dict[str, Any]], str]:
    """Every event from `first` on, page by page, passing `next` back; and the last `next`."""
    seen: list[dict[str, Any]] = []
    cursor = first
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["next"] = cursor
        answer = bot.get("/api/v1/seller/events", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["errors"] == []
        result = body["result"]
        assert result["totalEvents"] == len(result["events"])
        cursor = result["next"]
        if not result["events"]:
            assert result["newestEventTime"] is None and result["oldestEventTime"] is None
            return seen, cursor
        times = [e["addTimestamp"] for e in result["events"]]
        assert (result["oldestEventTime"], result["newestEventTime"]) == (min(times), max(times))
        seen.extend(result["events"])


def fields(**values: str) -> list[tuple[str, tuple[None, str]]]:
    """Text fields as parts of a multipart body (httpx sends `data` alone URL-encoded)."""
    return [(name, (None, value)) for name, value in values.items()]


def texts_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"]["text"] for e in events if e["eventType"] == "message" and "message" in e]


async def test_a_bot_lists_the_chats_with_their_order_and_last_message(srv: ServerProcess) -> None:
    shop = await a_shop(srv)
    await buyer_writes(srv, shop, ["Здравствуйте, юбка не подошла"])
    with wb(srv, shop.key) as bot:
        answer = bot.get("/api/v1/seller/chats")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["errors"] == []
    [chat] = body["result"]
    assert chat["chatID"] == shop.chat
    assert chat["clientName"] == shop.buyer.title()
    assert isinstance(chat["replySign"], str) and chat["replySign"]
    assert chat["goodCard"] == {
        "nmID": 140158860,
        "price": 118600,
        "priceCurrency": "RUB",
        "rid": shop.order,
        "size": "S",
    }
    assert chat["lastMessage"]["text"] == "Здравствуйте, юбка не подошла"
    now = time.time() * 1000
    assert now - 60_000 < chat["lastMessage"]["addTimestamp"] <= now + 1000


async def test_a_bot_follows_the_events_with_next_without_gaps_or_repeats(
    srv: ServerProcess,
) -> None:
    shop = await a_shop(srv)
    first_batch = [f"сообщение {n}" for n in range(7)]
    await buyer_writes(srv, shop, first_batch)
    with wb(srv, shop.key) as bot:
        seen, cursor = follow(bot, None, 3)
        # The chat's opening, the return request and the messages, in order, once each.
        ids = [e["eventID"] for e in seen]
        assert len(ids) == len(set(ids)) == 2 + len(first_batch)
        assert [e["eventType"] for e in seen] == ["message", "refund"] + ["message"] * 7
        assert [e["isNewChat"] for e in seen] == [True] + [False] * 8
        assert texts_of(seen[1:]) == first_batch
        # The marketplace opens a chat; the buyer writes the rest.
        assert [e["sender"] for e in seen] == ["wb"] + ["client"] * 8
        assert all(e["chatID"] == shop.chat for e in seen)
        assert all(e["clientName"] == shop.buyer.title() for e in seen)
        assert seen[1]["message"]["text"]  # the return request says what was asked

        # Later events: the `next` kept from the last page gets them and nothing before.
        time.sleep(0.05)
        since = int(time.time() * 1000)
        time.sleep(0.05)
        second_batch = [f"потом {n}" for n in range(5)]
        await buyer_writes(srv, shop, second_batch)
        later, _ = follow(bot, cursor, 2)
        assert texts_of(later) == second_batch and len(later) == 5
        assert not {e["eventID"] for e in later} & set(ids)

        # A first call from a Unix time in milliseconds starts at the first event after it.
        from_time, _ = follow(bot, str(since), 4)
        assert [e["eventID"] for e in from_time] == [e["eventID"] for e in later]
        assert all(e["addTimestamp"] >= since for e in from_time)


async def test_a_bot_replies_with_a_file_and_downloads_it(srv: ServerProcess) -> None:
    shop = await a_shop(srv)
    with wb(srv, shop.key) as bot:
        [chat] = bot.get("/api/v1/seller/chats").json()["result"]
        sent = bot.post(
            "/api/v1/seller/message",
            # With files, httpx sends `data` as parts of the same multipart body.
            data={"replySign": chat["replySign"], "message": "Пришлите фото бирки"},
            files=[("file", ("label.png", PNG, "image/png")), ("file", ("act.pdf", PDF, "x/y"))],
        )
        assert sent.status_code == 200, sent.text
        body = sent.json()
        assert body["errors"] == []
        assert body["result"]["chatID"] == shop.chat
        assert body["result"]["sign"] == chat["replySign"]
        assert abs(body["result"]["addTime"] - time.time() * 1000) < 60_000

        seen, _ = follow(bot, None, 100)
        reply = seen[-1]
        assert reply["sender"] == "seller" and reply["message"]["text"] == "Пришлите фото бирки"
        assert reply["addTimestamp"] == body["result"]["addTime"]
        attached = reply["message"]["attachments"]
        [image], [document] = attached["images"], attached["files"]
        assert (image["name"], image["contentType"]) == ("label.png", "image/png")
        assert document["contentType"] == "application/pdf"
        for file, content in ((image, PNG), (document, PDF)):
            got = bot.get(f"/api/v1/seller/download/{file['downloadID']}")
            assert got.status_code == 200 and got.content == content
            assert httpx.get(file["url"], headers={"Authorization": shop.key}).content == content
    # The buyer sees the shop's reply in the chat.
    async with connect(srv, token("buyer", shop.buyer)) as socket:
        page = await socket.request({"type": "history", "chat": shop.chat})
    assert page["events"][-1]["text"] == "Пришлите фото бирки"


async def test_another_shop_cannot_reply_with_a_forged_or_foreign_sign(
    srv: ServerProcess,
) -> None:
    mine, theirs = await a_shop(srv), await a_shop(srv)
    with wb(srv, mine.key) as bot:
        [chat] = bot.get("/api/v1/seller/chats").json()["result"]
        before_events = bot.get("/api/v1/seller/events").json()["result"]["events"]
    encoded = base64.urlsafe_b64encode(mine.chat.encode()).rstrip(b"=").decode()
    forged = [
        chat["replySign"],  # the sign made for the other shop
        f"{encoded}.{'A' * 43}",  # the chat, with a made-up signature
        mine.chat,  # the bare chat id
        "",
    ]
    with wb(srv, theirs.key) as intruder:
        for sign in forged:
            answer = intruder.post(
                "/api/v1/seller/message", files=fields(replySign=sign, message="Чужой ответ")
            )
            assert answer.status_code == 400, (sign, answer.text)
            assert answer.json()["error"]["code"] == "bad_frame"
        # Its own sign works: the refusals above are about the sign, not the request.
        [own] = intruder.get("/api/v1/seller/chats").json()["result"]
        ok = intruder.post(
            "/api/v1/seller/message", files=fields(replySign=own["replySign"], message="Свой")
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"]["chatID"] == theirs.chat
    with wb(srv, mine.key) as bot:
        after = bot.get("/api/v1/seller/events").json()["result"]["events"]
    assert after == before_events  # nothing was written into the chat of `mine`


def test_without_a_key_the_answer_is_401(srv: ServerProcess) -> None:
    seller = token("seller", uid("op"), seller=uid("shop"))
    for headers in (
        {},
        {"Authorization": "Bearer " + seller},
        {"Authorization": "chatd_" + "x" * 43},
    ):
        for method, path in (
            ("GET", "/api/v1/seller/chats"),
            ("GET", "/api/v1/seller/events"),
            ("POST", "/api/v1/seller/message"),
            ("GET", "/api/v1/seller/download/some-file"),
        ):
            answer = httpx.request(method, srv.http + path, headers=headers, timeout=10)
            assert answer.status_code == 401, (headers, path, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"


async def test_a_next_of_another_log_or_a_bad_time_is_refused(srv: ServerProcess) -> None:
    shop = await a_shop(srv)
    with wb(srv, shop.key) as bot:
        for bad in ("other-log.10", str(2**60)):
            answer = bot.get("/api/v1/seller/events", params={"next": bad})
            assert answer.status_code == 400, answer.text
