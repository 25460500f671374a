"""The whole server against a model: a hypothesis state machine whose steps are real frames on
real sockets of a running `chatd serve` — two buyers, two shops (one with two operators) and a
manager — plus disconnects, reconnects with the last cursor, and server restarts (SIGTERM and
kill -9). A small in-memory model of chats and claims, written from docs/protocol.md alone, says
what each answer must be; after every step the sockets must have received exactly the events
their user may see, in order, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    order_body,
    register_order,
    token,
)

T = TypeVar("T")
PRICE = {"value": 118600, "currency": "RUB"}
LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")

BUYERS = ("b0", "b1")
SHOPS = ("s0", "s1")
OPERATORS = {"o0a": "s0", "o0b": "s0", "o1a": "s1"}
USERS = (*BUYERS, *OPERATORS, "m")
CHATS = tuple((b, s) for b in BUYERS for s in SHOPS)


# ---- the model -------------------------------------------------------------------------------


@dataclass
class ChatModel:
    opened: bool = False
    id: str = ""
    kinds: list[str] = field(default_factory=list)
    claim: str | None = None  # the claim's state, None before any
    managers_from: int | None = None

    @property
    def seq(self) -> int:
        return len(self.kinds)


@dataclass
class Model:
    chats: dict[tuple[str, str], ChatModel] = field(
        default_factory=lambda: {key: ChatModel() for key in CHATS}
    )
    # Every event of this example in commit order: (chat key, seq, kind).
    log: list[tuple[tuple[str, str], int, str]] = field(default_factory=list)

    def append(self, key: tuple[str, str], *kinds: str) -> int:
        chat = self.chats[key]
        first = chat.seq + 1
        for kind in kinds:
            chat.kinds.append(kind)
            self.log.append((key, chat.seq, kind))
        return first

    def visible(self, user: str, key: tuple[str, str], seq: int) -> bool:
        buyer, shop = key
        if user in BUYERS:
            return user == buyer
        if user in OPERATORS:
            return OPERATORS[user] == shop
        start = self.chats[key].managers_from
        return start is not None and seq >= start

    def sees_chat(self, user: str, key: tuple[str, str]) -> bool:
        chat = self.chats[key]
        if not chat.opened:
            return False
        if user == "m":
            return chat.managers_from is not None
        return self.visible(user, key, 1)


@dataclass
class Slot:
    """One user's socket across reconnects: what it received, and its cursor."""

    user: str
    client: Client | None = None
    stack: contextlib.AsyncExitStack | None = None
    cursor: str | None = None
    start: int = 0  # the model's log length when this user first connected
    received: list[tuple[str, int]] = field(default_factory=list)
    taken: int = 0  # events of the current client already moved into `received`
    started: bool = False


# ---- the machine -----------------------------------------------------------------------------


