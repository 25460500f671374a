"""Who may see and touch a chat (docs/protocol.md sections 2 and 9): another buyer's or another
shop's chat is `not_found` for every frame that names it or its claim, with the very answer a
nonexistent id gets; a role that may not act is `forbidden`; outsiders never hear events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    drain,
    module_server,
    open_claim,
    token,
    uid,
    without_session,
)

pytestmark = pytest.mark.timeout(60)

MISSING_CHAT = "c" + "0" * 20
MISSING_CLAIM = "r" + "0" * 20
FULL_PRICE = {"value": 118600, "currency": "RUB"}
FIRST_WORDS = "Здравствуйте, юбка пришла мятая"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "access") as process:
        yield process


@dataclass
class Scene:
    """A buyer and a shop with a chat: one message and a requested return."""

    buyer: Client
    shop: Client
    buyer_id: str
    shop_id: str
    chat: str
    claim: str
    order: str
    seqs: list[int]


@contextlib.asynccontextmanager
async def scene_of(srv: ServerProcess) -> AsyncIterator[Scene]:
    buyer_id, shop_id, order = uid("buyer"), uid("shop"), uid("order")
    async with (
        connect(srv, token("buyer", buyer_id, "Люда")) as buyer,
        connect(srv, token("seller", uid("op"), "Анна", seller=shop_id)) as shop,
    ):
        chat, claim = await open_claim(srv, buyer, buyer_id, shop_id, order)
        sent = await buyer.request({"type": "send", "chat": chat, "text": FIRST_WORDS})
        assert sent["type"] == "ack", sent
        page = await buyer.request({"type": "history", "chat": chat})
        seqs = [e["seq"] for e in page["events"]]
        assert seqs == [1, 2, 3], page
        await shop.wait_events(3)
        await drain(buyer, 0.05)
        await drain(shop, 0.05)
        buyer.events.clear()
        shop.events.clear()
        yield Scene(buyer, shop, buyer_id, shop_id, chat, claim, order, seqs)


@pytest.fixture
async def scene(srv: ServerProcess) -> AsyncIterator[Scene]:
    async with scene_of(srv) as made:
        yield made


def fill(frame: dict[str, Any], chat: str, claim: str, order: str) -> dict[str, Any]:
    text = json.dumps(frame).replace("{chat}", chat).replace("{claim}", claim)
    return json.loads(text.replace("{order}", order))  # type: ignore[no-any-return]


def without_id(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if k != "id"}


async def assert_untouched(scene: Scene) -> None:
    """The chat's log is as it was, and neither side heard anything."""
    page = await scene.buyer.request({"type": "history", "chat": scene.chat})
    assert [e["seq"] for e in page["events"]] == scene.seqs
    assert await drain(scene.buyer) == []
    assert await drain(scene.shop, 0) == []


async def assert_hidden(scene: Scene, outsider: Client, template: dict[str, Any]) -> None:
    """`template` on the scene's chat is `not_found`, answered exactly as for a missing id."""
    foreign = await outsider.request(fill(template, scene.chat, scene.claim, scene.order))
    missing = await outsider.request(fill(template, MISSING_CHAT, MISSING_CLAIM, scene.order))
    assert foreign["type"] == "error" and foreign["code"] == "not_found", foreign
    assert missing["type"] == "error" and missing["code"] == "not_found", missing
    assert without_id(foreign) == without_id(missing), (foreign, missing)
    assert "details" not in without_session(foreign), foreign


