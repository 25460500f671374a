"""A small marketplace for the authorization tests: two shops, two buyers, four chats.

    chat   buyer  shop   claim
    A      b1     s1     requested
    B      b2     s1     requested
    C      b1     s2     requested
    D      b2     s2     disputed (so managers see D, and only D)

Every chat has its order, one message and a claim. Ids are fresh for every world, so worlds
built on one server never meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt

from tests.e2e.harness import (
    SECRET,
    Client,
    ServerProcess,
    connect,
    open_claim,
    token,
    uid,
)

PRICE = {"value": 118600, "currency": "RUB"}
CHATS = ("A", "B", "C", "D")
MISSING = {
    "chat": "c" + "0" * 20,
    "claim": "r" + "0" * 20,
    "order": "order-missing",
    "shop": "shop-missing",
}


@dataclass
class Chat:
    label: str
    buyer: str
    shop: str
    chat: str = ""
    claim: str = ""
    order: str = ""


@dataclass
class World:
    b1: str
    b2: str
    s1: str
    s2: str
    op1: str
    op2: str
    manager: str
    chats: dict[str, Chat] = field(default_factory=dict)

    def claims(self) -> dict[str, str]:
        return {c.claim: label for label, c in self.chats.items()}


@dataclass(frozen=True)
class Role:
    """One user under test: its claims and the chats it may see."""

    name: str
    role: str
    visible: frozenset[str]

    def claims_of(self, world: World) -> dict[str, Any]:
        sub = {"buyer": world.b1, "seller": world.op1, "manager": world.manager}.get(
            self.role, "marketplace"
        )
        claims: dict[str, Any] = {"sub": sub, "role": self.role, "name": self.name}
        if self.role == "seller":
            claims["seller"] = world.s1
        return claims


ROLES = {
    "buyer": Role("Покупатель b1", "buyer", frozenset({"A", "C"})),
    "seller": Role("Оператор s1", "seller", frozenset({"A", "B"})),
    "manager": Role("Менеджер", "manager", frozenset({"D"})),
}
SYSTEM = Role("Маркетплейс", "system", frozenset())


def signed(claims: dict[str, Any], ttl: float = 3600, secret: str = SECRET) -> str:
    return jwt.encode({**claims, "exp": int(time.time() + ttl)}, secret, algorithm="HS256")


def bad_tokens(claims: dict[str, Any]) -> dict[str, str]:
    """Tokens that must never get in, for the user of `claims`."""
    good = signed(claims)
    header, payload, signature = good.split(".")
    other = signed({**claims, "sub": claims["sub"] + "-x"})
    return {
        "expired": signed(claims, ttl=-30),
        "expired_by_one_second": signed(claims, ttl=-1),
        "other_secret": signed(claims, secret=SECRET + "-not-the-secret"),
        "alg_none": jwt.encode({**claims, "exp": int(time.time() + 3600)}, None, algorithm="none"),
        "payload_swapped": ".".join([header, other.split(".")[1], signature]),
        "signature_cut": ".".join([header, payload, signature[:-4]]),
        "hs512_same_secret": jwt.encode(
            {**claims, "exp": int(time.time() + 3600)}, SECRET, algorithm="HS512"
        ),
    }


async def build_world(server: ServerProcess) -> World:
    world = World(
        b1=uid("b1"),
        b2=uid("b2"),
        s1=uid("s1"),
        s2=uid("s2"),
        op1=uid("op1"),
        op2=uid("op2"),
        manager=uid("mgr"),
    )
    layout = {"A": (world.b1, world.s1), "B": (world.b2, world.s1)}
    layout |= {"C": (world.b1, world.s2), "D": (world.b2, world.s2)}
    async with (
        connect(server, token("buyer", world.b1)) as b1,
        connect(server, token("buyer", world.b2)) as b2,
        connect(server, token("seller", world.op2, seller=world.s2)) as shop2,
    ):
        buyers = {world.b1: b1, world.b2: b2}
        for label, (buyer, shop) in layout.items():
            order = uid("order")
            chat, claim = await open_claim(server, buyers[buyer], buyer, shop, order)
            sent = await buyers[buyer].request(
                {"type": "send", "chat": chat, "text": f"Сообщение в чате {label}"}
            )
            assert sent["type"] == "ack", sent
            world.chats[label] = Chat(label, buyer, shop, chat, claim, order)
        d = world.chats["D"]
        rejected = await shop2.request({"type": "return.reject", "claim": d.claim})
        assert rejected["type"] == "ack", rejected
        disputed = await b2.request({"type": "return.dispute", "claim": d.claim})
        assert disputed["type"] == "ack", disputed
    return world


async def snapshot(server: ServerProcess, world: World) -> dict[str, Any]:
    """Each chat's history and claims, as its buyer sees them, and its history as its shop
    sees it (the shop's notes and assignments, which the buyer never sees, included)."""
    seen: dict[str, Any] = {}
    shops_view: dict[str, Any] = {}
    for shop, operator in ((world.s1, world.op1), (world.s2, world.op2)):
        async with connect(server, token("seller", operator, seller=shop)) as owner:
            for label, chat in world.chats.items():
                if chat.shop != shop:
                    continue
                page = await owner.request({"type": "history", "chat": chat.chat, "limit": 100})
                shops_view[label] = [(e["seq"], e["kind"], e.get("text")) for e in page["events"]]
    for buyer in (world.b1, world.b2):
        async with connect(server, token("buyer", buyer)) as owner:
            listed = await owner.request({"type": "chats"})
            for label, chat in world.chats.items():
                if chat.buyer != buyer:
                    continue
                page = await owner.request({"type": "history", "chat": chat.chat, "limit": 100})
                summary = next(c for c in listed["chats"] if c["chat"] == chat.chat)
                seen[label] = {
                    "events": [(e["seq"], e["kind"], e.get("text")) for e in page["events"]],
                    "claims": summary["claims"],
                    "shop_events": shops_view[label],
                }
    return seen


def fill(template: dict[str, Any], chat: Chat | None) -> dict[str, Any]:
    """The frame for `chat` (None: ids that name nothing)."""
    values = (
        MISSING
        if chat is None
        else {"chat": chat.chat, "claim": chat.claim, "order": chat.order, "shop": chat.shop}
    )
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    frame: dict[str, Any] = json.loads(text)
    return frame


class Asker:
    """A socket read step by step: each frame is followed by a ping, so a frame that has no
    answer (a `read` that passed) is told apart from one that has. Events are kept."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []
        self.ephemeral: list[dict[str, Any]] = []
        self._n = 0

    async def ask(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        self._n += 1
        rid, barrier = f"q{self._n}", f"p{self._n}"
        await self.client.send_raw(self.client.encode({**frame, "id": rid}))
        await self.client.send_raw(self.client.encode({"type": "ping", "id": barrier}))
        answer: dict[str, Any] | None = None
        while True:
            reply = await self.client.recv(10)
            if reply["type"] == "event":
                self.events.append(reply)
            elif reply["type"] == "read":
                self.reads.append(reply)
            elif reply["type"] in ("typing", "presence"):
                # Unasked, like events: the other side typing, someone coming or going.
                self.ephemeral.append(reply)
            elif reply.get("id") == barrier:
                return answer
            else:
                assert reply.get("id") == rid and answer is None, reply
                answer = reply

    async def settle(self) -> None:
        await self.ask({"type": "ping"})


@contextlib.asynccontextmanager
async def asker(server: ServerProcess, tok: str) -> AsyncIterator[Asker]:
    async with connect(server, tok, read=False) as client:
        yield Asker(client)
    await asyncio.sleep(0)
