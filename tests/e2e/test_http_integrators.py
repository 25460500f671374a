"""HTTP without a socket, against a real `chatd serve`: the feed of events with long-poll
(across a restart), sending with `Idempotency-Key` (JSON and multipart), claims with the
actions each user may take now, JSON errors for every status, and the HTTP rate limits."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import (
    ServerProcess,
    connect,
    open_claim,
    order_body,
    register_order,
    token,
    uid,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
GIF = b"GIF89a" + b"\x00" * 50


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def open_chat(server: ServerProcess, buyer: str, shop: str) -> str:
    """The buyer's chat with the shop, opened over the socket (`open` has no HTTP route)."""
    async with connect(server, token("buyer", buyer)) as client:
        opened = await client.request({"type": "open", "seller": shop})
    assert opened["type"] == "ack", opened
    return str(opened["chat"])


def send(
    server: ServerProcess, tok: str, chat: str, text: str, key: str | None = None
) -> httpx.Response:
    headers = bearer(tok) | ({"Idempotency-Key": key} if key is not None else {})
    return httpx.post(
        f"{server.http}/api/v1/chats/{chat}/messages",
        json={"text": text},
        headers=headers,
        timeout=10,
    )


def history(server: ServerProcess, tok: str, chat: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.http}/api/v1/chats/{chat}/history", headers=bearer(tok), timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["events"]  # type: ignore[no-any-return]


def claims(server: ServerProcess, tok: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.http}/api/v1/claims", params=params, headers=bearer(tok), timeout=10)


def act(server: ServerProcess, tok: str, claim: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.http}/api/v1/claims/{claim}/actions", json=body, headers=bearer(tok), timeout=10
    )


# ---- the feed ------------------------------------------------------------------------------


