"""What the end-to-end returns tests share: a server per test module, a scene of a buyer and
two operators of one shop on reading sockets, and the checks of an answer's shape."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    order_body,
    register_order,
    token,
    uid,
)


@dataclass
class Scene:
    """A buyer and two operators of one shop, each on a reading socket of its own, and the
    chat the buyer opened last."""

    srv: ServerProcess
    buyer_id: str
    shop_id: str
    buyer_token: str
    shop_token: str
    buyer: Client
    anna: Client
    oleg: Client
    chat: str = ""

    @property
    def sides(self) -> tuple[Client, Client, Client]:
        return (self.buyer, self.anna, self.oleg)

    def order(self, **overrides: Any) -> dict[str, Any]:
        """Registers an order of this buyer from this shop (received long ago by default)."""
        body = order_body(uid("order"), self.buyer_id, self.shop_id, **overrides)
        for key in [k for k, v in body.items() if v is None]:
            del body[key]
        response = register_order(self.srv, body)
        assert response.status_code == 201, response.text
        return body

    async def open(self, order: dict[str, Any] | None = None) -> str:
        frame: dict[str, Any] = {"type": "open", "seller": self.shop_id}
        if order is not None:
            frame["order"] = order["id"]
        opened = await self.buyer.request(frame)
        assert opened["type"] == "ack", opened
        self.chat = opened["chat"]
        return self.chat

    async def request_return(self, order: dict[str, Any]) -> dict[str, Any]:
        return await self.buyer.request(
            {"type": "return.request", "chat": self.chat, "order": order["id"]}
        )

    async def claim_of(self, order: dict[str, Any]) -> str:
        ack = await self.request_return(order)
        assert ack["type"] == "ack" and ack.get("claim"), ack
        return ack["claim"]  # type: ignore[no-any-return]

    async def history(self) -> list[dict[str, Any]]:
        page = await self.buyer.request({"type": "history", "chat": self.chat, "limit": 100})
        assert page["type"] == "history", page
        return page["events"]  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def scene_of(srv: ServerProcess, buyer_name: str = "Покупатель") -> AsyncIterator[Scene]:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id, buyer_name)
    shop_token = token("seller", uid("op"), "Анна", seller=shop_id)
    async with (
        connect(srv, buyer_token) as buyer,
        connect(srv, shop_token) as anna,
        connect(srv, token("seller", uid("op"), "Олег", seller=shop_id)) as oleg,
    ):
        yield Scene(srv, buyer_id, shop_id, buyer_token, shop_token, buyer, anna, oleg)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_error(reply: dict[str, Any], code: str) -> None:
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert isinstance(reply["message"], str) and reply["message"], reply
