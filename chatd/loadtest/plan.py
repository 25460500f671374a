"""From a message log to what a replay does: who connects, and for each chat the commands
that make its events again, when, and which events every participant must then receive.

Every chat event comes from one command of one actor: `chat.opened` from the buyer's
`open`, a message from its author's `send`, a request and a dispute from the buyer, an offer,
an approval and a refusal from an operator of the shop (the last one who wrote in the chat),
a manager's `return.resolve`, and the goods' travel from the marketplace's HTTP API. A
`refund.issued` is what the command before it also appends. Orders are registered over HTTP.

The replay may be split over several processes: a share holds whole shops (with their chats,
orders and operators), and the buyers of those chats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from protocol.events import (
    Attachment,
    ChatOpened,
    MessagePosted,
    Money,
    OrderCard,
    OrderRegistered,
    RefundIssued,
    ReturnApproved,
    ReturnArrived,
    ReturnDisputed,
    ReturnEscalated,
    ReturnExpired,
    ReturnHandedIn,
    ReturnInitiated,
    ReturnInspected,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
    ReturnWithdrawn,
    Role,
)
from protocol.logfile import LogRecord, typed

MANAGER_ID = "replay-manager"


@dataclass(frozen=True, slots=True)
class Actor:
    """A user the replay connects as; `shop` for an operator."""

    role: Role
    id: str
    name: str
    shop: str | None = None
    shop_name: str | None = None


@dataclass(slots=True)
class Action:
    """One command of the replay: `verb` is the frame (or `logistics` over HTTP)."""

    pos: int
    at: float  # seconds after the log's first event
    verb: str
    actor: Actor | None  # None: the marketplace, over HTTP
    text: str = ""
    order: str | None = None
    claim: str | None = None  # the claim's id in the log
    mode: str | None = None
    amount: Money | None = None
    decision: str | None = None
    step: str | None = None
    defect: bool = False
    attachments: tuple[Attachment, ...] = ()
    events: int = 1  # the chat events it appends


@dataclass(frozen=True, slots=True)
class Expected:
    """An event as every participant must receive it; `text` only for messages."""

    kind: str
    role: str
    text: str | None


@dataclass(slots=True)
class ChatPlan:
    chat: str  # the chat's id in the log
    buyer: str
    shop: str
    actions: list[Action] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OrderPlan:
    pos: int
    at: float
    card: OrderCard


@dataclass(slots=True)
class Share:
    """What one replay process does."""

    index: int
    chats: list[ChatPlan] = field(default_factory=list)
    orders: list[OrderPlan] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)

    @property
    def actions(self) -> int:
        return len(self.orders) + sum(len(chat.actions) for chat in self.chats)

    @property
    def events(self) -> int:
        return len(self.orders) + sum(len(chat.expected) for chat in self.chats)


@dataclass(slots=True)
class Plan:
    start: datetime | None
    span: float
    shares: list[Share]

    @property
    def actions(self) -> int:
        return sum(share.actions for share in self.shares)

    @property
    def events(self) -> int:
        return sum(share.events for share in self.shares)

    @property
    def connections(self) -> int:
        return sum(len(share.actors) for share in self.shares)


class PlanError(Exception):
    """A log whose events no replay can make again."""


def _operator_id(shop: str) -> str:
    return f"replay-op-{shop}"[:128]


class _Planner:
    def __init__(self, records: list[LogRecord]) -> None:
        self.records = records
        self.start = min((r.at for r in records), default=None)
        self.chats: dict[str, ChatPlan] = {}
        self.orders: dict[str, OrderPlan] = {}
        self.order_of_claim: dict[str, str] = {}
        self.buyers: dict[str, Actor] = {}
        self.shop_names: dict[str, str] = {}
        # The operator who last wrote in each chat acts for the shop there.
        self.last_operator: dict[str, Actor] = {}
        self.operators: dict[str, list[Actor]] = {}
        self.last_action: dict[str, Action] = {}

    def offset(self, record: LogRecord) -> float:
        assert self.start is not None
        return (record.at - self.start).total_seconds()

    def operator_for(self, chat: ChatPlan) -> Actor:
        actor = self.last_operator.get(chat.chat)
        if actor is not None:
            return actor
        known = self.operators.get(chat.shop)
        if known:
            return known[0]
        name = self.shop_names.get(chat.shop, chat.shop)
        actor = Actor("seller", _operator_id(chat.shop), name, chat.shop, name)
        self.operators[chat.shop] = [actor]
        return actor

    def build(self) -> None:
        for record in self.records:
            if record.author.role == "seller" and record.author.operator is not None:
                operator = record.author.operator
                actor = Actor("seller", operator.id, operator.name, record.author.id)
                known = self.operators.setdefault(record.author.id, [])
                if actor not in known:
                    known.append(actor)
        for record in self.records:
            self.add(record)

    def add(self, record: LogRecord) -> None:
        data = typed(record)
        if isinstance(data, OrderRegistered):
            self.orders[data.order.id] = OrderPlan(record.pos, self.offset(record), data.order)
            return
        if isinstance(data, ChatOpened):
            self._opened(record, data)
            return
        chat = self.chats.get(record.stream)
        if chat is None:
            raise PlanError(f"pos {record.pos}: an event of {record.stream} before chat.opened")
        chat.expected.append(
            Expected(
                record.kind,
                record.author.role,
                record.text if isinstance(data, MessagePosted) else None,
            )
        )
        if isinstance(data, RefundIssued):
            # Appended by the command before it, in the same commit.
            last = self.last_action.get(chat.chat)
            if last is None:
                raise PlanError(f"pos {record.pos}: a refund with no command before it")
            last.events += 1
            return
        action = self._action(record, data, chat)
        chat.actions.append(action)
        self.last_action[chat.chat] = action

    def _opened(self, record: LogRecord, data: ChatOpened) -> None:
        buyer = self.buyers.setdefault(
            data.buyer.id, Actor("buyer", data.buyer.id, data.buyer.name)
        )
        self.shop_names[data.seller.id] = data.seller.name
        chat = ChatPlan(record.stream, data.buyer.id, data.seller.id)
        self.chats[record.stream] = chat
        chat.expected.append(Expected(record.kind, record.author.role, None))
        order = data.order.id if data.order is not None else None
        action = Action(record.pos, self.offset(record), "open", buyer, order=order)
        chat.actions.append(action)
        self.last_action[chat.chat] = action

    def _action(self, record: LogRecord, data: msgspec.Struct, chat: ChatPlan) -> Action:
        at = self.offset(record)
        buyer = self.buyers[chat.buyer]
        match data:
            case MessagePosted():
                author = record.author
                actor = buyer
                if author.role == "seller":
                    if author.operator is None:
                        raise PlanError(f"pos {record.pos}: a shop's message with no operator")
                    op = author.operator
                    actor = Actor("seller", op.id, op.name, author.id)
                    self.last_operator[chat.chat] = actor
                return Action(
                    record.pos,
                    at,
                    "send",
                    actor,
                    text=record.text or "",
                    attachments=tuple(data.attachments),
                )
            case ReturnRequested():
                self.order_of_claim[data.claim] = data.order.id
                return Action(
                    record.pos, at, "request", buyer, order=data.order.id, claim=data.claim
                )
            case ReturnInitiated():
                self.order_of_claim[data.claim] = data.order.id
                operator = self.operator_for(chat)
                return Action(
                    record.pos, at, "initiate", operator, order=data.order.id, claim=data.claim
                )
            case ReturnApproved():
                return Action(
                    record.pos,
                    at,
                    "approve",
                    self.operator_for(chat),
                    claim=data.claim,
                    mode=data.mode,
                    amount=data.amount,
                )
            case ReturnRejected():
                return Action(record.pos, at, "reject", self.operator_for(chat), claim=data.claim)
            case ReturnWithdrawn():
                operator = self.operator_for(chat)
                return Action(record.pos, at, "withdraw", operator, claim=data.claim)
            case ReturnEscalated() | ReturnExpired():
                raise PlanError(
                    f"pos {record.pos}: {record.kind} is written by the server itself when a "
                    "claim's deadline passes; a replay sends clients' commands only and cannot "
                    "make it again"
                )
            case ReturnDisputed():
                return Action(record.pos, at, "dispute", buyer, claim=data.claim)
            case ReturnResolved():
                manager = Actor("manager", MANAGER_ID, "Менеджер")
                return Action(
                    record.pos,
                    at,
                    "resolve",
                    manager,
                    claim=data.claim,
                    decision=data.decision,
                    mode=data.mode,
                )
            case ReturnHandedIn() | ReturnArrived() | ReturnInspected():
                order = self.order_of_claim.get(data.claim)
                if order is None:
                    raise PlanError(f"pos {record.pos}: goods of claim {data.claim} never asked")
                step = record.kind.removeprefix("return.")
                defect = data.defect if isinstance(data, ReturnInspected) else False
                return Action(
                    record.pos,
                    at,
                    "logistics",
                    None,
                    order=order,
                    claim=data.claim,
                    step=step,
                    defect=defect,
                )
        raise PlanError(f"pos {record.pos}: no command makes a {record.kind} event")


def _shop_weights(planner: _Planner) -> dict[str, int]:
    weights: dict[str, int] = {}
    for chat in planner.chats.values():
        weights[chat.shop] = weights.get(chat.shop, 0) + len(chat.actions)
    for order in planner.orders.values():
        shop = order.card.seller.id
        weights[shop] = weights.get(shop, 0) + 1
    return weights


def make_plan(records: Iterable[LogRecord], shares: int = 1) -> Plan:
    """The replay of `records`, split into `shares` parts of about equal work."""
    ordered = sorted(records, key=lambda r: r.pos)
    planner = _Planner(ordered)
    planner.build()
    weights = _shop_weights(planner)
    count = max(1, min(shares, len(weights) or 1))
    parts = [Share(index=i) for i in range(count)]
    load = [0] * count
    share_of: dict[str, int] = {}
    # Largest shops first, each to the least loaded share.
    for shop, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0])):
        target = load.index(min(load))
        share_of[shop] = target
        load[target] += weight
    for chat in planner.chats.values():
        parts[share_of[chat.shop]].chats.append(chat)
    for order in sorted(planner.orders.values(), key=lambda o: o.pos):
        parts[share_of[order.card.seller.id]].orders.append(order)
    for part in parts:
        part.actors = _actors_of(part)
    span = max((r.at for r in ordered), default=None)
    total = (span - planner.start).total_seconds() if span and planner.start else 0.0
    return Plan(start=planner.start, span=total, shares=parts)


def _actors_of(share: Share) -> list[Actor]:
    seen: dict[tuple[str, str, str | None], Actor] = {}
    for chat in share.chats:
        for action in chat.actions:
            actor = action.actor
            if actor is not None:
                seen.setdefault((actor.role, actor.id, actor.shop), actor)
    return sorted(seen.values(), key=lambda a: (a.role, a.id, a.shop or ""))
