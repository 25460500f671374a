"""A token's `sub` names a user only with its role and, for an operator, its shop: buyer `42`
and operator `42` of a shop are two people, and so are operators `42` of two shops. Nothing
kept per user (nonces, the connection cap, the rate bucket) may let one stand for the other.
Over real sockets of a real `chatd serve`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
import websockets

from tests.e2e.harness import ServerProcess, connect, module_server, token, uid

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(
        tmp_path_factory, "identity",
        "--max-connections-per-user", "2", "--rate", "1000", "--burst", "1000",
        "--user-rate", "0.5", "--user-burst", "6",
    ) as process:  # fmt: skip
        yield process


async def test_a_buyers_nonce_is_not_an_operators_with_the_same_sub(srv: ServerProcess) -> None:
    sub, shop_a, shop_b = uid("42"), uid("shopA"), uid("shopB")
    operator = token("seller", sub, seller=shop_a)
    buyer = token("buyer", sub)
    async with (
        connect(srv, token("buyer", uid("customer"))) as customer,
        connect(srv, operator) as op,
        connect(srv, buyer) as same_sub,
    ):
        theirs = (await customer.request({"type": "open", "seller": shop_a}))["chat"]
        ack = await op.request(
            {"type": "send", "chat": theirs, "text": "Здравствуйте", "nonce": "n-1"}
        )
        assert (ack["type"], ack["chat"], ack["seq"]) == ("ack", theirs, 2), ack

        own = (await same_sub.request({"type": "open", "seller": shop_b}))["chat"]
        mine = await same_sub.request({"type": "send", "chat": own, "text": "Моё", "nonce": "n-1"})

        # Acked for the buyer's own chat, and written there; not shop A's chat and seq.
        assert (mine["type"], mine["chat"], mine["seq"]) == ("ack", own, 2), mine
        history = await same_sub.request({"type": "history", "chat": own})
        assert [e.get("text") for e in history["events"][1:]] == ["Моё"]
        # The same nonce from the buyer again is the buyer's own retry.
        again = await same_sub.request({"type": "send", "chat": own, "text": "Моё", "nonce": "n-1"})
        assert (again["chat"], again["seq"], again["cursor"]) == (own, 2, mine["cursor"])


async def hello(srv: ServerProcess, tok: str) -> tuple[dict[str, object], int | None]:
    async with websockets.connect(srv.url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": tok, "id": "h"}))
        first: dict[str, object] = json.loads(await ws.recv())
        return first, None if first["type"] == "welcome" else ws.close_code


async def test_operators_with_one_sub_in_two_shops_have_a_connection_cap_each(
    srv: ServerProcess,
) -> None:
    sub = uid("42")
    in_a = token("seller", sub, seller=uid("shopA"))
    in_b = token("seller", sub, seller=uid("shopB"))
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(connect(srv, in_a))
        refused, _ = await hello(srv, in_a)
        assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
        # Shop A's operator 42 holds all of its places; shop B's operator 42 has its own.
        for _ in range(2):
            await stack.enter_async_context(connect(srv, in_b))


async def test_operators_with_one_sub_in_two_shops_have_a_rate_bucket_each(
    srv: ServerProcess,
) -> None:
    sub = uid("42")
    async with (
        connect(srv, token("seller", sub, seller=uid("shopA"))) as in_a,
        connect(srv, token("seller", sub, seller=uid("shopB"))) as in_b,
    ):
        spent = [await in_a.request({"type": "ping"}) for _ in range(7)]
        assert [r["type"] for r in spent] == ["pong"] * 6 + ["error"], spent
        # Shop A's operator 42 spent its burst; shop B's operator 42 has all of its own.
        fresh = [await in_b.request({"type": "ping"}) for _ in range(6)]
        assert [r["type"] for r in fresh] == ["pong"] * 6, fresh
