"""Version 1.1 of the returns over real sockets: `welcome.version`, the buyer's comment and
photos on a request, the shop's reason, the manager's comment, the shop withdrawing its offer,
and the deadlines in chat summaries; bad evidence refused with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    ServerProcess,
    chat_events,
    connect,
    module_server,
    token,
    uid,
    without_session,
)
from tests.e2e.returns_scene import Scene, assert_error, scene_of

pytestmark = pytest.mark.timeout(60)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
REJECTED = "Процедура возврата отменена продавцом."
RESOLVED_REJECTED = "Менеджер Wildberries отклонил возврат. Товар остаётся у покупателя."
WITHDRAWN = "Продавец отозвал предложение о возврате."


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "returns-v11") as process:
        yield process


@pytest.fixture
async def scene(srv: ServerProcess) -> AsyncIterator[Scene]:
    async with scene_of(srv, buyer_name="Тимур") as made:
        yield made


def upload(srv: ServerProcess, tok: str, name: str) -> dict[str, Any]:
    response = httpx.post(
        srv.http + "/api/v1/files",
        files={"file": (name, JPEG, "application/octet-stream")},
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def download(srv: ServerProcess, tok: str, file_id: str) -> int:
    response = httpx.get(
        f"{srv.http}/api/v1/files/{file_id}",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )
    return response.status_code


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def summary_of(scene: Scene) -> dict[str, Any]:
    page = await scene.anna.request({"type": "chats", "limit": 100})
    assert page["type"] == "chats", page
    found = [c for c in page["chats"] if c["chat"] == scene.chat]
    assert len(found) == 1, page
    return found[0]  # type: ignore[no-any-return]


async def test_welcome_says_version_1_1(scene: Scene) -> None:
    for client in scene.sides:
        assert (client.welcome["protocol"], client.welcome["version"]) == (1, "1.1")


async def test_evidence_and_reasons_travel_with_the_claim_to_the_manager(
    srv: ServerProcess, scene: Scene
) -> None:
    order = scene.order()
    await scene.open(order)
    photo = upload(srv, scene.buyer_token, "шов.jpg")
    comment = "Юбка порвалась по шву после первой носки"

    ack = await scene.buyer.request(
        {
            "type": "return.request",
            "chat": scene.chat,
            "order": order["id"],
            "comment": f"  {comment}\n",
            "attachments": [photo["id"]],
        }
    )
    assert ack["type"] == "ack" and ack["seq"] == 2, ack
    claim = ack["claim"]
    for client in scene.sides:
        requested = (await chat_events(client, scene.chat, 2))[1]
        assert requested["kind"] == "return.requested"
        assert requested["text"].startswith('Здравствуйте! Хочу вернуть товар "Юбка')
        assert requested["data"]["comment"] == comment
        assert requested["data"]["attachments"] == [
            {"id": photo["id"], "name": "шов.jpg", "mime": "image/jpeg", "size": len(JPEG)}
        ]
    # The photo is the chat's now: the shop may open it and it is among the chat's photos.
    assert download(srv, scene.shop_token, photo["id"]) == 200
    tab = await scene.anna.request({"type": "attachments", "chat": scene.chat})
    assert [p["id"] for p in tab["photos"]] == [photo["id"]], tab

    # The shop's deadline shows in the summary and bounds the reply deadline.
    summary = await summary_of(scene)
    [entry] = summary["claims"]
    assert (entry["claim"], entry["state"]) == (claim, "requested")
    requested_at = when((await chat_events(scene.anna, scene.chat, 2))[1]["at"])
    assert when(entry["due"]) == requested_at + timedelta(days=10)
    assert when(summary["reply_due"]) <= when(entry["due"])

    rejected = await scene.oleg.request(
        {"type": "return.reject", "claim": claim, "reason": "Следы носки на фото"}
    )
    assert rejected["type"] == "ack", rejected
    for client in scene.sides:
        event = (await chat_events(client, scene.chat, 3))[2]
        assert (event["kind"], event["text"]) == ("return.rejected", REJECTED)
        assert event["data"] == {"claim": claim, "reason": "Следы носки на фото"}
    assert (await summary_of(scene))["claims"][0]["due"] is None

    disputed = await scene.buyer.request({"type": "return.dispute", "claim": claim})
    assert disputed["type"] == "ack", disputed
    async with connect(srv, token("manager", uid("manager"), "Менеджер")) as manager:
        # The manager sees the evidence and the reason before deciding.
        page = await manager.request({"type": "history", "chat": scene.chat})
        data = {e["kind"]: e["data"] for e in page["events"]}
        assert data["return.requested"]["comment"] == comment
        assert data["return.rejected"]["reason"] == "Следы носки на фото"
        resolved = await manager.request(
            {
                "type": "return.resolve",
                "claim": claim,
                "decision": "reject",
                "comment": "На фото видны следы носки",
            }
        )
        assert resolved["type"] == "ack", resolved
    event = (await chat_events(scene.buyer, scene.chat, 5))[4]
    assert (event["kind"], event["text"]) == ("return.resolved", RESOLVED_REJECTED)
    assert event["data"] == {
        "claim": claim,
        "decision": "reject",
        "comment": "На фото видны следы носки",
    }

    # What each wrote is searched with its event: the comment, the reason, the decision's.
    for words, kind in (
        ("порвалась шву", "return.requested"),
        ("следы носки", "return.resolved"),
        ("носки на фото", "return.rejected"),
    ):
        found = await scene.anna.request({"type": "search", "q": words, "chat": scene.chat})
        assert kind in [e["kind"] for e in found["events"]], (words, found)


async def test_bad_evidence_is_refused_and_nothing_is_written(
    srv: ServerProcess, scene: Scene
) -> None:
    order = scene.order()
    await scene.open(order)
    frame = {"type": "return.request", "chat": scene.chat, "order": order["id"]}
    too_long = await scene.buyer.request({**frame, "comment": "ж" * 1001})
    assert_error(too_long, "bad_frame")
    assert "1000" in too_long["message"]
    contacts = await scene.buyer.request({**frame, "comment": "Звоните 8 916 123-45-67"})
    assert_error(contacts, "contacts_forbidden")
    assert without_session(contacts)["details"] == {"field": "comment", "spans": [[8, 23]]}
    foreign = upload(srv, token("buyer", uid("buyer")), "чужое.jpg")
    assert_error(await scene.buyer.request({**frame, "attachments": [foreign["id"]]}), "not_found")
    assert_error(await scene.buyer.request({**frame, "attachments": "f1"}), "bad_frame")
    # An overlong text is a malformed frame: answered so before the role or the claim.
    overlong = {"type": "return.reject", "claim": "no-such-claim", "reason": "ж" * 501}
    assert_error(await scene.buyer.request(overlong), "bad_frame")
    assert_error(await scene.anna.request(overlong), "bad_frame")
    assert_error(await scene.anna.request({**overlong, "reason": "ж" * 500}), "not_found")

    await asyncio.sleep(0.3)
    history = await scene.history()
    assert [e["kind"] for e in history] == ["chat.opened"]
    assert (await summary_of(scene))["claims"] == []
    # The same request without the bad parts goes through.
    assert (await scene.buyer.request(frame))["type"] == "ack"


async def test_the_shop_withdraws_its_offer(scene: Scene) -> None:
    order = scene.order()
    await scene.open(order)
    offered = await scene.anna.request(
        {"type": "return.initiate", "chat": scene.chat, "order": order["id"]}
    )
    assert offered["type"] == "ack", offered
    claim = offered["claim"]
    entry = (await summary_of(scene))["claims"][0]
    offered_at = when((await chat_events(scene.anna, scene.chat, 2))[1]["at"])
    assert (entry["state"], when(entry["due"])) == (
        "awaiting_buyer",
        offered_at + timedelta(days=14),
    )

    assert_error(
        await scene.buyer.request({"type": "return.withdraw", "claim": claim}), "forbidden"
    )
    # Another shop learns nothing of the claim: the answer of an id that names nothing.
    async with connect(scene.srv, token("seller", uid("op"), "Чужой", seller=uid("shop"))) as other:
        foreign = await other.request({"type": "return.withdraw", "claim": claim})
        missing = await other.request({"type": "return.withdraw", "claim": "r-no-such-claim"})
    assert_error(foreign, "not_found")
    assert (foreign["message"], without_session(foreign).get("details")) == (
        missing["message"],
        None,
    )
    withdrawn = await scene.oleg.request({"type": "return.withdraw", "claim": claim})
    assert withdrawn["type"] == "ack" and withdrawn["seq"] == 3 and withdrawn["claim"] == claim
    for client in scene.sides:
        event = (await chat_events(client, scene.chat, 3))[2]
        assert (event["kind"], event["text"]) == ("return.withdrawn", WITHDRAWN)
        assert event["author"]["role"] == "system"
        assert event["data"] == {"claim": claim}
    assert (await summary_of(scene))["claims"] == [
        {"claim": claim, "order": order["id"], "state": "closed", "due": None}
    ]
    assert_error(await scene.request_return(order), "conflict")
    assert_error(await scene.anna.request({"type": "return.withdraw", "claim": claim}), "conflict")
    await asyncio.sleep(0.3)
    assert len(await scene.history()) == 3