async def test_a_bot_without_a_socket_follows_the_feed_across_a_restart(
    server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token, bot_token = token("buyer", buyer), token("seller", "bot", seller=shop)
    chat = await open_chat(server, buyer, shop)
    seen: list[dict[str, Any]] = []

    async def bot() -> None:
        # What a cron job or a PHP script does: long-poll, keep the cursor, try again.
        cursor: str | None = None
        async with httpx.AsyncClient(timeout=30) as http:
            while True:
                params: dict[str, Any] = {"wait": 20}
                if cursor is not None:
                    params["cursor"] = cursor
                try:
                    response = await http.get(
                        server.http + "/api/v1/events", params=params, headers=bearer(bot_token)
                    )
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                assert response.status_code == 200, response.text
                page = response.json()
                seen.extend(page["events"])
                cursor = page["cursor"]

    async def seen_count(count: int) -> None:
        deadline = time.monotonic() + 15
        while len(seen) < count:
            assert time.monotonic() < deadline, f"{len(seen)} events of {count}"
            await asyncio.sleep(0.02)

    task = asyncio.create_task(bot())
    try:
        for n in range(5):
            assert send(server, buyer_token, chat, f"до перезапуска {n}").status_code == 201
            await asyncio.sleep(0.05)
        await seen_count(6)
        # The bot's long-poll is waiting now; a stopping server answers it at once instead
        # of holding the shutdown for the rest of its wait.
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        assert time.monotonic() - started < 5
        await asyncio.to_thread(server.start)
        for n in range(5):
            assert send(server, buyer_token, chat, f"после перезапуска {n}").status_code == 201
        await seen_count(11)
        # Anything repeated would come right behind.
        await asyncio.sleep(0.5)
    finally:
        task.cancel()

    assert [(e["chat"], e["seq"]) for e in seen] == [(chat, seq) for seq in range(1, 12)]
    texts = [e.get("text") for e in seen[1:]]
    assert texts == [f"до перезапуска {n}" for n in range(5)] + [
        f"после перезапуска {n}" for n in range(5)
    ]


async def test_a_long_poll_wakes_on_the_first_new_event_and_ends_empty_after_its_wait(
    server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(server, buyer, shop)
    shop_token = token("seller", "op", seller=shop)
    url = server.http + "/api/v1/events"
    async with httpx.AsyncClient(timeout=30) as http:
        first = (await http.get(url, headers=bearer(shop_token))).json()
        assert [e["kind"] for e in first["events"]] == ["chat.opened"]
        assert first["more"] is False

        started = time.monotonic()
        quiet = await http.get(
            url, params={"cursor": first["cursor"], "wait": 0.5}, headers=bearer(shop_token)
        )
        assert quiet.status_code == 200
        assert quiet.json()["events"] == [] and 0.45 < time.monotonic() - started < 3

        async def later() -> None:
            await asyncio.sleep(0.3)
            # Another chat's event reaches nobody here; the shop's own chat's does.
            await open_chat(server, uid("stranger"), uid("other-shop"))
            await asyncio.to_thread(send, server, token("buyer", buyer), chat, "вы тут?")

        writer = asyncio.create_task(later())
        started = time.monotonic()
        woken = await http.get(
            url, params={"cursor": quiet.json()["cursor"], "wait": 20}, headers=bearer(shop_token)
        )
        await writer
        assert time.monotonic() - started < 5
        assert [e["text"] for e in woken.json()["events"]] == ["вы тут?"]


async def test_the_feed_pages_in_order_and_refuses_a_cursor_of_another_log(
    server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer)
    chat = await open_chat(server, buyer, shop)
    for n in range(4):
        assert send(server, buyer_token, chat, f"сообщение {n}").status_code == 201
    url = server.http + "/api/v1/events"
    got: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(url, params=params, headers=bearer(buyer_token), timeout=10).json()
        got.extend(e["seq"] for e in page["events"])
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert got == [1, 2, 3, 4, 5]

    log_id = cursor.split(".")[0]
    for bad in ("0123456789abcdef.1", f"{log_id}.ffffff", "nonsense"):
        refused = httpx.get(url, params={"cursor": bad}, headers=bearer(buyer_token), timeout=10)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "bad_cursor"
    for bad_params in ({"limit": 0}, {"limit": 1001}, {"wait": 31}, {"wait": "nan"}):
        refused = httpx.get(url, params=bad_params, headers=bearer(buyer_token), timeout=10)
        assert refused.status_code == 400, bad_params
        assert refused.json()["error"]["code"] == "bad_frame"
    system = httpx.get(url, headers=bearer(token("system", "marketplace")), timeout=10)
    assert system.status_code == 403


# ---- sending -------------------------------------------------------------------------------


async def test_the_same_idempotency_key_twice_writes_once(server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer)
    chat = await open_chat(server, buyer, shop)
    key = uuid.uuid4().hex

    first = send(server, buyer_token, chat, "один раз", key)
    again = send(server, buyer_token, chat, "один раз", key)
    other = send(server, buyer_token, chat, "один раз", uuid.uuid4().hex)

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json() == first.json()
    assert first.json()["seq"] == 2 and other.json()["seq"] == 3
    assert [e.get("text") for e in history(server, buyer_token, chat)] == [
        None,
        "один раз",
        "один раз",
    ]
    too_long = send(server, buyer_token, chat, "x", "k" * 65)
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "bad_frame"


async def test_a_multipart_message_carries_its_file(server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token, shop_token = token("buyer", buyer), token("seller", "op", seller=shop)
    chat = await open_chat(server, buyer, shop)
    url = f"{server.http}/api/v1/chats/{chat}/messages"

    sent = httpx.post(
        url,
        data={"text": "фото брака"},
        files={"file": ("брак.html", PNG, "text/html")},
        headers=bearer(buyer_token) | {"Idempotency-Key": "photo-1"},
        timeout=10,
    )

    assert sent.status_code == 201, sent.text
    event = history(server, shop_token, chat)[-1]
    assert event["seq"] == sent.json()["seq"] and event["text"] == "фото брака"
    [attachment] = event["data"]["attachments"]
    # Named and typed by its content, as an upload through /api/v1/files is.
    assert attachment["name"] == "брак.png" and attachment["mime"] == "image/png"
    download = httpx.get(
        f"{server.http}/api/v1/files/{attachment['id']}", headers=bearer(shop_token), timeout=10
    )
    assert download.status_code == 200 and download.content == PNG

    refused = httpx.post(
        url,
        data={"text": "гифка"},
        files={"file": ("a.gif", GIF, "image/gif")},
        headers=bearer(buyer_token),
        timeout=10,
    )
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "bad_frame"
    assert len(history(server, buyer_token, chat)) == 2
    stranger = httpx.post(
        url,
        data={"text": "чужой чат"},
        files={"file": ("a.png", PNG, "image/png")},
        headers=bearer(token("buyer", uid("stranger"))),
        timeout=10,
    )
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"


# ---- claims --------------------------------------------------------------------------------


async def test_claims_carry_the_actions_of_each_role_and_an_action_is_carried_out(
    server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer)
    shop_token = token("seller", "op", seller=shop)
    manager_token = token("manager", "arbiter")
    other_shop_token = token("seller", "op", seller=uid("other-shop"))
    kept, refused = uid("order"), uid("order")
    async with connect(server, buyer_token) as client:
        chat, kept_claim = await open_claim(server, client, buyer, shop, kept)
        _, refused_claim = await open_claim(server, client, buyer, shop, refused)

        listed = claims(server, shop_token)
        assert listed.status_code == 200, listed.text
        page = listed.json()
        assert page["total"] == 2
        # Newest first.
        assert [c["claim"] for c in page["claims"]] == [refused_claim, kept_claim]
        card = page["claims"][1]
        assert card["chat"] == chat and card["order"]["id"] == kept
        assert card["state"] == "requested" and card["due"] and card["requested_at"]
        assert card["amount"] == {"value": 118600, "currency": "RUB"}
        assert card["actions"] == ["approve_pvz", "approve_no_return", "reject"]
        assert claims(server, shop_token, order=kept).json()["total"] == 1
        assert claims(server, shop_token, article="140158860").json()["total"] == 2
        assert claims(server, shop_token, article="nothing").json()["total"] == 0
        assert claims(server, shop_token, limit=1, offset=1).json()["claims"][0]["claim"] == (
            kept_claim
        )
        assert claims(server, manager_token).json() == {"claims": [], "total": 0}
        assert claims(server, other_shop_token).json()["total"] == 0
        assert claims(server, buyer_token).status_code == 403
        assert claims(server, shop_token, state="lost").status_code == 400

        # Carried out as the frames are, answered with their ack and their errors.
        mismatch = act(
            server,
            shop_token,
            kept_claim,
            action="approve_pvz",
            amount={"value": 1, "currency": "RUB"},
        )
        assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == (
            "amount_mismatch"
        )
        no_amount = act(server, shop_token, kept_claim, action="approve_pvz")
        assert no_amount.status_code == 400
        foreign = act(server, other_shop_token, kept_claim, action="reject")
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
        assert act(server, buyer_token, kept_claim, action="reject").status_code == 403
        assert act(server, shop_token, kept_claim, action="dance").status_code == 400

        approved = act(
            server, shop_token, kept_claim, action="approve_no_return", amount=card["amount"]
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["claim"] == kept_claim and approved.json()["chat"] == chat
        again = act(server, shop_token, kept_claim, action="reject")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

        rejected = act(server, shop_token, refused_claim, action="reject", reason="Следы носки")
        assert rejected.status_code == 200, rejected.text
        by_state = claims(server, shop_token, state="rejected").json()
        assert [c["claim"] for c in by_state["claims"]] == [refused_claim]
        assert by_state["claims"][0]["reason"] == "Следы носки"
        assert by_state["claims"][0]["actions"] == []

        disputed = await client.request({"type": "return.dispute", "claim": refused_claim})
        assert disputed["type"] == "ack", disputed

    for_manager = claims(server, manager_token).json()
    assert [c["claim"] for c in for_manager["claims"]] == [refused_claim]
    assert for_manager["claims"][0]["actions"] == [
        "resolve_approve_pvz",
        "resolve_approve_no_return",
        "resolve_reject",
    ]
    assert claims(server, shop_token, state="disputed").json()["claims"][0]["actions"] == []

    resolved = act(
        server, manager_token, refused_claim, action="resolve_approve_no_return", comment="Брак"
    )
    assert resolved.status_code == 200, resolved.text
    assert claims(server, manager_token).json()["claims"][0]["state"] == "resolved_approved"
    balance = httpx.get(server.http + "/api/v1/balance", headers=bearer(buyer_token), timeout=10)
    assert balance.json()["balances"] == [{"value": 2 * 118600, "currency": "RUB"}]


async def test_the_shop_withdraws_its_offer_over_http(server: ServerProcess) -> None:
    buyer, shop, order = uid("buyer"), uid("shop"), uid("order")
    shop_token = token("seller", "op", seller=shop)
    assert register_order(server, order_body(order, buyer, shop)).status_code == 201
    chat = await open_chat(server, buyer, shop)
    async with connect(server, shop_token) as client:
        offered = await client.request({"type": "return.initiate", "chat": chat, "order": order})
        assert offered["type"] == "ack", offered

    [card] = claims(server, shop_token).json()["claims"]
    assert card["state"] == "awaiting_buyer" and card["actions"] == ["withdraw"]
    assert "requested_at" not in card and card["due"]
    assert act(server, shop_token, card["claim"], action="withdraw").status_code == 200
    [closed] = claims(server, shop_token).json()["claims"]
    assert closed["state"] == "closed" and closed["actions"] == []


# ---- errors and limits ---------------------------------------------------------------------


async def test_every_error_over_http_is_json(server: ServerProcess, tmp_path: Path) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer)
    chat = await open_chat(server, buyer, shop)
    base = server.http
    async with httpx.AsyncClient(timeout=10, headers=bearer(buyer_token)) as http:
        answers = {
            404: await http.get(base + "/api/v1/no-such-thing"),
            405: await http.delete(f"{base}/api/v1/chats/{chat}/messages"),
            413: await http.post(
                f"{base}/api/v1/chats/{chat}/messages",
                content=b'{"text": "' + b"x" * 70_000 + b'"}',
                headers={"Content-Type": "application/json"},
            ),
            415: await http.post(
                f"{base}/api/v1/chats/{chat}/messages",
                content=b"hello",
                headers={"Content-Type": "text/plain"},
            ),
            401: await http.get(base + "/api/v1/chats", headers={"Authorization": "Bearer nope"}),
        }
        # A files directory the server can no longer write to: a failure of its own, 500.
        incoming = server.db.with_name(server.db.name + ".files") / "incoming"
        shutil.rmtree(incoming)
        incoming.write_text("not a directory")
        answers[500] = await http.post(
            base + "/api/v1/files", files={"file": ("a.png", PNG, "image/png")}
        )
    codes = {
        404: "not_found",
        405: "bad_frame",
        413: "too_large",
        415: "bad_frame",
        401: "unauthorized",
        500: "internal",
    }
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/json", status
        error = response.json()["error"]
        assert error["code"] == codes[status] and error["message"], status
        assert "x-ratelimit-limit" in response.headers, status
    assert "POST" in answers[405].headers["allow"]


def test_rate_limits_over_http(server: ServerProcess) -> None:
    shop_token = token("seller", "op", seller=uid("shop"))
    other_token = token("seller", "op", seller=uid("shop"))
    url = server.http + "/api/v1/chats"
    with httpx.Client(timeout=10) as http:
        answers = [http.get(url, headers=bearer(shop_token)) for _ in range(25)]
        other = http.get(url, headers=bearer(other_token))
        system = http.post(
            server.http + "/api/v1/orders",
            json=order_body(uid("order"), uid("buyer"), uid("shop")),
            headers=bearer(token("system", "marketplace")),
        )

    first = answers[0]
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "20"
    assert first.headers["x-ratelimit-remaining"] == "19"
    assert int(first.headers["x-ratelimit-reset"]) >= 1
    # A burst of 20, refilled at 10 a second while the requests run.
    passed = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert 20 <= len(passed) < 25 and limited and answers[-1].status_code == 429
    refusal = limited[0]
    assert refusal.json()["error"]["code"] == "rate_limited"
    assert 0 < refusal.json()["error"]["details"]["retry_after"] <= 0.1
    assert refusal.headers["retry-after"] == "1"
    assert refusal.headers["x-ratelimit-remaining"] == "0"
    # Per user: another shop is not slowed; the marketplace has a budget of its own.
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == "19"
    assert system.status_code == 201 and system.headers["x-ratelimit-limit"] == "2000"

    time.sleep(refusal.json()["error"]["details"]["retry_after"] + 0.05)
    assert httpx.get(url, headers=bearer(shop_token), timeout=10).status_code == 200
