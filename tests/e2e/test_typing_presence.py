"""Typing and presence over real sockets (docs/protocol.md, "Typing and presence"): what is
never stored, to whom it goes, and how often.

- `typing` reaches the other side's sockets that have the chat in view, at most once every
  2 s per socket and chat, never the sender's own side, and leaves nothing in the log;
- a side's coming online and going offline reaches the sockets of both sides that have the
  chat in view, once per change (a reconnect within the grace is no change), and the chats'
  summaries say who is online; a connection killed without a close frame drops out too.

Two nodes on PostgreSQL and Redis: tests/multinode/test_typing_presence.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    drain,
    module_server,
    order_body,
    register_order,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)

# The server's defaults (chatd.web.watching, chatd.hub.presence).
TYPING_INTERVAL = 2.0
GRACE = 2.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "typing") as process:
        yield process


async def a_chat(srv: ServerProcess, buyer: Client, buyer_id: str, shop: str) -> str:
    """The buyer's chat with the shop, opened about an order that names the buyer «Люда»."""
    order = order_body(uid("order"), buyer_id, shop)
    order["buyer"] = {"id": buyer_id, "name": "Люда"}
    assert register_order(srv, order).status_code == 201
    opened = await buyer.request({"type": "open", "seller": shop, "order": order["id"]})
    assert opened["type"] == "ack", opened
    return str(opened["chat"])


async def in_view(chat: str, *clients: Client) -> None:
    for client in clients:
        page = await client.request({"type": "history", "chat": chat})
        assert page["type"] == "history", page


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame.get("type") == kind]


async def typing(client: Client, chat: str, times: int = 1) -> None:
    """`times` typing frames back to back, then a ping: anything they were answered with
    comes before the pong."""
    for _ in range(times):
        await client.send_raw(json.dumps({"type": "typing", "chat": chat}))
    pong = await client.request({"type": "ping"})
    assert pong["type"] == "pong", pong


def feed(srv: ServerProcess, tok: str, cursor: str | None = None) -> dict[str, Any]:
    params = {"cursor": cursor} if cursor else {}
    answer = httpx.get(
        srv.http + "/api/v1/events",
        params=params,
        headers={"Authorization": f"Bearer {tok}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def summary(client: Client, chat: str) -> dict[str, Any]:
    page = await client.request({"type": "chats"})
    assert page["type"] == "chats", page
    return next(c for c in page["chats"] if c["chat"] == chat)


async def next_presence(client: Client, timeout: float = GRACE + 3) -> dict[str, Any]:
    return await client.next_frame("presence", timeout)


# ---- typing --------------------------------------------------------------------------------


async def test_typing_reaches_the_other_side_at_most_once_per_two_seconds_and_is_never_stored(
    srv: ServerProcess,
) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id, "Токен-имя")
    anna_token = token("seller", uid("op"), "Анна", seller=shop)
    async with (
        connect(srv, buyer_token) as tab,
        connect(srv, buyer_token) as other_tab,
        connect(srv, anna_token) as anna,
        connect(srv, token("seller", uid("op"), "Олег", seller=shop)) as oleg,
    ):
        chat = await a_chat(srv, tab, buyer_id, shop)
        await in_view(chat, tab, other_tab, anna, oleg)
        page = await tab.request({"type": "history", "chat": chat})
        seqs = [event["seq"] for event in page["events"]]
        before = feed(srv, anna_token)["cursor"]
        for client in (tab, other_tab, anna, oleg):
            await drain(client, 0.1)

        # A burst: one passes on, the rest are dropped without an answer.
        first_at = time.monotonic()
        await typing(tab, chat, times=5)
        got = await anna.next_frame("typing")
        assert got == {"type": "typing", "chat": chat, "side": "buyer", "name": "Люда"}
        assert (await oleg.next_frame("typing")) == got
        await asyncio.sleep(0.3)
        assert of_type(await drain(anna, 0), "typing") == []
        assert of_type(await drain(oleg, 0), "typing") == []
        # Neither the sender nor the buyer's other socket hears it, nor any error.
        assert await drain(tab, 0) == []
        assert await drain(other_tab, 0) == []

        # Still within the 2 s: dropped.
        await typing(tab, chat)
        await asyncio.sleep(0.2)
        assert of_type(await drain(anna, 0), "typing") == []
        # After them: passed on again.
        await asyncio.sleep(max(0.0, first_at + TYPING_INTERVAL + 0.1 - time.monotonic()))
        await typing(tab, chat)
        assert (await anna.next_frame("typing"))["side"] == "buyer"
        assert (await oleg.next_frame("typing"))["side"] == "buyer"

        # The shop's side: named by the operator, to both of the buyer's sockets, not to
        # the other operator.
        await typing(anna, chat, times=3)
        expected = {"type": "typing", "chat": chat, "side": "seller", "name": "Анна"}
        assert (await tab.next_frame("typing")) == expected
        assert (await other_tab.next_frame("typing")) == expected
        await asyncio.sleep(0.3)
        assert of_type(await drain(oleg, 0), "typing") == []
        assert of_type(await drain(tab, 0), "typing") == []

        # Nothing of it in the log: the same events, and no new one in the feed.
        page = await other_tab.request({"type": "history", "chat": chat})
        assert [event["seq"] for event in page["events"]] == seqs
        assert feed(srv, anna_token, before)["events"] == []
        assert feed(srv, buyer_token)["events"][-1]["seq"] == seqs[-1]


async def test_typing_is_refused_where_its_user_may_not_type(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    async with (
        connect(srv, token("buyer", buyer_id)) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop)) as operator,
        connect(srv, token("buyer", uid("stranger"))) as stranger,
        connect(srv, token("manager", uid("mgr"))) as manager,
    ):
        chat = await a_chat(srv, buyer, buyer_id, shop)
        await in_view(chat, buyer, operator)
        await drain(buyer, 0.1)
        await drain(operator, 0.1)
        foreign = await stranger.request({"type": "typing", "chat": chat})
        missing = await stranger.request({"type": "typing", "chat": "c" + "0" * 20})
        assert foreign["code"] == missing["code"] == "not_found", (foreign, missing)
        assert foreign["message"] == missing["message"]
        refused = await manager.request({"type": "typing", "chat": chat})
        assert (refused["type"], refused["code"]) == ("error", "forbidden"), refused
        malformed = await buyer.request({"type": "typing"})
        assert malformed["code"] == "bad_frame", malformed
        await asyncio.sleep(0.2)
        assert of_type(await drain(buyer, 0), "typing") == []
        assert of_type(await drain(operator, 0), "typing") == []


