"""The rules of returns through the chat over real sockets (docs/protocol.md 3, 4, 7, 8, 9):
refusals with their codes, two operators approving at once, and the orders tab of the
`attachments` answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import (
    ServerProcess,
    chat_events,
    connect,
    get_balances,
    get_sales_rows,
    module_server,
    order_body,
    post_logistics,
    register_order,
    token,
    uid,
)
from tests.e2e.returns_scene import Scene, assert_error, rfc3339, scene_of

pytestmark = pytest.mark.timeout(60)

PRICE = {"value": 118600, "currency": "RUB"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "returns-rules") as process:
        yield process


@pytest.fixture
async def scene(srv: ServerProcess) -> AsyncIterator[Scene]:
    async with scene_of(srv) as made:
        yield made


def assert_http_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error


async def assert_nothing_new(scene: Scene, count: int) -> None:
    """The chat still has `count` events, and no socket got more."""
    for client in scene.sides:
        await chat_events(client, scene.chat, count)
    await asyncio.sleep(0.3)
    assert [e["seq"] for e in await scene.history()] == list(range(1, count + 1))
    for client in scene.sides:
        assert len([e for e in client.events if e["chat"] == scene.chat]) == count


# ---- 4. refusals ---------------------------------------------------------------------------------


async def test_non_returnable_order_may_be_returned_at_once(scene: Scene) -> None:
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    order = scene.order(
        name="Витамин D3, 60 капсул",
        brand="Эвалар",
        size=None,
        received_at=rfc3339(received),
        non_returnable=True,
    )
    assert "size" not in order
    await scene.open(order)
    ack = await scene.request_return(order)
    assert ack["type"] == "ack", ack
    assert (ack["chat"], ack["seq"]) == (scene.chat, 2)
    events = await chat_events(scene.anna, scene.chat, 2)
    assert events[1]["kind"] == "return.requested"
    assert events[1]["data"]["claim"] == ack["claim"]


async def test_order_not_bought_out_is_a_conflict(scene: Scene) -> None:
    order = scene.order(received_at=None)
    assert "received_at" not in order
    await scene.open(order)
    assert_error(await scene.request_return(order), "conflict")
    offer = await scene.anna.request(
        {"type": "return.initiate", "chat": scene.chat, "order": order["id"]}
    )
    assert_error(offer, "conflict")
    await assert_nothing_new(scene, 1)


async def test_a_second_request_is_refused_in_any_state(scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    assert_error(await scene.request_return(order), "return_already_requested")
    rejected = await scene.anna.request({"type": "return.reject", "claim": claim})
    assert rejected["type"] == "ack", rejected
    assert_error(await scene.request_return(order), "return_already_requested")
    disputed = await scene.buyer.request({"type": "return.dispute", "claim": claim})
    assert disputed["type"] == "ack", disputed
    assert_error(await scene.request_return(order), "return_already_requested")

    paid = scene.order()
    paid_claim = await scene.claim_of(paid)
    approved = await scene.oleg.request(
        {"type": "return.approve", "claim": paid_claim, "mode": "no_return", "amount": PRICE}
    )
    assert approved["type"] == "ack", approved
    assert_error(await scene.request_return(paid), "return_already_requested")
    await assert_nothing_new(scene, 7)


async def test_approval_with_another_amount_is_amount_mismatch(scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    for mode, amount in [
        ("pvz", {"value": 118500, "currency": "RUB"}),
        ("no_return", {"value": 59300, "currency": "RUB"}),
        ("pvz", {"value": 118600, "currency": "BYN"}),
        ("no_return", {"value": 118600, "currency": "KZT"}),
    ]:
        reply = await scene.anna.request(
            {"type": "return.approve", "claim": claim, "mode": mode, "amount": amount}
        )
        assert_error(reply, "amount_mismatch")
    await assert_nothing_new(scene, 2)
    assert get_balances(scene.srv, scene.buyer_token) == []
    assert get_balances(scene.srv, scene.shop_token) == []
    # The claim is still waiting for the shop's decision.
    approved = await scene.anna.request(
        {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": PRICE}
    )
    assert approved["type"] == "ack" and approved["seq"] == 3, approved


async def test_roles_that_may_not_press_a_button_are_forbidden(
    srv: ServerProcess, scene: Scene
) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    approve = {"type": "return.approve", "claim": claim, "mode": "pvz", "amount": PRICE}
    assert_error(await scene.buyer.request(approve), "forbidden")
    assert_error(await scene.buyer.request({"type": "return.reject", "claim": claim}), "forbidden")
    dispute = {"type": "return.dispute", "claim": claim}
    assert_error(await scene.anna.request(dispute), "forbidden")
    request = {"type": "return.request", "chat": scene.chat, "order": order["id"]}
    assert_error(await scene.anna.request(request), "forbidden")
    initiate = {"type": "return.initiate", "chat": scene.chat, "order": order["id"]}
    assert_error(await scene.buyer.request(initiate), "forbidden")
    async with connect(srv, token("manager", uid("mgr"), "Менеджер")) as manager:
        assert_error(await manager.request(approve), "forbidden")
    await assert_nothing_new(scene, 2)


async def test_a_foreign_shop_gets_not_found(srv: ServerProcess, scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    stranger = token("seller", uid("op"), "Чужой", seller=uid("shop"))
    async with connect(srv, stranger) as foreign:
        approve = {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": PRICE}
        assert_error(await foreign.request(approve), "not_found")
        assert_error(await foreign.request({"type": "return.reject", "claim": claim}), "not_found")
        initiate = {"type": "return.initiate", "chat": scene.chat, "order": order["id"]}
        assert_error(await foreign.request(initiate), "not_found")
    await assert_nothing_new(scene, 2)
    assert get_balances(srv, scene.buyer_token) == []


async def test_resolve_approve_without_mode_is_bad_frame(srv: ServerProcess, scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    assert (await scene.anna.request({"type": "return.reject", "claim": claim}))["type"] == "ack"
    assert (await scene.buyer.request({"type": "return.dispute", "claim": claim}))["type"] == "ack"
    async with connect(srv, token("manager", uid("mgr"), "Менеджер")) as manager:
        reply = await manager.request(
            {"type": "return.resolve", "claim": claim, "decision": "approve"}
        )
        assert_error(reply, "bad_frame")
        await assert_nothing_new(scene, 4)
        # The frame wrote nothing: the claim is still the managers' to decide.
        resolved = await manager.request(
            {"type": "return.resolve", "claim": claim, "decision": "approve", "mode": "pvz"}
        )
        assert resolved["type"] == "ack" and resolved["seq"] == 5, resolved


async def test_logistics_out_of_order_is_a_conflict(srv: ServerProcess, scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    # Requested but not approved: the goods have nowhere to go yet.
    for event in ("handed_in", "arrived", "inspected"):
        assert_http_error(post_logistics(srv, order["id"], event), 409, "conflict")
    approved = await scene.anna.request(
        {"type": "return.approve", "claim": claim, "mode": "pvz", "amount": PRICE}
    )
    assert approved["type"] == "ack", approved
    for event in ("arrived", "inspected"):
        assert_http_error(post_logistics(srv, order["id"], event), 409, "conflict")
    assert post_logistics(srv, order["id"], "handed_in").status_code == 200
    for event in ("handed_in", "inspected"):
        assert_http_error(post_logistics(srv, order["id"], event), 409, "conflict")
    assert post_logistics(srv, order["id"], "arrived").status_code == 200
    assert_http_error(post_logistics(srv, order["id"], "arrived"), 409, "conflict")
    assert post_logistics(srv, order["id"], "inspected", defect=False).status_code == 200
    for event in ("handed_in", "arrived", "inspected"):
        assert_http_error(post_logistics(srv, order["id"], event), 409, "conflict")
    await assert_nothing_new(scene, 7)
    assert get_balances(srv, scene.buyer_token) == [PRICE]

    # An approval without return has no goods to move.
    kept = scene.order()
    kept_claim = await scene.claim_of(kept)
    approved = await scene.anna.request(
        {"type": "return.approve", "claim": kept_claim, "mode": "no_return", "amount": PRICE}
    )
    assert approved["type"] == "ack", approved
    assert_http_error(post_logistics(srv, kept["id"], "handed_in"), 409, "conflict")


async def test_logistics_for_an_unknown_order_is_not_found(srv: ServerProcess) -> None:
    assert_http_error(post_logistics(srv, uid("no-such-order"), "handed_in"), 404, "not_found")


# ---- 5. two operators approving at once ----------------------------------------------------------


@pytest.mark.parametrize("round_", range(5))
async def test_two_operators_approving_at_once_refund_once(scene: Scene, round_: int) -> None:
    order = scene.order()
    await scene.open(order)
    claim = await scene.claim_of(order)
    frame = {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": PRICE}
    replies = await asyncio.gather(scene.anna.request(frame), scene.oleg.request(frame))
    acks = [r for r in replies if r["type"] == "ack"]
    errors = [r for r in replies if r["type"] == "error"]
    assert len(acks) == 1 and len(errors) == 1, replies
    assert (acks[0]["chat"], acks[0]["seq"]) == (scene.chat, 3)
    assert_error(errors[0], "conflict")

    for client in scene.sides:
        await chat_events(client, scene.chat, 4)
    await asyncio.sleep(0.3)
    for client in scene.sides:
        events = [e for e in client.events if e["chat"] == scene.chat]
        assert [e["kind"] for e in events] == [
            "chat.opened",
            "return.requested",
            "return.approved",
            "refund.issued",
        ]
        assert [e["seq"] for e in events] == [1, 2, 3, 4]
    history = await scene.history()
    assert [e["kind"] for e in history].count("refund.issued") == 1
    assert get_balances(scene.srv, scene.buyer_token) == [PRICE]
    assert get_balances(scene.srv, scene.shop_token) == [{"value": -118600, "currency": "RUB"}]
    rows = get_sales_rows(scene.srv, scene.shop_token)
    assert [(r["order"], r["amount"], r["reason"]) for r in rows] == [
        (order["id"], {"value": -118600, "currency": "RUB"}, "Возврат")
    ]


# ---- 6. the orders tab of `attachments` ----------------------------------------------------------


async def test_attachments_list_the_buyers_orders_with_their_claims(
    srv: ServerProcess, scene: Scene
) -> None:
    plain = scene.order()
    requested = scene.order(name="Платье летнее", article="150000001")
    refunded = scene.order(name="Кроссовки беговые", article="150000002", size="42")
    offered = scene.order(name="Джинсы женские суперслим", article="1234567895", size="42")
    # Orders that are not this buyer's from this shop stay out.
    other_shop = order_body(uid("order"), scene.buyer_id, uid("shop"))
    other_buyer = order_body(uid("order"), uid("buyer"), scene.shop_id)
    for body in (other_shop, other_buyer):
        assert register_order(srv, body).status_code == 201

    await scene.open(plain)
    requested_claim = await scene.claim_of(requested)
    refunded_claim = await scene.claim_of(refunded)
    approved = await scene.anna.request(
        {"type": "return.approve", "claim": refunded_claim, "mode": "no_return", "amount": PRICE}
    )
    assert approved["type"] == "ack", approved
    initiated = await scene.oleg.request(
        {"type": "return.initiate", "chat": scene.chat, "order": offered["id"]}
    )
    assert initiated["type"] == "ack" and initiated.get("claim"), initiated

    expected = {
        plain["id"]: (plain, None, None),
        requested["id"]: (requested, requested_claim, "requested"),
        refunded["id"]: (refunded, refunded_claim, "approved"),
        offered["id"]: (offered, initiated["claim"], "awaiting_buyer"),
    }
    for client in (scene.buyer, scene.anna):
        answer = await client.request({"type": "attachments", "chat": scene.chat})
        assert answer["type"] == "attachments", answer
        assert answer["chat"] == scene.chat
        assert answer["photos"] == [] and answer["files"] == []
        entries = {entry["order"]["id"]: entry for entry in answer["orders"]}
        assert len(answer["orders"]) == len(entries) == 4, answer["orders"]
        assert set(entries) == set(expected)
        for order_id, (body, claim, state) in expected.items():
            entry = entries[order_id]
            card = entry["order"]
            assert {k: v for k, v in card.items() if k != "non_returnable"} == {
                k: v for k, v in body.items() if k != "non_returnable"
            }
            assert card.get("non_returnable", False) is False
            assert entry.get("claim") == claim, entry
            assert entry.get("state") == state, entry