class ServerMachine(RuleBasedStateMachine):
    server: ServerProcess  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.prefix = uuid.uuid4().hex[:8]
        self.model = Model()
        self.slots = {user: Slot(user) for user in USERS}
        self.orders = {key: self.name(f"order-{key[0]}-{key[1]}") for key in CHATS}
        for (buyer, shop), order in self.orders.items():
            body = order_body(order, self.name(buyer), self.name(shop))
            assert register_order(self.server, body).status_code == 201
        self.chat_ids: dict[tuple[str, str], str] = {}

    def name(self, part: str) -> str:
        return f"{self.prefix}-{part}"

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(work, 30))

    def teardown(self) -> None:
        try:
            for slot in self.slots.values():
                if slot.client is None:
                    self.run(self._connect(slot))
            self.run(self._check_deliveries())
        finally:
            for slot in self.slots.values():
                self.run(self._disconnect(slot))
            self.loop.close()

    # ---- sockets -------------------------------------------------------------------------

    def token_of(self, user: str) -> str:
        if user in BUYERS:
            return token("buyer", self.name(user))
        if user in OPERATORS:
            return token("seller", self.name(user), seller=self.name(OPERATORS[user]))
        return token("manager", self.name(user))

    async def _connect(self, slot: Slot) -> None:
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            connect(self.server, self.token_of(slot.user), since=slot.cursor)
        )
        slot.client, slot.stack, slot.taken = client, stack, 0
        if not slot.started:
            slot.started = True
            slot.start = len(self.model.log)
            slot.cursor = client.welcome["cursor"]

    async def _disconnect(self, slot: Slot) -> None:
        if slot.stack is not None:
            self._take(slot)
            with contextlib.suppress(Exception):
                await slot.stack.aclose()
        slot.client = slot.stack = None

    def _take(self, slot: Slot) -> None:
        """Moves what the current socket received into the slot, and keeps its cursor."""
        assert slot.client is not None
        fresh = slot.client.events[slot.taken :]
        slot.taken += len(fresh)
        for event in fresh:
            slot.received.append((event["chat"], event["seq"]))
            slot.cursor = event["cursor"]

    async def _barrier(self, slot: Slot) -> None:
        assert slot.client is not None
        pong = await slot.client.request({"type": "ping"})
        assert pong["type"] == "pong", pong
        self._take(slot)

    async def _check_deliveries(self) -> None:
        for slot in self.slots.values():
            if slot.client is None:
                continue
            await self._barrier(slot)
            expected = [
                (self.chat_ids[key], seq)
                for key, seq, _ in self.model.log[slot.start :]
                if self.model.visible(slot.user, key, seq)
            ]
            assert slot.received == expected, (slot.user, slot.received, expected)

    def ask(self, user: str, frame: dict[str, Any]) -> dict[str, Any]:
        slot = self.slots[user]
        if slot.client is None:
            self.run(self._connect(slot))
        assert slot.client is not None
        return self.run(slot.client.request(frame))

    def chat_of(self, key: tuple[str, str]) -> str:
        """The chat's id; for a chat not opened yet, an id that names nothing yet."""
        return self.chat_ids.get(key, "c" + uuid.uuid5(uuid.NAMESPACE_OID, repr(key)).hex[:20])

    def claim_of(self, key: tuple[str, str]) -> str:
        from chatd.domain.ids import claim_id

        return claim_id(self.orders[key])

    def expect(self, reply: dict[str, Any], code: str) -> None:
        if code == "ack":
            assert reply["type"] == "ack", reply
        else:
            assert reply["type"] == "error" and reply["code"] == code, (code, reply)

    # ---- steps: sockets and the server -----------------------------------------------------

    @rule(user=st.sampled_from(USERS))
    def reconnect(self, user: str) -> None:
        slot = self.slots[user]
        self.run(self._disconnect(slot))
        self.run(self._connect(slot))

    @rule(user=st.sampled_from(USERS))
    def disconnect(self, user: str) -> None:
        self.run(self._disconnect(self.slots[user]))

    @rule(kill=st.booleans())
    def restart(self, kill: bool) -> None:
        for slot in self.slots.values():
            if slot.client is not None:
                self.run(self._barrier(slot))
        if kill:
            self.server.kill()
        else:
            self.server.stop()
        for slot in self.slots.values():
            self.run(self._disconnect(slot))
        self.server.start()

    # ---- steps: chats and messages ---------------------------------------------------------

    @rule(key=st.sampled_from(CHATS), with_order=st.booleans())
    def open(self, key: tuple[str, str], with_order: bool) -> None:
        buyer, shop = key
        frame: dict[str, Any] = {"type": "open", "seller": self.name(shop)}
        if with_order:
            frame["order"] = self.orders[key]
        reply = self.ask(buyer, frame)
        self.expect(reply, "ack")
        chat = self.model.chats[key]
        if not chat.opened:
            chat.opened = True
            self.chat_ids[key] = reply["chat"]
            assert reply["seq"] == 1
            self.model.append(key, "chat.opened")
        assert reply["chat"] == self.chat_ids[key]

    @rule(
        user=st.sampled_from(USERS),
        key=st.sampled_from(CHATS),
        text=st.sampled_from(
            ["Здравствуйте!", "  юбка пришла мятая  ", "", "пишите в телеграм @shop"]
        ),
    )
    def send(self, user: str, key: tuple[str, str], text: str) -> None:
        reply = self.ask(user, {"type": "send", "chat": self.chat_of(key), "text": text})
        if user == "m" and reply.get("code") == "forbidden":
            return  # a manager never writes: forbidden (or not_found where it sees nothing)
        if not self.model.sees_chat(user, key) or user == "m":
            self.expect(reply, "not_found")
        elif not text.strip():
            self.expect(reply, "bad_frame")
        elif "телеграм" in text:
            self.expect(reply, "contacts_forbidden")
        else:
            self.expect(reply, "ack")
            assert reply["seq"] == self.model.append(key, "message")

    @rule(user=st.sampled_from(USERS), key=st.sampled_from(CHATS))
    def history(self, user: str, key: tuple[str, str]) -> None:
        reply = self.ask(user, {"type": "history", "chat": self.chat_of(key), "limit": 100})
        if not self.model.sees_chat(user, key):
            self.expect(reply, "not_found")
            return
        assert reply["type"] == "history", reply
        got = [(e["seq"], e["kind"]) for e in reply["events"]]
        kinds = self.model.chats[key].kinds
        assert got == [(n, kind) for n, kind in enumerate(kinds, start=1)]

    @rule(user=st.sampled_from(USERS))
    def chats(self, user: str) -> None:
        reply = self.ask(user, {"type": "chats", "limit": 100})
        assert reply["type"] == "chats", reply
        mine = {c["chat"]: c for c in reply["chats"] if c["chat"] in self.chat_ids.values()}
        expected = {self.chat_ids[k] for k in CHATS if self.model.sees_chat(user, k)}
        assert set(mine) == expected, (user, set(mine), expected)
        for key in CHATS:
            if self.chat_ids.get(key) in mine:
                summary = mine[self.chat_ids[key]]
                state = self.model.chats[key].claim
                assert [c["state"] for c in summary["claims"]] == ([state] if state else [])
                assert summary["last"]["seq"] == self.model.chats[key].seq

    # ---- steps: returns --------------------------------------------------------------------

    @rule(key=st.sampled_from(CHATS), as_other=st.booleans())
    def request_return(self, key: tuple[str, str], as_other: bool) -> None:
        buyer = key[0] if not as_other else next(b for b in BUYERS if b != key[0])
        frame = {"type": "return.request", "chat": self.chat_of(key), "order": self.orders[key]}
        reply = self.ask(buyer, frame)
        chat = self.model.chats[key]
        if as_other or not chat.opened:
            self.expect(reply, "not_found")
        elif chat.claim in (None, "awaiting_buyer"):
            self.expect(reply, "ack")
            assert reply["seq"] == self.model.append(key, "return.requested")
            chat.claim = "requested"
        else:
            self.expect(reply, "return_already_requested")

    @rule(key=st.sampled_from(CHATS), operator=st.sampled_from(sorted(OPERATORS)))
    def initiate_return(self, key: tuple[str, str], operator: str) -> None:
        frame = {"type": "return.initiate", "chat": self.chat_of(key), "order": self.orders[key]}
        reply = self.ask(operator, frame)
        chat = self.model.chats[key]
        if OPERATORS[operator] != key[1] or not chat.opened:
            self.expect(reply, "not_found")
        elif chat.claim is None:
            self.expect(reply, "ack")
            assert reply["seq"] == self.model.append(key, "return.initiated")
            chat.claim = "awaiting_buyer"
        else:
            assert reply["type"] == "error", reply
            assert reply["code"] in ("conflict", "return_already_requested"), reply

    def _claim_step(self, user: str, key: tuple[str, str], frame: dict[str, Any]) -> dict[str, Any]:
        return self.ask(user, {**frame, "claim": self.claim_of(key)})

    def _own_claim(self, user: str, key: tuple[str, str]) -> bool:
        chat = self.model.chats[key]
        return chat.claim is not None and self.model.sees_chat(user, key)

    @rule(
        key=st.sampled_from(CHATS),
        operator=st.sampled_from(sorted(OPERATORS)),
        mode=st.sampled_from(["pvz", "no_return"]),
    )
    def approve(self, key: tuple[str, str], operator: str, mode: str) -> None:
        frame = {"type": "return.approve", "mode": mode, "amount": PRICE}
        reply = self._claim_step(operator, key, frame)
        chat = self.model.chats[key]
        if not self._own_claim(operator, key):
            self.expect(reply, "not_found")
        elif chat.claim == "requested":
            self.expect(reply, "ack")
            kinds = ["return.approved"] + (["refund.issued"] if mode == "no_return" else [])
            assert reply["seq"] == self.model.append(key, *kinds)
            chat.claim = "approved"
        else:
            self.expect(reply, "conflict")

    @rule(key=st.sampled_from(CHATS), operator=st.sampled_from(sorted(OPERATORS)))
    def reject(self, key: tuple[str, str], operator: str) -> None:
        reply = self._claim_step(operator, key, {"type": "return.reject"})
        chat = self.model.chats[key]
        if not self._own_claim(operator, key):
            self.expect(reply, "not_found")
        elif chat.claim == "requested":
            self.expect(reply, "ack")
            assert reply["seq"] == self.model.append(key, "return.rejected")
            chat.claim = "rejected"
        else:
            self.expect(reply, "conflict")

    @rule(key=st.sampled_from(CHATS), as_other=st.booleans())
    def dispute(self, key: tuple[str, str], as_other: bool) -> None:
        buyer = key[0] if not as_other else next(b for b in BUYERS if b != key[0])
        reply = self._claim_step(buyer, key, {"type": "return.dispute"})
        chat = self.model.chats[key]
        if not self._own_claim(buyer, key):
            self.expect(reply, "not_found")
        elif chat.claim == "rejected":
            self.expect(reply, "ack")
            seq = self.model.append(key, "return.disputed")
            assert reply["seq"] == seq
            chat.claim = "disputed"
            if chat.managers_from is None:
                chat.managers_from = seq
        else:
            self.expect(reply, "conflict")

    @rule(key=st.sampled_from(CHATS), approve=st.booleans())
    def resolve(self, key: tuple[str, str], approve: bool) -> None:
        frame: dict[str, Any] = {"type": "return.resolve", "decision": "reject"}
        if approve:
            frame = {"type": "return.resolve", "decision": "approve", "mode": "no_return"}
        reply = self._claim_step("m", key, frame)
        chat = self.model.chats[key]
        if not self._own_claim("m", key):
            self.expect(reply, "not_found")
        elif chat.claim == "disputed":
            self.expect(reply, "ack")
            kinds = ["return.resolved"] + (["refund.issued"] if approve else [])
            assert reply["seq"] == self.model.append(key, *kinds)
            chat.claim = "resolved_approved" if approve else "resolved_rejected"
        else:
            self.expect(reply, "conflict")

    # ---- what holds after every step ------------------------------------------------------

    @invariant()
    def every_socket_got_exactly_what_its_user_may_see(self) -> None:
        self.run(self._check_deliveries())

    @precondition(lambda self: any(s.client is not None for s in self.slots.values()))
    @rule()
    def ping_everyone(self) -> None:
        for slot in self.slots.values():
            if slot.client is not None:
                self.run(self._barrier(slot))


@pytest.mark.timeout(600)
def test_the_server_behaves_like_its_model(tmp_path: Path) -> None:
    server = ServerProcess(db=tmp_path / "model.db", extra_args=LIFTED)
    server.start()
    try:
        ServerMachine.server = server
        run = ServerMachine.TestCase
        run.settings = settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        run().runTest()
    finally:
        server.stop()