async def test_typing_goes_only_to_sockets_that_have_the_chat_in_view(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    async with (
        connect(srv, token("buyer", buyer_id)) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop)) as looking,
        connect(srv, token("seller", uid("op"), seller=shop)) as elsewhere,
    ):
        chat = await a_chat(srv, buyer, buyer_id, shop)
        await in_view(chat, looking)
        await drain(looking, 0.1)
        await drain(elsewhere, 0.1)
        await typing(buyer, chat)
        assert (await looking.next_frame("typing"))["chat"] == chat
        await asyncio.sleep(0.2)
        assert of_type(await drain(elsewhere, 0), "typing") == []
        # A chats page brings its chats into view.
        await summary(elsewhere, chat)
        await asyncio.sleep(TYPING_INTERVAL)
        await typing(buyer, chat)
        assert (await elsewhere.next_frame("typing"))["chat"] == chat


# ---- presence ------------------------------------------------------------------------------


async def test_presence_is_in_the_summaries_and_its_changes_reach_both_sides(
    srv: ServerProcess,
) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id)
    async with connect(srv, buyer_token) as buyer, connect(srv, buyer_token) as buyer_tab:
        chat = await a_chat(srv, buyer, buyer_id, shop)
        assert (await summary(buyer, chat))["online"] == {"buyer": True, "seller": False}
        await in_view(chat, buyer_tab)

        async with connect(srv, token("seller", uid("op"), "Анна", seller=shop)) as anna:
            came = {"type": "presence", "chat": chat, "side": "seller", "online": True}
            assert await next_presence(buyer) == came
            assert await next_presence(buyer_tab) == came  # both of the buyer's sockets
            assert (await summary(anna, chat))["online"] == {"buyer": True, "seller": True}

            # A second operator changes nothing: the shop was online already; nor does the
            # buyer's tab closing: the buyer is still online through the other socket.
            async with connect(srv, token("seller", uid("op"), "Олег", seller=shop)):
                await asyncio.sleep(0.3)
            await buyer_tab.close()
            await asyncio.sleep(GRACE + 0.5)
            assert of_type(await drain(buyer, 0), "presence") == []
            assert of_type(await drain(anna, 0), "presence") == []
        # The shop's last operator left: offline after the grace, on the buyer's side.
        gone = await next_presence(buyer)
        assert gone == {"type": "presence", "chat": chat, "side": "seller", "online": False}
        assert (await summary(buyer, chat))["online"] == {"buyer": True, "seller": False}


async def test_a_reconnect_within_the_grace_is_no_change(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id)
    async with connect(srv, token("seller", uid("op"), seller=shop)) as operator:
        async with connect(srv, buyer_token) as buyer:
            chat = await a_chat(srv, buyer, buyer_id, shop)
        async with connect(srv, buyer_token) as buyer:
            await summary(operator, chat)
            await drain(operator, 0.1)
        # A page reload: gone, and back at once.
        async with connect(srv, buyer_token):
            await asyncio.sleep(GRACE + 0.5)
            assert of_type(await drain(operator, 0), "presence") == []
        left = await next_presence(operator)
        assert left == {"type": "presence", "chat": chat, "side": "buyer", "online": False}


async def test_a_killed_connection_drops_out(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id)
    async with connect(srv, token("seller", uid("op"), seller=shop)) as operator:
        async with connect(srv, buyer_token) as buyer:
            chat = await a_chat(srv, buyer, buyer_id, shop)
            await summary(operator, chat)
            ws = await websockets.connect(srv.url, subprotocols=["chatd.v1.json"])  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "hello", "token": buyer_token}))
            assert json.loads(await ws.recv())["type"] == "welcome"
        # The killed socket is the buyer's last one now. Killed: the TCP connection drops,
        # with no close frame.
        ws.transport.abort()
        gone = await next_presence(operator)
        assert gone == {"type": "presence", "chat": chat, "side": "buyer", "online": False}
        assert (await summary(operator, chat))["online"] == {"buyer": False, "seller": True}
