"""Assignment and private notes over real sockets and HTTP (docs/protocol.md, "The operator's
day"), on SQLite and on PostgreSQL.

`chat.assigned` and `note` are the shop's alone: one test walks every path by which a buyer
learns anything of a chat (live, the replay after a cursor, history, search, the chat list's
`last` and `unread`, attachments, the HTTP feed and history, a reconnect) and finds neither
their kinds nor their words, only gaps in `seq` where they stand, while the shop finds them
all; a manager sees them once the chat is disputed and not before. The frames' own rules
(who may, which operator, the text's bounds, nonces, API keys) and the shop's webhook and
WB-compatible feed follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.backends import PG_DSN, dsn_for, require_postgres, unique_name
from tests.e2e.api_keys import bearer, create_key
from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    drain,
    open_claim,
    start_server,
    token,
    uid,
    without_session,
)
from tests.e2e.webhook_receiver import Receiver

pytestmark = pytest.mark.timeout(120)

SHOP_ONLY = {"chat.assigned", "note"}
# Words that only the shop's notes hold: none of them may reach the buyer by any path.
SECRET = "пломбир"
LATE_SECRET = "мармелад"
FIRST_WORDS = "Здравствуйте, юбка пришла мятая"
ARGS = ("--webhook-allow-private", "--webhook-timeout", "2s", "--webhook-retries", "0.2s")


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[ServerProcess]:
    """`chatd serve` on a fresh PostgreSQL database of its own, dropped afterwards."""
    name = unique_name("chatd")

    async def run(sql: str) -> None:
        await require_postgres()
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        store = ("--store", dsn_for(name), "--files", str(root / "files"))
        process = start_server(root / "node.db", *store, *ARGS)
        try:
            yield process
        finally:
            process.stop()
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp(f"day-{request.param}")
    if request.param == "sqlite":
        process = start_server(root / "chatd.db", *ARGS)
        try:
            yield process
        finally:
            process.stop()
    else:
        with postgres_server(root) as process:
            yield process


# ---- a scene ---------------------------------------------------------------------------------


@dataclass
class Scene:
    buyer: Client
    anna: Client  # an operator of the shop
    buyer_id: str
    shop_id: str
    anna_id: str
    chat: str
    claim: str
    buyer_token: str
    anna_token: str


@contextlib.asynccontextmanager
async def scene_of(srv: ServerProcess) -> AsyncIterator[Scene]:
    """A buyer and an operator with a chat: seq 1 opened, 2 the return request, 3 a
    message of the buyer's."""
    buyer_id, shop_id, anna_id, order = uid("buyer"), uid("shop"), uid("anna"), uid("order")
    buyer_token = token("buyer", buyer_id, "Люда")
    anna_token = token("seller", anna_id, "Анна", seller=shop_id)
    async with connect(srv, buyer_token) as buyer, connect(srv, anna_token) as anna:
        chat, claim = await open_claim(srv, buyer, buyer_id, shop_id, order)
        sent = await buyer.request({"type": "send", "chat": chat, "text": FIRST_WORDS})
        assert sent["type"] == "ack", sent
        await anna.wait_events(3)
        yield Scene(buyer, anna, buyer_id, shop_id, anna_id, chat, claim, buyer_token, anna_token)


@pytest.fixture
async def scene(srv: ServerProcess) -> AsyncIterator[Scene]:
    async with scene_of(srv) as made:
        yield made