CHAT_FRAMES: dict[str, dict[str, Any]] = {
    "send": {"type": "send", "chat": "{chat}", "text": "Привет, это не ваш чат"},
    "send_with_nonce": {"type": "send", "chat": "{chat}", "text": "Привет", "nonce": "n-1"},
    "read": {"type": "read", "chat": "{chat}", "seq": 1},
    "history": {"type": "history", "chat": "{chat}"},
    "history_before": {"type": "history", "chat": "{chat}", "before": 3, "limit": 1},
    "search": {"type": "search", "q": "юбка", "chat": "{chat}"},
    "attachments": {"type": "attachments", "chat": "{chat}"},
    "typing": {"type": "typing", "chat": "{chat}"},
}
BUYER_FRAMES: dict[str, dict[str, Any]] = {
    **CHAT_FRAMES,
    "return.request": {"type": "return.request", "chat": "{chat}", "order": "{order}"},
    "return.dispute": {"type": "return.dispute", "claim": "{claim}"},
}
SHOP_FRAMES: dict[str, dict[str, Any]] = {
    **CHAT_FRAMES,
    "return.initiate": {"type": "return.initiate", "chat": "{chat}", "order": "{order}"},
    "return.approve": {
        "type": "return.approve",
        "claim": "{claim}",
        "mode": "no_return",
        "amount": FULL_PRICE,
    },
    "return.reject": {"type": "return.reject", "claim": "{claim}"},
    # The operator's day: another shop's operator neither assigns nor notes here.
    "assign": {"type": "assign", "chat": "{chat}", "operator": None},
    "note": {"type": "note", "chat": "{chat}", "text": "Заметка чужого магазина"},
}
MANAGER_FRAMES: dict[str, dict[str, Any]] = {
    "history": {"type": "history", "chat": "{chat}"},
    "search": {"type": "search", "q": "юбка", "chat": "{chat}"},
    "attachments": {"type": "attachments", "chat": "{chat}"},
    "read": {"type": "read", "chat": "{chat}", "seq": 1},
    "return.resolve_reject": {"type": "return.resolve", "claim": "{claim}", "decision": "reject"},
    "return.resolve_approve": {
        "type": "return.resolve",
        "claim": "{claim}",
        "decision": "approve",
        "mode": "no_return",
    },
}


@pytest.mark.parametrize("template", BUYER_FRAMES.values(), ids=BUYER_FRAMES.keys())
async def test_another_buyers_chat_is_not_found(
    srv: ServerProcess, scene: Scene, template: dict[str, Any]
) -> None:
    async with connect(srv, token("buyer", uid("stranger"), "Чужой")) as stranger:
        await assert_hidden(scene, stranger, template)
    await assert_untouched(scene)


@pytest.mark.parametrize("template", SHOP_FRAMES.values(), ids=SHOP_FRAMES.keys())
async def test_another_shops_chat_is_not_found(
    srv: ServerProcess, scene: Scene, template: dict[str, Any]
) -> None:
    async with connect(srv, token("seller", uid("op"), "Чужой", seller=uid("shop"))) as rival:
        await assert_hidden(scene, rival, template)
    await assert_untouched(scene)


@pytest.mark.parametrize("template", MANAGER_FRAMES.values(), ids=MANAGER_FRAMES.keys())
async def test_manager_before_a_dispute_gets_not_found(
    srv: ServerProcess, scene: Scene, template: dict[str, Any]
) -> None:
    async with connect(srv, token("manager", uid("mgr"), "Менеджер")) as manager:
        await assert_hidden(scene, manager, template)
    await assert_untouched(scene)


async def test_another_shop_cannot_register_a_claim_on_a_foreign_order(
    srv: ServerProcess, scene: Scene
) -> None:
    """A foreign shop naming its own chat and someone else's order learns nothing either."""
    rival_shop = uid("shop")
    async with (
        connect(srv, token("buyer", scene.buyer_id)) as buyer_tab,
        connect(srv, token("seller", uid("op"), seller=rival_shop)) as rival,
    ):
        own = await buyer_tab.request({"type": "open", "seller": rival_shop})
        assert own["type"] == "ack", own
        foreign = await rival.request(
            {"type": "return.initiate", "chat": own["chat"], "order": scene.order}
        )
        missing = await rival.request(
            {"type": "return.initiate", "chat": own["chat"], "order": uid("order")}
        )
        assert foreign["type"] == "error" and foreign["code"] == "not_found", foreign
        assert without_id(foreign) == without_id(missing)
    page = await scene.buyer.request({"type": "history", "chat": scene.chat})
    assert [e["seq"] for e in page["events"]] == scene.seqs


# ---- roles ---------------------------------------------------------------------------------

