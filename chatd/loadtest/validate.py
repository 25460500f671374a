"""Is a message log one a chatd server could have written? The checks a replay relies on.

- positions increase; every stream's `seq` runs 1, 2, 3, ... and its times never go back;
- an order stream is one `order.registered`; a chat stream starts with `chat.opened`;
- every event's `data` is its kind's; messages are written by the chat's buyer or shop
  (with its operator) and hold 1 to 1000 characters or attachments;
- orders are registered before a chat or a claim names them, and belong to the chat's buyer
  and shop;
- every claim moves along the returns table, and is refunded at most once, where it must be.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from protocol.events import (
    CHAT_KINDS,
    ChatOpened,
    MessagePosted,
    OrderCard,
    OrderRegistered,
    RefundIssued,
    ReturnApproved,
    ReturnInitiated,
    ReturnRequested,
    ReturnResolved,
)
from protocol.logfile import LogRecord, typed

MAX_PROBLEMS = 50

# (claim stage, event kind) -> the stage after it. `*_nr` stages owe a refund next.
_CLAIM_MOVES: dict[tuple[str, str], str] = {
    ("none", "return.requested"): "requested",
    ("none", "return.initiated"): "awaiting_buyer",
    ("awaiting_buyer", "return.requested"): "requested",
    # Version 1.1: an offer ends unanswered; a request nobody decided goes to the managers.
    ("awaiting_buyer", "return.withdrawn"): "closed",
    ("awaiting_buyer", "return.expired"): "closed",
    ("requested", "return.escalated"): "disputed",
    ("requested", "return.approved pvz"): "approved_pvz",
    ("requested", "return.approved no_return"): "refund_due",
    ("requested", "return.rejected"): "rejected",
    ("rejected", "return.disputed"): "disputed",
    ("disputed", "return.resolved approve pvz"): "approved_pvz",
    ("disputed", "return.resolved approve no_return"): "refund_due",
    ("disputed", "return.resolved reject"): "closed",
    ("approved_pvz", "return.handed_in"): "handed_in",
    ("handed_in", "return.arrived"): "arrived_refund_due",
    ("refund_due", "refund.issued"): "closed",
    ("arrived_refund_due", "refund.issued"): "arrived",
    ("arrived", "return.inspected"): "closed",
}


@dataclass
class LogCheck:
    """What a log holds, and what is wrong with it (at most MAX_PROBLEMS are kept)."""

    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    chats: int = 0
    orders: int = 0
    claims: int = 0
    buyers: set[str] = field(default_factory=set)
    shops: set[str] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, record: LogRecord, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"pos {record.pos} ({record.stream} #{record.seq}): {message}")


@dataclass(slots=True)
class _Chat:
    buyer: str
    shop: str
    seq: int
    at: datetime
    owed: str | None = None  # a claim whose refund.issued must be the next event


def _claim_key(record: LogRecord, data: object) -> str:
    """The returns-table column of a claim event (approvals and resolutions carry a mode)."""
    if isinstance(data, ReturnApproved):
        return f"{record.kind} {data.mode}"
    if isinstance(data, ReturnResolved):
        if data.decision == "reject":
            return f"{record.kind} reject"
        return f"{record.kind} approve {data.mode}"
    return record.kind


class _Checker:
    def __init__(self) -> None:
        self.check = LogCheck()
        self.last_pos = 0
        self.order_seqs: dict[str, datetime] = {}
        self.orders: dict[str, OrderCard] = {}
        self.chats: dict[str, _Chat] = {}
        self.claims: dict[str, str] = {}

    def feed(self, record: LogRecord) -> None:
        check = self.check
        check.events += 1
        check.kinds[record.kind] += 1
        if record.pos <= self.last_pos:
            check.problem(record, f"position after {self.last_pos}: positions must increase")
        self.last_pos = max(self.last_pos, record.pos)
        try:
            data = typed(record)
        except (KeyError, ValueError, TypeError) as exc:
            check.problem(record, f"kind {record.kind!r} with data that is not its own: {exc}")
            return
        if record.kind == "order.registered":
            self._order(record, data)
        elif record.kind in CHAT_KINDS:
            self._chat_event(record, data)
        else:
            check.problem(record, f"unknown kind {record.kind!r}")

    def _order(self, record: LogRecord, data: object) -> None:
        assert isinstance(data, OrderRegistered)
        order = data.order
        if record.stream != "order:" + order.id or record.seq != 1:
            self.check.problem(record, "an order is the first and only event of order:{id}")
            return
        if order.id in self.orders:
            self.check.problem(record, f"order {order.id} registered twice")
        self.orders[order.id] = order
        self.check.orders += 1

    def _chat_event(self, record: LogRecord, data: object) -> None:
        check = self.check
        chat = self.chats.get(record.stream)
        if chat is None:
            if record.kind != "chat.opened" or record.seq != 1:
                check.problem(record, "a chat starts with chat.opened at seq 1")
                return
            assert isinstance(data, ChatOpened)
            self.chats[record.stream] = _Chat(data.buyer.id, data.seller.id, 1, record.at)
            check.chats += 1
            check.buyers.add(data.buyer.id)
            check.shops.add(data.seller.id)
            if data.order is not None:
                self._known_order(record, data.order.id, data.buyer.id, data.seller.id)
            return
        if record.seq != chat.seq + 1:
            check.problem(record, f"seq {record.seq} after {chat.seq}: a gap or a repeat")
        if record.at < chat.at:
            check.problem(record, "earlier than the event before it in the chat")
        chat.seq = max(chat.seq, record.seq)
        chat.at = max(chat.at, record.at)
        if chat.owed is not None:
            if not isinstance(data, RefundIssued) or data.claim != chat.owed:
                check.problem(record, f"claim {chat.owed}: refund.issued must follow at once")
            chat.owed = None
        if record.kind == "chat.opened":
            check.problem(record, "a second chat.opened")
        elif isinstance(data, MessagePosted):
            self._message(record, data, chat)
        else:
            self._claim_event(record, data, chat)

    def _message(self, record: LogRecord, data: MessagePosted, chat: _Chat) -> None:
        author = record.author
        if author.role == "buyer" and author.id != chat.buyer:
            self.check.problem(record, "a message by a buyer who is not the chat's")
        elif author.role == "seller":
            if author.id != chat.shop or author.operator is None:
                self.check.problem(record, "a shop's message needs the chat's shop and operator")
            else:
                self.check.operators.add(author.operator.id)
        elif author.role not in ("buyer", "seller"):
            self.check.problem(record, f"a message by {author.role}")
        text = (record.text or "").strip()
        if not (1 <= len(text) <= 1000) and not (not text and data.attachments):
            self.check.problem(record, f"a message of {len(text)} characters")

    def _claim_event(self, record: LogRecord, data: object, chat: _Chat) -> None:
        check = self.check
        claim = getattr(data, "claim", None)
        if not isinstance(claim, str):
            check.problem(record, "a claim event without a claim")
            return
        if isinstance(data, ReturnRequested | ReturnInitiated):
            self._known_order(record, data.order.id, chat.buyer, chat.shop)
        if isinstance(data, ReturnRequested) and record.author.role != "buyer":
            check.problem(record, "return.requested is written by the buyer")
        stage = self.claims.get(claim, "none")
        if stage == "none":
            check.claims += 1
        after = _CLAIM_MOVES.get((stage, _claim_key(record, data)))
        if after is None:
            check.problem(record, f"claim {claim}: {record.kind} is not allowed at {stage}")
            return
        self.claims[claim] = after
        if after in ("refund_due", "arrived_refund_due"):
            chat.owed = claim

    def _known_order(self, record: LogRecord, order: str, buyer: str, shop: str) -> None:
        card = self.orders.get(order)
        if card is None:
            self.check.problem(record, f"order {order} is named before it is registered")
        elif card.buyer.id != buyer or card.seller.id != shop:
            self.check.problem(record, f"order {order} is not between the chat's buyer and shop")

    def finish(self) -> LogCheck:
        for claim, stage in self.claims.items():
            if stage in ("refund_due", "arrived_refund_due"):
                self.check.problem_count += 1
                if len(self.check.problems) < MAX_PROBLEMS:
                    self.check.problems.append(f"claim {claim}: approved, but never refunded")
        return self.check


def check_log(records: Iterable[LogRecord]) -> LogCheck:
    checker = _Checker()
    for record in records:
        checker.feed(record)
    return checker.finish()
