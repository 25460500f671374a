"""The return stories of the seller portal's help page, end to end over real sockets
(docs/protocol.md sections 3, 4, 6, 7, 8): a buyer, two operators of the shop and a manager on
separate connections, the marketplace back end over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from tests.e2e.harness import (
    Client,
    ServerProcess,
    chat_events,
    connect,
    drain,
    get_balances,
    get_sales_rows,
    module_server,
    order_body,
    post_logistics,
    register_order,
    token,
    uid,
)
from tests.e2e.returns_scene import Scene, assert_error, rfc3339
from tests.e2e.returns_scene import scene_of as shared_scene_of

pytestmark = pytest.mark.timeout(60)

MARKETPLACE = "Wildberries"
# Moscow has kept UTC+3 all year since 2014: the marketplace's default time zone.
MOSCOW = timezone(timedelta(hours=3))

SKIRT_PRICE = {"value": 118600, "currency": "RUB"}
SKIRT_T1 = (
    'Здравствуйте! Хочу вернуть товар "Юбка короткая плиссе со складками, бренд SK - Line, '
    'размер S, артикул 140158860, товар получен 17.08.2023"'
)
FILM_PRICE = {"value": 2753, "currency": "BYN"}
FILM_T1 = (
    'Здравствуйте! Хочу вернуть товар "защитная пленка для Galaxy S23, бренд Samsung, '
    'артикул 170589710, товар получен 17.08.2023"'
)

APPROVED = "Процедура возврата согласована."
REJECTED = "Процедура возврата отменена продавцом."
DISPUTED = (
    "Покупатель оспорил решение продавца. Заявка передана на рассмотрение менеджеру Wildberries."
)
RESOLVED_APPROVED = "Менеджер Wildberries одобрил возврат."
RESOLVED_REJECTED = "Менеджер Wildberries отклонил возврат. Товар остаётся у покупателя."
HANDED_IN = "Товар сдан в пункт выдачи."
ARRIVED = "Товар поступил на склад."
REFUND_ISSUED = "Денежные средства возвращены на баланс покупателя."
NO_DEFECT = "Недостатков не обнаружено, товар будет отправлен на продажу."
DEFECT = "Склад обнаружил недостатки, товар будет возвращён продавцу."
AWAITING_BUYER = "Ожидание подтверждения возврата покупателем."

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "returns-stories") as process:
        yield process


def scene_of(srv: ServerProcess) -> contextlib.AbstractAsyncContextManager[Scene]:
    return shared_scene_of(srv, buyer_name="Тимур")


def skirt(scene: Scene, **overrides: Any) -> dict[str, Any]:
    body = order_body(uid("order"), scene.buyer_id, scene.shop_id)
    body["buyer"] = {"id": scene.buyer_id, "name": "Тимур"}
    body.update(overrides)
    return body


def film(scene: Scene) -> dict[str, Any]:
    body = skirt(
        scene,
        article="170589710",
        name="защитная пленка для Galaxy S23",
        brand="Samsung",
        price=FILM_PRICE,
    )
    del body["size"], body["color"]
    return body


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def assert_ack(reply: dict[str, Any], chat: str, seq: int) -> None:
    assert reply["type"] == "ack", reply
    assert (reply["chat"], reply["seq"]) == (chat, seq), reply
    assert isinstance(reply["cursor"], str), reply


def assert_card(card: dict[str, Any], body: dict[str, Any]) -> None:
    """The order card as registered; `non_returnable` false may also be left out (the
    strict shape has a test of its own)."""
    assert {k: v for k, v in card.items() if k != "non_returnable"} == {
        k: v for k, v in body.items() if k != "non_returnable"
    }
    assert card.get("non_returnable", False) == body["non_returnable"]


def assert_system(event: dict[str, Any], seq: int, kind: str, text: str) -> None:
    assert (event["seq"], event["kind"]) == (seq, kind), event
    assert event["author"]["role"] == "system", event
    assert event["author"]["name"] == MARKETPLACE, event
    assert event["text"] == text, event


def assert_gapless(events: list[dict[str, Any]], kinds: list[str]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(kinds) + 1))
    assert [e["kind"] for e in events] == kinds


async def events_at(clients: tuple[Client, ...], chat: str, count: int) -> list[list[dict]]:
    return [await chat_events(client, chat, count) for client in clients]


async def event_of(client: Client, chat: str, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The first event of `kind` in `chat` that a reading client got, once it is there."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [e for e in client.events if e["chat"] == chat and e["kind"] == kind]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no {kind} in {chat}"
        await asyncio.sleep(0.01)


async def summary_of(client: Client, chat: str) -> dict[str, Any]:
    page = await client.request({"type": "chats", "limit": 100})
    assert page["type"] == "chats", page
    found = [c for c in page["chats"] if c["chat"] == chat]
    assert len(found) == 1, page
    return found[0]


async def open_chat(scene: Scene, order: dict[str, Any]) -> str:
    register_order_ok(scene, order)
    opened = await scene.buyer.request(
        {"type": "open", "seller": scene.shop_id, "order": order["id"]}
    )
    assert opened["type"] == "ack" and opened["seq"] == 1, opened
    return opened["chat"]  # type: ignore[no-any-return]


def register_order_ok(scene: Scene, order: dict[str, Any]) -> None:
    response = register_order(scene.srv, order)
    assert response.status_code == 201, response.text


async def request_return(scene: Scene, chat: str, order: dict[str, Any], seq: int) -> str:
    ack = await scene.buyer.request({"type": "return.request", "chat": chat, "order": order["id"]})
    assert_ack(ack, chat, seq)
    assert isinstance(ack.get("claim"), str) and ack["claim"], ack
    return ack["claim"]  # type: ignore[no-any-return]


# ---- 1. approval to a pickup point ------------------------------------------------------------


async def test_approval_to_a_pickup_point(srv: ServerProcess) -> None:
    async with scene_of(srv) as scene:
        order = skirt(scene)
        chat = await open_chat(scene, order)
        claim = await request_return(scene, chat, order, 2)

        for events in await events_at(scene.sides, chat, 2):
            requested = events[1]
            assert (requested["seq"], requested["kind"]) == (2, "return.requested")
            assert requested["author"] == {"role": "buyer", "id": scene.buyer_id, "name": "Тимур"}
            assert requested["text"] == SKIRT_T1
            assert set(requested["data"]) == {"claim", "order", "amount", "attachments"}
            assert requested["data"]["attachments"] == []
            assert requested["data"]["claim"] == claim
            assert requested["data"]["amount"] == SKIRT_PRICE
            assert_card(requested["data"]["order"], order)
        requested_at = when(scene.anna.events[1]["at"])

        summary = await summary_of(scene.anna, chat)
        assert summary["reply_due"] is not None
        assert when(summary["reply_due"]) == requested_at + timedelta(days=10)
        [entry] = summary["claims"]
        assert {k: v for k, v in entry.items() if k != "due"} == {
            "claim": claim,
            "order": order["id"],
            "state": "requested",
        }
        # The shop's deadline for its decision (version 1.1), 10 days by default.
        assert when(entry["due"]) == requested_at + timedelta(days=10)
        assert summary["unread"] == 1

        approved = await scene.anna.request(
            {"type": "return.approve", "claim": claim, "mode": "pvz", "amount": SKIRT_PRICE}
        )
        assert_ack(approved, chat, 3)
        for events in await events_at(scene.sides, chat, 3):
            assert_system(events[2], 3, "return.approved", APPROVED)
            assert events[2]["data"] == {"claim": claim, "mode": "pvz", "amount": SKIRT_PRICE}
        # The goods have not come back yet: no money moved.
        assert get_balances(srv, scene.buyer_token) == []
        assert get_balances(srv, scene.shop_token) == []
        assert get_sales_rows(srv, scene.shop_token) == []
        summary = await summary_of(scene.oleg, chat)
        assert summary["reply_due"] is None
        assert summary["claims"] == [
            {"claim": claim, "order": order["id"], "state": "approved", "due": None}
        ]

        response = post_logistics(srv, order["id"], "handed_in")
        assert response.status_code == 200, response.text
        for events in await events_at(scene.sides, chat, 4):
            assert_system(events[3], 4, "return.handed_in", HANDED_IN)
            assert events[3]["data"] == {"claim": claim}
        assert get_balances(srv, scene.buyer_token) == []

        response = post_logistics(srv, order["id"], "arrived")
        assert response.status_code == 200, response.text
        for events in await events_at(scene.sides, chat, 6):
            assert_system(events[4], 5, "return.arrived", ARRIVED)
            assert events[4]["data"] == {"claim": claim}
            assert_system(events[5], 6, "refund.issued", REFUND_ISSUED)
            assert events[5]["data"] == {"claim": claim, "amount": SKIRT_PRICE}

        assert get_balances(srv, scene.buyer_token) == [SKIRT_PRICE]
        assert get_balances(srv, scene.shop_token) == [{"value": -118600, "currency": "RUB"}]
        rows = get_sales_rows(srv, scene.shop_token)
        assert len(rows) == 1, rows
        row = rows[0]
        assert set(row) == {"at", "order", "article", "name", "amount", "reason"}
        assert row["order"] == order["id"]
        assert row["article"] == "140158860"
        assert row["name"] == "Юбка короткая плиссе со складками"
        assert row["amount"] == {"value": -118600, "currency": "RUB"}
        assert row["reason"] == "Возврат"
        assert RFC3339_UTC.match(row["at"]), row

        response = post_logistics(srv, order["id"], "inspected", defect=False)
        assert response.status_code == 200, response.text
        kinds = [
            "chat.opened",
            "return.requested",
            "return.approved",
            "return.handed_in",
            "return.arrived",
            "refund.issued",
            "return.inspected",
        ]
        for events in await events_at(scene.sides, chat, 7):
            assert_system(events[6], 7, "return.inspected", NO_DEFECT)
            assert events[6]["data"] == {"claim": claim, "defect": False}
        await asyncio.sleep(0.3)
        for client in scene.sides:
            assert_gapless([e for e in client.events if e["chat"] == chat], kinds)
        # One refund only, whatever the inspection found.
        assert get_balances(srv, scene.buyer_token) == [SKIRT_PRICE]
        assert len(get_sales_rows(srv, scene.shop_token)) == 1


async def test_inspection_with_a_defect(srv: ServerProcess) -> None:
    async with scene_of(srv) as scene:
        order = skirt(scene)
        chat = await open_chat(scene, order)
        claim = await request_return(scene, chat, order, 2)
        approved = await scene.oleg.request(
            {"type": "return.approve", "claim": claim, "mode": "pvz", "amount": SKIRT_PRICE}
        )
        assert_ack(approved, chat, 3)
        for event in ("handed_in", "arrived"):
            response = post_logistics(srv, order["id"], event)
            assert response.status_code == 200, response.text
        response = post_logistics(srv, order["id"], "inspected", defect=True)
        assert response.status_code == 200, response.text
        for events in await events_at(scene.sides, chat, 7):
            assert_system(events[6], 7, "return.inspected", DEFECT)
            assert events[6]["data"] == {"claim": claim, "defect": True}
        await asyncio.sleep(0.3)
        for client in scene.sides:
            assert_gapless(
                [e for e in client.events if e["chat"] == chat],
                [
                    "chat.opened",
                    "return.requested",
                    "return.approved",
                    "return.handed_in",
                    "return.arrived",
                    "refund.issued",
                    "return.inspected",
                ],
            )
        assert get_balances(srv, scene.buyer_token) == [SKIRT_PRICE]


# ---- 2. refusal, dispute, a manager's decision --------------------------------------------------


async def test_refusal_dispute_and_manager_approval(srv: ServerProcess) -> None:
    manager_token = token("manager", uid("mgr"), "Менеджер")
    async with connect(srv, manager_token) as manager, scene_of(srv) as scene:
        order = film(scene)
        chat = await open_chat(scene, order)
        claim = await request_return(scene, chat, order, 2)
        for events in await events_at(scene.sides, chat, 2):
            assert events[1]["text"] == FILM_T1
            assert events[1]["data"]["amount"] == FILM_PRICE
            assert_card(events[1]["data"]["order"], order)

        rejected = await scene.anna.request({"type": "return.reject", "claim": claim})
        assert_ack(rejected, chat, 3)
        for events in await events_at(scene.sides, chat, 3):
            assert_system(events[2], 3, "return.rejected", REJECTED)
            assert events[2]["data"] == {"claim": claim}
        summary = await summary_of(scene.anna, chat)
        assert summary["claims"] == [
            {"claim": claim, "order": order["id"], "state": "rejected", "due": None}
        ]

        # Before the dispute the chat is not the manager's to see.
        assert [f for f in await drain(manager) if f.get("chat") == chat] == []
        assert [e for e in manager.events if e.get("chat") == chat] == []
        hidden = await manager.request({"type": "history", "chat": chat})
        assert_error(hidden, "not_found")
        page = await manager.request({"type": "chats", "limit": 100})
        assert chat not in [c["chat"] for c in page["chats"]]

        disputed = await scene.buyer.request({"type": "return.dispute", "claim": claim})
        assert_ack(disputed, chat, 4)
        for client in (*scene.sides, manager):
            event = await event_of(client, chat, "return.disputed")
            assert_system(event, 4, "return.disputed", DISPUTED)
            assert event["data"] == {"claim": claim}
        again = await scene.buyer.request({"type": "return.dispute", "claim": claim})
        assert_error(again, "conflict")

        summary = await summary_of(manager, chat)
        assert summary["unread"] == 0
        assert summary["buyer"]["id"] == scene.buyer_id
        assert summary["seller"]["id"] == scene.shop_id
        assert summary["claims"] == [
            {"claim": claim, "order": order["id"], "state": "disputed", "due": None}
        ]
        assert summary["last"]["seq"] == 4

        resolved = await manager.request(
            {"type": "return.resolve", "claim": claim, "decision": "approve", "mode": "no_return"}
        )
        assert_ack(resolved, chat, 5)
        for events in await events_at(scene.sides, chat, 6):
            assert_system(events[4], 5, "return.resolved", RESOLVED_APPROVED)
            assert events[4]["data"] == {"claim": claim, "decision": "approve", "mode": "no_return"}
            assert_system(events[5], 6, "refund.issued", REFUND_ISSUED)
            assert events[5]["data"] == {"claim": claim, "amount": FILM_PRICE}
        mine = await chat_events(manager, chat, 3)
        assert [e["seq"] for e in mine] == [4, 5, 6]
        assert [e["kind"] for e in mine] == ["return.disputed", "return.resolved", "refund.issued"]
        assert mine[1]["text"] == RESOLVED_APPROVED

        assert get_balances(srv, scene.buyer_token) == [FILM_PRICE]
        assert get_balances(srv, scene.shop_token) == [{"value": -2753, "currency": "BYN"}]
        rows = get_sales_rows(srv, scene.shop_token)
        assert [(r["order"], r["amount"], r["reason"]) for r in rows] == [
            (order["id"], {"value": -2753, "currency": "BYN"}, "Возврат")
        ]

        await asyncio.sleep(0.3)
        kinds = [
            "chat.opened",
            "return.requested",
            "return.rejected",
            "return.disputed",
            "return.resolved",
            "refund.issued",
        ]
        for client in scene.sides:
            assert_gapless([e for e in client.events if e["chat"] == chat], kinds)
        assert len([e for e in manager.events if e["chat"] == chat]) == 3
        after = await manager.request(
            {"type": "return.resolve", "claim": claim, "decision": "reject"}
        )
        assert_error(after, "conflict")


async def test_manager_reads_the_whole_history_after_a_dispute(srv: ServerProcess) -> None:
    """docs/protocol.md 2: a manager sees a disputed chat's feed from the dispute on, but
    `history`, `search` and `attachments` in full."""
    manager_token = token("manager", uid("mgr"), "Менеджер")
    async with scene_of(srv) as scene:
        order = film(scene)
        chat = await open_chat(scene, order)
        claim = await request_return(scene, chat, order, 2)
        assert (await scene.anna.request({"type": "return.reject", "claim": claim}))["seq"] == 3
        assert (await scene.buyer.request({"type": "return.dispute", "claim": claim}))["seq"] == 4
        async with connect(srv, manager_token) as manager:
            history = await manager.request({"type": "history", "chat": chat})
            assert history["type"] == "history", history
            assert [e["seq"] for e in history["events"]] == [1, 2, 3, 4]
            assert history["more"] is False
            assert history["events"][1]["text"] == FILM_T1


async def test_manager_rejection_ends_the_claim(srv: ServerProcess) -> None:
    manager_token = token("manager", uid("mgr"), "Менеджер")
    async with connect(srv, manager_token) as manager, scene_of(srv) as scene:
        order = film(scene)
        chat = await open_chat(scene, order)
        claim = await request_return(scene, chat, order, 2)
        assert_ack(await scene.anna.request({"type": "return.reject", "claim": claim}), chat, 3)
        assert_ack(await scene.buyer.request({"type": "return.dispute", "claim": claim}), chat, 4)
        resolved = await manager.request(
            {"type": "return.resolve", "claim": claim, "decision": "reject"}
        )
        assert_ack(resolved, chat, 5)
        for client in (*scene.sides, manager):
            event = await event_of(client, chat, "return.resolved")
            assert_system(event, 5, "return.resolved", RESOLVED_REJECTED)
            assert event["data"]["claim"] == claim
            assert event["data"]["decision"] == "reject"
            assert event["data"].get("mode") is None

        summary = await summary_of(scene.anna, chat)
        assert summary["claims"] == [
            {"claim": claim, "order": order["id"], "state": "resolved_rejected", "due": None}
        ]

        # Nothing more: the claim is over.
        for client, frame in [
            (manager, {"type": "return.resolve", "claim": claim, "decision": "reject"}),
            (
                manager,
                {
                    "type": "return.resolve",
                    "claim": claim,
                    "decision": "approve",
                    "mode": "no_return",
                },
            ),
            (scene.buyer, {"type": "return.dispute", "claim": claim}),
            (
                scene.anna,
                {"type": "return.approve", "claim": claim, "mode": "pvz", "amount": FILM_PRICE},
            ),
            (scene.oleg, {"type": "return.reject", "claim": claim}),
        ]:
            assert_error(await client.request(frame), "conflict")
        again = await scene.buyer.request(
            {"type": "return.request", "chat": chat, "order": order["id"]}
        )
        assert_error(again, "return_already_requested")
        response = post_logistics(srv, order["id"], "handed_in")
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "conflict"

        await asyncio.sleep(0.3)
        kinds = [
            "chat.opened",
            "return.requested",
            "return.rejected",
            "return.disputed",
            "return.resolved",
        ]
        for client in scene.sides:
            assert_gapless([e for e in client.events if e["chat"] == chat], kinds)
        assert get_balances(srv, scene.buyer_token) == []
        assert get_balances(srv, scene.shop_token) == []
        assert get_sales_rows(srv, scene.shop_token) == []


# ---- 3. the shop's offer awaiting the buyer ----------------------------------------------------


async def test_shop_offer_awaiting_the_buyer(srv: ServerProcess) -> None:
    async with scene_of(srv) as scene:
        received = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        purchased = received - timedelta(days=1)
        order = skirt(scene, purchased_at=rfc3339(purchased), received_at=rfc3339(received))
        chat = await open_chat(scene, order)

        early = await scene.buyer.request(
            {"type": "return.request", "chat": chat, "order": order["id"]}
        )
        assert_error(early, "return_too_early")
        assert "«Проверка товара»" in early["message"]
        opens_at = early["details"]["opens_at"]
        assert RFC3339_UTC.match(opens_at), early
        # The calendar day of purchase + 14 in Moscow, from its midnight there (version 1.1).
        opens_on = purchased.astimezone(MOSCOW).date() + timedelta(days=14)
        assert when(opens_at) == datetime.combine(opens_on, time(0), tzinfo=MOSCOW)

        initiated = await scene.anna.request(
            {"type": "return.initiate", "chat": chat, "order": order["id"]}
        )
        assert_ack(initiated, chat, 2)
        claim = initiated.get("claim")
        assert isinstance(claim, str) and claim, initiated
        offer = (
            "Продавец предлагает оформить возврат товара «Юбка короткая плиссе со складками». "
            "Чтобы продолжить, нажмите «Вернуть товар»."
        )
        buyer_events, anna_events, oleg_events = await events_at(scene.sides, chat, 2)
        assert_system(buyer_events[1], 2, "return.initiated", offer)
        assert_system(anna_events[1], 2, "return.initiated", AWAITING_BUYER)
        assert_system(oleg_events[1], 2, "return.initiated", AWAITING_BUYER)
        for event in (buyer_events[1], anna_events[1], oleg_events[1]):
            assert set(event["data"]) == {"claim", "order"}
            assert event["data"]["claim"] == claim
            assert_card(event["data"]["order"], order)
        summary = await summary_of(scene.anna, chat)
        [entry] = summary["claims"]
        assert (entry["claim"], entry["order"], entry["state"]) == (
            claim,
            order["id"],
            "awaiting_buyer",
        )
        # The buyer's deadline for taking up the offer (version 1.1), 14 days by default.
        assert when(entry["due"]) == when(anna_events[1]["at"]) + timedelta(days=14)
        twice = await scene.oleg.request(
            {"type": "return.initiate", "chat": chat, "order": order["id"]}
        )
        assert_error(twice, "conflict")

        accepted = await scene.buyer.request(
            {"type": "return.request", "chat": chat, "order": order["id"]}
        )
        assert_ack(accepted, chat, 3)
        assert accepted["claim"] == claim
        day = received.astimezone(MOSCOW).strftime("%d.%m.%Y")
        for events in await events_at(scene.sides, chat, 3):
            requested = events[2]
            assert (requested["seq"], requested["kind"]) == (3, "return.requested")
            assert requested["author"] == {"role": "buyer", "id": scene.buyer_id, "name": "Тимур"}
            assert requested["text"] == SKIRT_T1.replace("17.08.2023", day)
            assert requested["data"]["claim"] == claim
            assert requested["data"]["amount"] == SKIRT_PRICE
        summary = await summary_of(scene.anna, chat)
        [entry] = summary["claims"]
        assert (entry["claim"], entry["state"]) == (claim, "requested")
        # From the buyer's request on, the shop's deadline replaces the offer's.
        requested_at = when((await events_at(scene.sides, chat, 3))[1][2]["at"])
        assert when(entry["due"]) == requested_at + timedelta(days=10)

        approved = await scene.oleg.request(
            {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": SKIRT_PRICE}
        )
        assert_ack(approved, chat, 4)
        kinds = [
            "chat.opened",
            "return.initiated",
            "return.requested",
            "return.approved",
            "refund.issued",
        ]
        for events in await events_at(scene.sides, chat, 5):
            assert_system(events[3], 4, "return.approved", APPROVED)
            assert events[3]["data"] == {"claim": claim, "mode": "no_return", "amount": SKIRT_PRICE}
            assert_system(events[4], 5, "refund.issued", REFUND_ISSUED)
        await asyncio.sleep(0.3)
        for client in scene.sides:
            assert_gapless([e for e in client.events if e["chat"] == chat], kinds)
        assert get_balances(srv, scene.buyer_token) == [SKIRT_PRICE]
        assert get_balances(srv, scene.shop_token) == [{"value": -118600, "currency": "RUB"}]


# ---- the order card's shape --------------------------------------------------------------------


async def test_order_card_in_events_carries_every_field(srv: ServerProcess) -> None:
    """docs/protocol.md 8: the card in events carries the fields of the order, `non_returnable`
    (not optional) among them."""
    async with scene_of(srv) as scene:
        order = skirt(scene)
        offered = skirt(scene)
        register_order_ok(scene, offered)
        chat = await open_chat(scene, order)
        await request_return(scene, chat, order, 2)
        initiated = await scene.anna.request(
            {"type": "return.initiate", "chat": chat, "order": offered["id"]}
        )
        assert_ack(initiated, chat, 3)
        opened, requested, offer = (await chat_events(scene.anna, chat, 3))[:3]
        answer = await scene.anna.request({"type": "attachments", "chat": chat})
        tab = {entry["order"]["id"]: entry["order"] for entry in answer["orders"]}
        cards = {
            "chat.opened": (opened["data"]["order"], order),
            "return.requested": (requested["data"]["order"], order),
            "return.initiated": (offer["data"]["order"], offered),
            "attachments": (tab[order["id"]], order),
            "attachments (offered)": (tab[offered["id"]], offered),
        }
        wrong = {
            where: {
                "missing": sorted(set(body) - set(card)),
                "differs": sorted(k for k in set(body) & set(card) if card[k] != body[k]),
                "extra": sorted(set(card) - set(body)),
            }
            for where, (card, body) in cards.items()
            if card != body
        }
        assert wrong == {}