ROLE_ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "seller_open": ("shop", {"type": "open", "seller": "{shop}"}),
    "seller_return.request": (
        "shop",
        {"type": "return.request", "chat": "{chat}", "order": "{order}"},
    ),
    "seller_return.dispute": ("shop", {"type": "return.dispute", "claim": "{claim}"}),
    "seller_return.resolve": (
        "shop",
        {"type": "return.resolve", "claim": "{claim}", "decision": "reject"},
    ),
    "buyer_return.approve": (
        "buyer",
        {"type": "return.approve", "claim": "{claim}", "mode": "pvz", "amount": FULL_PRICE},
    ),
    "buyer_return.reject": ("buyer", {"type": "return.reject", "claim": "{claim}"}),
    "buyer_return.initiate": (
        "buyer",
        {"type": "return.initiate", "chat": "{chat}", "order": "{order}"},
    ),
    "buyer_return.resolve": (
        "buyer",
        {"type": "return.resolve", "claim": "{claim}", "decision": "approve", "mode": "pvz"},
    ),
    "buyer_assign": ("buyer", {"type": "assign", "chat": "{chat}", "operator": None}),
    "buyer_note": ("buyer", {"type": "note", "chat": "{chat}", "text": "Моя заметка"}),
}


@pytest.mark.parametrize(("who", "template"), ROLE_ERRORS.values(), ids=ROLE_ERRORS.keys())
async def test_role_may_not_is_forbidden(scene: Scene, who: str, template: dict[str, Any]) -> None:
    client = scene.buyer if who == "buyer" else scene.shop
    frame = fill(template, scene.chat, scene.claim, scene.order)
    frame = json.loads(json.dumps(frame).replace("{shop}", scene.shop_id))
    reply = await client.request(frame)
    assert reply["type"] == "error" and reply["code"] == "forbidden", reply
    await assert_untouched(scene)


async def test_manager_may_not_open(srv: ServerProcess) -> None:
    async with connect(srv, token("manager", uid("mgr"))) as manager:
        reply = await manager.request({"type": "open", "seller": uid("shop")})
        assert reply["type"] == "error" and reply["code"] == "forbidden", reply


# ---- outsiders hear nothing ----------------------------------------------------------------


async def test_outsiders_receive_no_events(srv: ServerProcess) -> None:
    async with (
        connect(srv, token("buyer", uid("stranger"))) as stranger,
        connect(srv, token("seller", uid("op"), seller=uid("shop"))) as rival,
        connect(srv, token("manager", uid("mgr"))) as manager,
        scene_of(srv) as scene,
    ):
        shop_reply = await scene.shop.request(
            {"type": "send", "chat": scene.chat, "text": "Юбку заберём, оформим возврат"}
        )
        assert shop_reply["type"] == "ack", shop_reply
        await scene.buyer.send_raw(json.dumps({"type": "read", "chat": scene.chat, "seq": 4}))
        await scene.shop.send_raw(json.dumps({"type": "read", "chat": scene.chat, "seq": 3}))
        await scene.buyer.next_frame("read")
        await scene.buyer.next_frame("read")
        approved = await scene.shop.request(
            {
                "type": "return.approve",
                "claim": scene.claim,
                "mode": "no_return",
                "amount": FULL_PRICE,
            }
        )
        assert approved["type"] == "ack", approved
        await scene.buyer.wait_events(3)
        for outsider in (stranger, rival, manager):
            assert await drain(outsider, 0.3) == [], outsider.welcome["user"]
            assert outsider.events == []
            listed = await outsider.request({"type": "chats"})
            assert listed["type"] == "chats", listed
            assert scene.chat not in [c["chat"] for c in listed["chats"]]
            found = await outsider.request({"type": "search", "q": "юбка"})
            assert found["type"] == "results", found
            assert [e for e in found["events"] if e["chat"] == scene.chat] == []


# ---- a manager after the dispute -----------------------------------------------------------


async def test_manager_after_a_dispute_sees_the_chat_in_full(srv: ServerProcess) -> None:
    async with scene_of(srv) as scene:
        rejected = await scene.shop.request({"type": "return.reject", "claim": scene.claim})
        assert rejected["type"] == "ack", rejected
        disputed = await scene.buyer.request({"type": "return.dispute", "claim": scene.claim})
        assert disputed["type"] == "ack", disputed
        async with connect(srv, token("manager", uid("mgr"))) as manager:
            page = await manager.request({"type": "history", "chat": scene.chat})
            assert page["type"] == "history", page
            assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5], page
            found = await manager.request({"type": "search", "q": "мятая", "chat": scene.chat})
            assert found["type"] == "results", found
            assert [e["seq"] for e in found["events"]] == [3], found
