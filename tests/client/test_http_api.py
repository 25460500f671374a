"""The SDK's HTTP calls without a socket, against a real server: following the feed across a
restart, sending (JSON, files, retried with its key), claims and their actions, and waiting
out the rate limit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chatd.client import ChatError, connect, mint
from chatd.client.http import HttpApi
from protocol import frames as f
from protocol.events import Money, OrderCard, Party
from tests.client.conftest import serve
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(90)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def uid(prefix: str) -> str:
    # Letters only: random digits in a text can read as a phone number.
    return f"{prefix}-{uuid.uuid4().hex[:8].translate(_NO_DIGITS)}"


def buyer_token(buyer: str) -> str:
    return mint(SECRET, role="buyer", sub=buyer, name=buyer.title())


def shop_token(shop: str) -> str:
    return mint(SECRET, role="seller", sub="op", name="Анна", seller=shop)


def order_of(buyer: str, shop: str) -> OrderCard:
    return OrderCard(
        id=uid("order"),
        buyer=Party(id=buyer, name=buyer.title()),
        seller=Party(id=shop, name="Лавка"),
        article="140158860",
        name="Юбка",
        brand="SK - Line",
        price=Money(value=118600, currency="RUB"),
        purchased_at=datetime(2023, 8, 10, 9, tzinfo=UTC),
        received_at=datetime(2023, 8, 17, 9, tzinfo=UTC),
        non_returnable=False,
    )


async def open_chat(server: ServerProcess, buyer: str, shop: str, order: str | None = None) -> str:
    async with connect(server.url, buyer_token(buyer)) as chat:
        return (await chat.open(shop, order)).chat


async def test_follow_goes_on_across_a_restart_losing_and_repeating_nothing(
    own_server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(own_server, buyer, shop)
    seen: list[f.EventFrame] = []

    async def bot() -> None:
        async with HttpApi(own_server.http, shop_token(shop)) as api:
            async for event in api.follow(wait=20, retry_delay=0.05):
                seen.append(event)

    async def seen_count(count: int) -> None:
        async with asyncio.timeout(20):
            while len(seen) < count:
                await asyncio.sleep(0.02)

    task = asyncio.create_task(bot())
    try:
        async with HttpApi(own_server.http, buyer_token(buyer)) as buyer_api:
            for n in range(3):
                await buyer_api.send(chat, f"первое {n}")
            await seen_count(4)
            await asyncio.to_thread(own_server.stop)
            await asyncio.to_thread(own_server.start)
            for n in range(3):
                await buyer_api.send(chat, f"второе {n}")
        await seen_count(7)
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
    assert [e.seq for e in seen] == list(range(1, 8))
    assert [e.text for e in seen[1:]] == [f"первое {n}" for n in range(3)] + [
        f"второе {n}" for n in range(3)
    ]


async def test_send_once_per_key_with_files(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(shared_server, buyer, shop)
    async with HttpApi(shared_server.http, buyer_token(buyer)) as api:
        first = await api.send(
            chat, "фото", files=[("брак.jpg", PNG, "image/png")], idempotency_key="k"
        )
        again = await api.send(
            chat, "фото", files=[("брак.jpg", PNG, "image/png")], idempotency_key="k"
        )
        plain = await api.send(chat, "без файла")
        page = await api.history(chat)
        listed = await api.chats()
        with pytest.raises(ChatError) as refused:
            await api.send(chat, "", files=[("a.gif", b"GIF89a" + b"\x00" * 20, "image/gif")])

    assert not first.repeated and again.repeated
    assert (again.chat, again.seq, again.cursor) == (first.chat, first.seq, first.cursor)
    assert plain.seq == first.seq + 1
    assert [e.seq for e in page.events] == [1, 2, 3] and not page.more
    [photo] = page.events[1].data["attachments"]
    assert photo["name"] == "брак.png"
    assert [c.chat for c in listed.chats] == [chat] and listed.before is None
    assert refused.value.code == "bad_frame" and refused.value.status == 415


async def test_send_is_retried_with_its_key_when_the_answer_is_lost(
    shared_server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(shared_server, buyer, shop)
    lost = 0

    async def lose_first_answer(request: httpx.Request) -> httpx.Response:
        # The request reaches the server and is written; its answer never comes back.
        nonlocal lost
        async with httpx.AsyncClient() as real:
            response = await real.send(request)
        if lost == 0:
            lost += 1
            raise httpx.ReadError("connection reset", request=request)
        return response

    transport = httpx.AsyncBaseTransport()
    transport.handle_async_request = lose_first_answer  # type: ignore[method-assign]
    async with HttpApi(shared_server.http, buyer_token(buyer), transport=transport) as api:
        acked = await api.send(chat, "дошло?")
    async with HttpApi(shared_server.http, buyer_token(buyer)) as api:
        page = await api.history(chat)
    assert acked.repeated and acked.seq == 2
    assert [e.text for e in page.events] == [None, "дошло?"]


async def test_claims_and_their_actions(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    order = order_of(buyer, shop)
    system = mint(SECRET, role="system", sub="marketplace", name="WB")
    async with HttpApi(shared_server.http, system) as api:
        await api.register_order(order)
    chat = await open_chat(shared_server, buyer, shop, order.id)
    async with connect(shared_server.url, buyer_token(buyer)) as client:
        requested = await client.request_return(chat, order.id)
    assert requested.claim is not None

    async with HttpApi(shared_server.http, shop_token(shop)) as api:
        listed = await api.claims(state="requested")
        [claim] = listed.claims
        with pytest.raises(ChatError) as mismatch:
            await api.claim_action(
                claim.claim, "approve_pvz", amount=Money(value=1, currency="RUB")
            )
        done = await api.claim_action(claim.claim, "approve_pvz", amount=claim.amount)
        after = await api.claims()

    assert listed.total == 1 and claim.claim == requested.claim and claim.chat == chat
    assert claim.actions == ["approve_pvz", "approve_no_return", "reject"]
    assert claim.order == order and claim.due is not None
    assert mismatch.value.code == "amount_mismatch" and mismatch.value.status == 422
    assert done.claim == claim.claim and done.chat == chat
    assert after.claims[0].state == "approved" and after.claims[0].actions == []


async def test_the_rate_limit_slows_a_script_rather_than_failing_it(tmp_path: Path) -> None:
    server = serve(tmp_path / "chatd.db", "--http-rate", "20", "--http-burst", "2")
    try:
        async with HttpApi(server.http, shop_token(uid("shop"))) as api:
            loop = asyncio.get_running_loop()
            started = loop.time()
            pages = [await api.chats() for _ in range(8)]
            took = loop.time() - started
    finally:
        server.stop()
    assert all(page.chats == [] for page in pages)
    # 2 at once, then one every 50 ms.
    assert took >= 0.25