async def acked(client: Client, frame: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(frame)
    assert reply["type"] == "ack", reply
    return reply


def leaks(frames: Any) -> list[str]:
    """What of the shop's own events a set of frames (or an HTTP answer) holds."""
    text = json.dumps(frames, ensure_ascii=False).lower()
    found = [word for word in (SECRET, LATE_SECRET) if word in text]
    found += [kind for kind in SHOP_ONLY if f'"{kind}"' in text]
    found += ["assignee"] if '"assignee"' in text else []
    return found


def http_get(srv: ServerProcess, credential: str, path: str) -> Any:
    answer = httpx.get(srv.http + path, headers=bearer(credential), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def until_synced(client: Client) -> list[dict[str, Any]]:
    """Every frame a client reconnected with `since` gets up to its `synced`."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await client.next_frame()
        frames.append(frame)
        if frame["type"] == "synced":
            return frames


# ---- the buyer never learns of them; the shop sees them all ----------------------------------


async def test_no_path_shows_the_buyer_a_note_or_an_assignment(
    srv: ServerProcess, scene: Scene
) -> None:
    buyer, anna = scene.buyer, scene.anna
    before_notes = buyer.events[-1]["cursor"]
    boris_id = uid("boris")
    async with connect(srv, token("seller", boris_id, "Борис", seller=scene.shop_id)):
        pass  # Boris signed in once: the shop is known to have him.

    # seq 4 an assignment, 5 a note, 6 the shop's message, 7 a note after it.
    assigned = await acked(anna, {"type": "assign", "chat": scene.chat, "operator": boris_id})
    noted = await acked(
        anna, {"type": "note", "chat": scene.chat, "text": f"Покупательница любит {SECRET}"}
    )
    answered = await acked(anna, {"type": "send", "chat": scene.chat, "text": "Примем юбку"})
    late = await acked(
        anna, {"type": "note", "chat": scene.chat, "text": f"Потом {LATE_SECRET} и {SECRET}"}
    )
    assert [a["seq"] for a in (assigned, noted, answered, late)] == [4, 5, 6, 7]
    await anna.wait_events(7)
    await buyer.wait_events(4)
    live = await drain(buyer, 0.3)

    # Live: the buyer got its message and nothing else; a gap stands where they are.
    assert [e["seq"] for e in buyer.events] == [1, 2, 3, 6], buyer.events
    assert leaks(buyer.events) == [] and leaks(live) == []

    # The replay after a cursor, on a new connection.
    async with connect(srv, scene.buyer_token, since=before_notes) as again:
        replayed = await until_synced(again)
        assert [f["seq"] for f in replayed if f["type"] == "event"] == [6]
        assert leaks(replayed) == []
        # From the very beginning too (the replay's pages are the feed).
        first = buyer.events[0]["cursor"]
    async with connect(srv, scene.buyer_token, since=first) as again:
        replayed = await until_synced(again)
        assert [f["seq"] for f in replayed if f["type"] == "event"] == [2, 3, 6]

    # History, in full and page by page: each page counts only what the buyer may see.
    page = await buyer.request({"type": "history", "chat": scene.chat})
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 6] and not page["more"]
    newest = await buyer.request({"type": "history", "chat": scene.chat, "limit": 2})
    assert [e["seq"] for e in newest["events"]] == [3, 6] and newest["more"]
    older = await buyer.request({"type": "history", "chat": scene.chat, "before": 6, "limit": 1})
    assert [e["seq"] for e in older["events"]] == [3] and older["more"]

    # Search, everywhere and in the chat.
    found = await buyer.request({"type": "search", "q": SECRET})
    assert found == {"type": "results", "id": found["id"], "events": []}
    found = await buyer.request({"type": "search", "q": LATE_SECRET, "chat": scene.chat})
    assert found["events"] == []
    found = await buyer.request({"type": "search", "q": "юбку"})
    assert [e["seq"] for e in found["events"]] == [6]

    # The chat list: `last` is the shop's message, never the note after it; no assignee.
    listed = await buyer.request({"type": "chats"})
    [summary] = [c for c in listed["chats"] if c["chat"] == scene.chat]
    assert summary["last"]["seq"] == 6 and summary["last"]["kind"] == "message"
    assert "assignee" not in summary
    # Unread: the shop's message alone, however many notes (2 and 3 are the buyer's own).
    assert summary["unread"] == 1
    await buyer.send_raw(json.dumps({"type": "read", "chat": scene.chat, "seq": 6}))
    await buyer.next_frame("read")
    listed = await buyer.request({"type": "chats"})
    [summary] = [c for c in listed["chats"] if c["chat"] == scene.chat]
    assert summary["unread"] == 0

    # Attachments hold nothing of them.
    files = await buyer.request({"type": "attachments", "chat": scene.chat})
    assert files["type"] == "attachments" and leaks(files) == []

    # Over HTTP: the feed, the history and the chat list.
    feed = http_get(srv, scene.buyer_token, "/api/v1/events")
    assert [e["seq"] for e in feed["events"] if e["chat"] == scene.chat] == [1, 2, 3, 6]
    history = http_get(srv, scene.buyer_token, f"/api/v1/chats/{scene.chat}/history")
    assert [e["seq"] for e in history["events"]] == [1, 2, 3, 6]
    chats = http_get(srv, scene.buyer_token, "/api/v1/chats")
    for answer in (feed, history, chats, listed, page, newest, older):
        assert leaks(answer) == [], answer

    # The shop sees every one of them, in every path.
    assert [e["seq"] for e in anna.events] == [1, 2, 3, 4, 5, 6, 7]
    kinds = {e["seq"]: e["kind"] for e in anna.events}
    assert (kinds[4], kinds[5], kinds[7]) == ("chat.assigned", "note", "note")
    assigned_event = next(e for e in anna.events if e["seq"] == 4)
    assert assigned_event["author"]["role"] == "system" and "text" not in assigned_event
    assert assigned_event["data"]["operator"] == {"id": boris_id, "name": "Борис"}
    assert assigned_event["data"]["by"] == {"id": scene.anna_id, "name": "Анна"}
    note_event = next(e for e in anna.events if e["seq"] == 5)
    assert note_event["author"]["operator"] == {"id": scene.anna_id, "name": "Анна"}
    shop_page = await anna.request({"type": "history", "chat": scene.chat})
    assert [e["seq"] for e in shop_page["events"]] == [1, 2, 3, 4, 5, 6, 7]
    shop_found = await anna.request({"type": "search", "q": SECRET})
    assert [e["seq"] for e in shop_found["events"]] == [7, 5]
    shop_list = await anna.request({"type": "chats"})
    [shop_summary] = [c for c in shop_list["chats"] if c["chat"] == scene.chat]
    assert shop_summary["assignee"] == {"id": boris_id, "name": "Борис"}
    assert shop_summary["last"]["seq"] == 6
    # The buyer's request and message; the shop's own notes are nothing for it to read.
    assert shop_summary["unread"] == 2
    shop_feed = http_get(srv, scene.anna_token, "/api/v1/events")
    assert [e["seq"] for e in shop_feed["events"] if e["chat"] == scene.chat] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]


async def test_a_manager_sees_them_only_once_the_chat_is_disputed(
    srv: ServerProcess, scene: Scene
) -> None:
    await acked(scene.anna, {"type": "note", "chat": scene.chat, "text": f"До спора {SECRET}"})
    await acked(scene.anna, {"type": "assign", "chat": scene.chat, "operator": scene.anna_id})
    async with connect(srv, token("manager", uid("mgr"), "Менеджер")) as manager:
        for frame in (
            {"type": "history", "chat": scene.chat},
            {"type": "search", "q": SECRET, "chat": scene.chat},
        ):
            reply = await manager.request(frame)
            assert reply["code"] == "not_found", reply
        found = await manager.request({"type": "search", "q": SECRET})
        assert found["events"] == []
        listed = await manager.request({"type": "chats"})
        assert scene.chat not in [c["chat"] for c in listed["chats"]]

        await acked(scene.anna, {"type": "return.reject", "claim": scene.claim})
        await acked(scene.buyer, {"type": "return.dispute", "claim": scene.claim})
        # seq 6 rejected, 7 disputed; a note after the dispute reaches the managers live.
        await acked(scene.anna, {"type": "note", "chat": scene.chat, "text": "После спора"})
        await manager.wait_events(2)
        assert [(e["seq"], e["kind"]) for e in manager.events] == [
            (7, "return.disputed"),
            (8, "note"),
        ]
        page = await manager.request({"type": "history", "chat": scene.chat})
        assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5, 6, 7, 8]
        found = await manager.request({"type": "search", "q": SECRET, "chat": scene.chat})
        assert [e["seq"] for e in found["events"]] == [4]
        listed = await manager.request({"type": "chats"})
        [summary] = [c for c in listed["chats"] if c["chat"] == scene.chat]
        assert summary["assignee"] == {"id": scene.anna_id, "name": "Анна"}
    # The buyer, disputing, still learns nothing of them.
    page = await scene.buyer.request({"type": "history", "chat": scene.chat})
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 6, 7]
    assert leaks(page) == [] and leaks(scene.buyer.events) == []


# ---- the frames' own rules -------------------------------------------------------------------


async def test_who_may_assign_whom(srv: ServerProcess, scene: Scene) -> None:
    chat = scene.chat
    # Take: to oneself, with the token's name.
    await acked(scene.anna, {"type": "assign", "chat": chat, "operator": scene.anna_id})
    # An operator the shop was never seen to have is `not_found`, and nothing is appended.
    stranger = await scene.anna.request({"type": "assign", "chat": chat, "operator": uid("x")})
    assert stranger["code"] == "not_found" and stranger["message"] == "no such operator"
    # Another shop's operator, signed in, is none of this shop's.
    rival_shop = uid("shop")
    rival_id = uid("rival")
    async with connect(srv, token("seller", rival_id, "Чужой", seller=rival_shop)) as rival:
        mine = await scene.anna.request({"type": "assign", "chat": chat, "operator": rival_id})
        assert mine["code"] == "not_found", mine
        # ...and cannot touch the chat: answered as for a chat that does not exist.
        for frame in (
            {"type": "assign", "chat": chat, "operator": None},
            {"type": "note", "chat": chat, "text": "Чужая заметка"},
        ):
            foreign = await rival.request(frame)
            missing = await rival.request({**frame, "chat": "c" + "0" * 20})
            assert foreign["code"] == "not_found", foreign
            assert without_session({**foreign, "id": 0}) == without_session({**missing, "id": 0})
    # Give back to nobody.
    await acked(scene.anna, {"type": "assign", "chat": chat, "operator": None})
    # The buyer and a manager may not.
    for frame in (
        {"type": "assign", "chat": chat, "operator": None},
        {"type": "note", "chat": chat, "text": "Заметка покупателя"},
    ):
        refused = await scene.buyer.request(frame)
        assert refused["code"] == "forbidden", refused
    # `operator` must be sent, null included.
    malformed = await scene.anna.request({"type": "assign", "chat": chat})
    assert malformed["code"] == "bad_frame", malformed
    page = await scene.anna.request({"type": "history", "chat": chat})
    assigned = [e["data"]["operator"] for e in page["events"] if e["kind"] == "chat.assigned"]
    assert assigned == [{"id": scene.anna_id, "name": "Анна"}, None]
    listed = await scene.anna.request({"type": "chats"})
    [summary] = [c for c in listed["chats"] if c["chat"] == chat]
    assert summary["assignee"] is None


async def test_a_notes_text_and_nonce(srv: ServerProcess, scene: Scene) -> None:
    chat = scene.chat
    for text, message in (("   ", "empty"), ("я" * 1001, "1001 characters")):
        refused = await scene.anna.request({"type": "note", "chat": chat, "text": text})
        assert refused["code"] == "bad_frame" and message in refused["message"], refused
    # No contacts filter: the buyer never reads it.
    phone = "Покупатель просил перезвонить: +7 916 123-45-67"
    first = await acked(scene.anna, {"type": "note", "chat": chat, "text": phone, "nonce": "n1"})
    again = await acked(scene.anna, {"type": "note", "chat": chat, "text": phone, "nonce": "n1"})
    assert (again["seq"], again["cursor"]) == (first["seq"], first["cursor"])
    refused = await scene.anna.request({"type": "send", "chat": chat, "text": phone})
    assert refused["code"] == "contacts_forbidden", refused
    page = await scene.anna.request({"type": "history", "chat": chat})
    assert [e["kind"] for e in page["events"]].count("note") == 1


async def test_the_shops_operators_over_http(srv: ServerProcess, scene: Scene) -> None:
    boris_token = token("seller", uid("boris"), "Борис", seller=scene.shop_id)
    listed = http_get(srv, boris_token, "/api/v1/operators")
    # Anna signed in on a socket, Boris by asking: both are known now, by name.
    assert [o["name"] for o in listed["operators"]] == ["Анна", "Борис"]
    assert {"id": scene.anna_id, "name": "Анна"} in listed["operators"]
    for credential in (scene.buyer_token, token("manager", uid("mgr"))):
        answer = httpx.get(srv.http + "/api/v1/operators", headers=bearer(credential))
        assert answer.status_code == 403, answer.text
    other = http_get(
        srv, token("seller", uid("op"), "Вера", seller=uid("shop")), "/api/v1/operators"
    )
    assert [o["name"] for o in other["operators"]] == ["Вера"]


async def test_an_api_key_assigns_and_notes_within_its_scopes(
    srv: ServerProcess, scene: Scene
) -> None:
    writer = create_key(srv, scene.anna_token, "Бот", ("chat:read", "chat:write"))["key"]
    reader = create_key(srv, scene.anna_token, "Читатель", ("chat:read",))["key"]
    async with connect(srv, writer) as bot, connect(srv, reader) as watcher:
        done = await acked(bot, {"type": "assign", "chat": scene.chat, "operator": scene.anna_id})
        await acked(bot, {"type": "note", "chat": scene.chat, "text": "Заметка бота"})
        # A key is no operator: it cannot take the chat.
        key_id = bot.welcome["user"]["id"]
        taken = await bot.request({"type": "assign", "chat": scene.chat, "operator": key_id})
        assert taken["code"] == "not_found", taken
        for frame in (
            {"type": "assign", "chat": scene.chat, "operator": None},
            {"type": "note", "chat": scene.chat, "text": "Нельзя"},
        ):
            refused = await watcher.request(frame)
            assert refused["code"] == "forbidden", refused
            assert refused["details"]["scope"] == "chat:write"
        await watcher.wait_events(2)
        assert [e["kind"] for e in watcher.events] == ["chat.assigned", "note"]
        assert watcher.events[0]["seq"] == done["seq"]
        # Assigned by a key: no operator assigned it.
        assert "by" not in watcher.events[0]["data"]


async def test_the_shops_own_webhook_gets_them_and_the_wb_feed_leaves_them_out(
    srv: ServerProcess, scene: Scene
) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        created = httpx.post(
            srv.http + "/api/v1/webhooks",
            json={"url": receiver.url(), "events": ["*"]},
            headers=bearer(scene.anna_token),
            timeout=10,
        )
        assert created.status_code == 201, created.text
        await acked(scene.anna, {"type": "note", "chat": scene.chat, "text": f"Вебхук {SECRET}"})
        await acked(scene.anna, {"type": "send", "chat": scene.chat, "text": "Ответ магазина"})
        for _ in range(200):
            if len(receiver.received) >= 2:
                break
            await asyncio.sleep(0.05)
        kinds = [r.payload["type"] for r in receiver.received]
        assert kinds[:2] == ["note", "message"], kinds
        assert receiver.received[0].payload["data"]["text"] == f"Вебхук {SECRET}"
    finally:
        receiver.stop()
    key = create_key(srv, scene.anna_token, "WB", ("chat:read",))["key"]
    answer = httpx.get(
        srv.http + "/api/v1/seller/events?limit=1000", headers={"Authorization": key}
    )
    assert answer.status_code == 200, answer.text
    events = [e for e in answer.json()["result"]["events"] if e["chatID"] == scene.chat]
    assert [e["message"]["text"] for e in events if "message" in e][-1] == "Ответ магазина"
    assert leaks(answer.json()) == []
