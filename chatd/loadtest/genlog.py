"""`chatd gen-log`: synthetic message logs of any size, the same for the same seed.

N shops (each with one to three operators) and M buyers; every buyer chats with one shop or
a few, busy shops more than quiet ones. A chat opens, often with an order, and runs a
conversation of Russian messages of realistic lengths; a share of the chats with an order
goes through a return, every path of the returns table in turn. Each event of a chat follows
the one before by a think time; the log's `at` times lie within `span` seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from chatd.loadtest import corpus
from protocol import texts
from protocol.events import (
    Author,
    ChatOpened,
    MessagePosted,
    Money,
    Operator,
    OrderCard,
    OrderRegistered,
    Party,
    RefundIssued,
    ReturnApproved,
    ReturnArrived,
    ReturnDisputed,
    ReturnHandedIn,
    ReturnInitiated,
    ReturnInspected,
    ReturnMode,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
    ReturnWithdrawn,
    kind_of,
)
from protocol.logfile import LogRecord

MAX_TEXT = 1000
EVENTS_PER_CHAT = 8.5  # about what a chat of this generator holds, its orders included
CHATS_PER_OPERATOR = 40
MAX_OPERATORS = 30

# Every path a claim can take, as the steps that drive it (docs/protocol.md section 7).
PATHS: dict[str, tuple[str, ...]] = {
    "approve_no_return": ("request", "approve no_return"),
    "approve_pvz": ("request", "approve pvz", "handed_in", "arrived", "inspected"),
    "reject": ("request", "reject"),
    "dispute_approve_no_return": ("request", "reject", "dispute", "resolve approve no_return"),
    "dispute_approve_pvz": (
        "request",
        "reject",
        "dispute",
        "resolve approve pvz",
        "handed_in",
        "arrived",
        "inspected",
    ),
    "dispute_reject": ("request", "reject", "dispute", "resolve reject"),
    "initiate_no_return": ("initiate", "request", "approve no_return"),
    "initiate_pvz": ("initiate", "request", "approve pvz", "handed_in", "arrived", "inspected"),
    "pending": ("request",),
    "offered": ("initiate",),
    # Version 1.1: the shop withdraws an offer. Not here: what the server does by itself when
    # a deadline passes (`return.escalated`, `return.expired`), which a replay, sending
    # only the clients' commands, could not make again.
    "withdrawn": ("initiate", "withdraw"),
}
# The kinds only a server's deadlines write, which the generator leaves out (see PATHS).
DEADLINE_KINDS = frozenset({"return.escalated", "return.expired"})


@dataclass(frozen=True, slots=True)
class GenSpec:
    shops: int = 50
    buyers: int = 500
    events: int = 10_000
    seed: int = 1
    span: float = 3600.0  # seconds of log time
    returns: float = 0.15  # the share of chats with an order that go through a return
    start: datetime = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
    marketplace: str = "Wildberries"
    timezone: str = "Europe/Moscow"


@dataclass(frozen=True, slots=True)
class _Shop:
    id: str
    name: str
    operators: tuple[Operator, ...]


@dataclass(slots=True)
class _Step:
    """Events appended together, `delay` seconds after the step before in the same chat."""

    delay: float
    stream: str
    events: list[tuple[Author, msgspec.Struct, str | None, str | None]]


@dataclass(slots=True)
class _Chat:
    steps: list[_Step] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(step.events) for step in self.steps)


class _Generator:
    def __init__(self, spec: GenSpec) -> None:
        if spec.shops < 1 or spec.buyers < 1 or spec.events < 1:
            raise ValueError("shops, buyers and events must be at least 1")
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.timezone = ZoneInfo(spec.timezone)
        self.system = Author(role="system", id="system", name=spec.marketplace)
        # Busy shops get more chats than quiet ones (a Zipf-like spread), and more operators.
        self.weights = [1.0 / (i + 1) ** 0.8 for i in range(spec.shops)]
        total = sum(self.weights)
        chats = spec.events / EVENTS_PER_CHAT
        self.shops = [self._shop(i, chats * w / total) for i, w in enumerate(self.weights)]
        self.buyers = [self._buyer(i) for i in range(spec.buyers)]
        self.orders = 0
        self.return_chats = 0

    # ---- people ------------------------------------------------------------------------------

    def _person(self) -> str:
        return f"{self.rng.choice(corpus.FIRST_NAMES)} {self.rng.choice(corpus.INITIALS)}."

    def _shop(self, index: int, chats: float) -> _Shop:
        """A shop expecting about `chats` chats: one operator per CHATS_PER_OPERATOR of
        them, and some small shops with a spare one or two."""
        shop_id = f"s{index + 1:04d}"
        name = self.rng.choice(corpus.SHOP_PREFIXES) + self.rng.choice(corpus.SHOP_WORDS)
        if index >= len(corpus.SHOP_WORDS):
            name = f"{name} {index + 1}"
        needed = min(MAX_OPERATORS, math.ceil(chats / CHATS_PER_OPERATOR))
        count = max(1, needed + self.rng.choice((0, 0, 1, 2)))
        operators = tuple(
            Operator(id=f"op{index + 1:04d}-{k + 1}", name=self._person()) for k in range(count)
        )
        return _Shop(shop_id, name, operators)

    def _buyer(self, index: int) -> Party:
        return Party(id=f"b{index + 1:06d}", name=self._person())

    # ---- texts -------------------------------------------------------------------------------

    def text(self, side: str) -> str:
        rng = self.rng
        bank = corpus.BUYER if side == "buyer" else corpus.SELLER
        target = min(MAX_TEXT, max(2, int(rng.lognormvariate(math.log(60), 0.9))))
        if target < 45:
            return rng.choice(bank["thanks"] if side == "buyer" else bank["closing"])
        shapes = corpus.BUYER_SHAPES if side == "buyer" else corpus.SELLER_SHAPES
        parts = [rng.choice(bank[intent]) for intent in rng.choice(shapes)]
        more = ("problem", "question") if side == "buyer" else ("answer", "sorry")
        length = sum(len(p) for p in parts) + len(parts) - 1
        while length < target:
            sentence = rng.choice(bank[rng.choice(more)])
            if length + 1 + len(sentence) > MAX_TEXT:
                break
            parts.append(sentence)
            length += 1 + len(sentence)
        return " ".join(parts)

    # ---- orders ------------------------------------------------------------------------------

    def order(self, buyer: Party, shop: _Shop) -> OrderCard:
        rng = self.rng
        self.orders += 1
        product = rng.choice(corpus.PRODUCTS)
        start = self.spec.start
        purchased = start - timedelta(days=rng.uniform(20, 60))
        received = purchased + timedelta(days=rng.uniform(2, 5))
        if product.non_returnable:
            # Goods that may be returned at once: received only days ago.
            received = start - timedelta(days=rng.uniform(1, 5))
            purchased = received - timedelta(days=rng.uniform(2, 5))
        low, high = product.price_rub
        return OrderCard(
            id=f"o{self.orders:08d}",
            buyer=buyer,
            seller=Party(id=shop.id, name=shop.name),
            article=str(rng.randint(10_000_000, 299_999_999)),
            name=product.name,
            brand=product.brand,
            price=Money(value=rng.randint(low, high) * 100, currency="RUB"),
            purchased_at=_second(purchased),
            received_at=_second(received),
            non_returnable=product.non_returnable,
            size=rng.choice(product.sizes) if product.sizes else None,
            color=rng.choice(product.colors) if product.colors else None,
        )

    # ---- chats -------------------------------------------------------------------------------

    def chat(self, buyer: Party, shop: _Shop, *, plain: bool = False) -> _Chat:
        rng = self.rng
        chat_id = f"c-{buyer.id}-{shop.id}"
        chat = _Chat()
        card = None if plain or rng.random() >= 0.75 else self.order(buyer, shop)
        if card is not None:
            registered = (self.system, OrderRegistered(order=card), None, None)
            chat.steps.append(_Step(0.0, "order:" + card.id, [registered]))
        opened = ChatOpened(buyer=buyer, seller=Party(id=shop.id, name=shop.name), order=card)
        chat.steps.append(_Step(rng.uniform(1, 30), chat_id, [(self.system, opened, None, None)]))
        if plain:
            return chat
        buyer_author = Author(role="buyer", id=buyer.id, name=buyer.name)
        operator = rng.choice(shop.operators)
        seller_author = Author(role="seller", id=shop.id, name=shop.name, operator=operator)

        def message(side: str) -> None:
            author = buyer_author if side == "buyer" else seller_author
            delay = rng.expovariate(1 / 40) + 3 if side == "buyer" else rng.expovariate(1 / 150)
            event = (author, MessagePosted(), self.text(side), None)
            chat.steps.append(_Step(delay + 5, chat_id, [event]))

        def conversation(count: int) -> None:
            side = "buyer"
            for _ in range(count):
                message(side)
                if rng.random() < 0.75:
                    side = "seller" if side == "buyer" else "buyer"

        count = min(80, max(1, int(rng.lognormvariate(math.log(5), 0.8))))
        if card is not None and rng.random() < self.spec.returns:
            path = list(PATHS.values())[self.return_chats % len(PATHS)]
            self.return_chats += 1
            conversation(max(1, count // 2))
            self.claim_steps(chat, chat_id, card, path, buyer_author, message)
            conversation(count // 3)
        else:
            conversation(count)
        return chat

    def claim_steps(
        self,
        chat: _Chat,
        chat_id: str,
        card: OrderCard,
        path: tuple[str, ...],
        buyer: Author,
        message: Callable[[str], None],
    ) -> None:
        rng = self.rng
        claim = "r-" + card.id
        amount = card.price
        system = self.system
        marketplace = self.spec.marketplace
        refund = (system, RefundIssued(claim=claim, amount=amount), texts.REFUND_ISSUED, None)
        for action in path:
            events: list[tuple[Author, msgspec.Struct, str | None, str | None]]
            if action == "request":
                if rng.random() < 0.5:
                    message("buyer")
                data: msgspec.Struct = ReturnRequested(claim=claim, order=card, amount=amount)
                events = [(buyer, data, texts.return_request_text(card, self.timezone), None)]
            elif action == "initiate":
                data = ReturnInitiated(claim=claim, order=card)
                events = [(system, data, texts.AWAITING_BUYER, texts.offer_text(card))]
            elif action.startswith("approve"):
                mode: ReturnMode = "pvz" if action.endswith("pvz") else "no_return"
                data = ReturnApproved(claim=claim, mode=mode, amount=amount)
                events = [(system, data, texts.APPROVED, None)]
                if mode == "no_return":
                    events.append(refund)
            elif action == "reject":
                events = [(system, ReturnRejected(claim=claim), texts.REJECTED, None)]
            elif action == "dispute":
                data = ReturnDisputed(claim=claim)
                events = [(system, data, texts.disputed_text(marketplace), None)]
            elif action == "withdraw":
                events = [(system, ReturnWithdrawn(claim=claim), texts.WITHDRAWN, None)]
            elif action.startswith("resolve"):
                approved = "approve" in action
                resolve_mode: ReturnMode | None = None
                if approved:
                    resolve_mode = "pvz" if action.endswith("pvz") else "no_return"
                data = ReturnResolved(
                    claim=claim, decision="approve" if approved else "reject", mode=resolve_mode
                )
                text = (
                    texts.resolved_approved_text(marketplace)
                    if approved
                    else texts.resolved_rejected_text(marketplace)
                )
                events = [(system, data, text, None)]
                if resolve_mode == "no_return":
                    events.append(refund)
            elif action == "handed_in":
                events = [(system, ReturnHandedIn(claim=claim), texts.HANDED_IN, None)]
            elif action == "arrived":
                events = [(system, ReturnArrived(claim=claim), texts.ARRIVED, None), refund]
            else:
                defect = rng.random() < 0.3
                data = ReturnInspected(claim=claim, defect=defect)
                events = [(system, data, texts.inspected_text(defect), None)]
            chat.steps.append(_Step(rng.expovariate(1 / 300) + 10, chat_id, events))
            if action in ("approve pvz", "approve no_return", "reject") and rng.random() < 0.5:
                message("seller")

    # ---- the whole log -----------------------------------------------------------------------

    def chats(self) -> Iterator[_Chat]:
        """Chats until the log has exactly `spec.events` events."""
        rng = self.rng
        budget = self.spec.events
        pairs: set[tuple[int, int]] = set()
        order = list(range(len(self.buyers)))
        rng.shuffle(order)
        turn = 0
        while budget > 0:
            buyer_index = order[turn % len(order)]
            turn += 1
            shop_index = self._free_shop(buyer_index, pairs)
            if shop_index is None:
                if len(pairs) >= len(self.buyers) * len(self.shops):
                    raise ValueError(
                        f"{self.spec.events} events need more buyers or shops: every pair "
                        "already has its chat"
                    )
                continue
            pairs.add((buyer_index, shop_index))
            buyer, shop = self.buyers[buyer_index], self.shops[shop_index]
            chat = self.chat(buyer, shop)
            if chat.size > budget:
                # The last chat: opened, then as many messages as the budget still holds.
                chat = self.chat(buyer, shop, plain=True)
                chat_id = chat.steps[-1].stream
                author = Author(role="buyer", id=buyer.id, name=buyer.name)
                for _ in range(budget - 1):
                    event = (author, MessagePosted(), self.text("buyer"), None)
                    chat.steps.append(_Step(rng.uniform(2, 30), chat_id, [event]))
            budget -= chat.size
            yield chat

    def _free_shop(self, buyer: int, pairs: set[tuple[int, int]]) -> int | None:
        for _ in range(8):
            shop = self.rng.choices(range(len(self.shops)), self.weights)[0]
            if (buyer, shop) not in pairs:
                return shop
        free = [s for s in range(len(self.shops)) if (buyer, s) not in pairs]
        return self.rng.choice(free) if free else None


def generate(spec: GenSpec, progress: Callable[[int], None] | None = None) -> list[LogRecord]:
    """The log: `spec.events` records in position order. `progress` is told how many
    events each chat added, as the chats are made."""
    generator = _Generator(spec)
    span = spec.span
    timed: list[tuple[float, int, int, LogRecord]] = []
    seqs: dict[str, int] = {}
    for number, chat in enumerate(generator.chats()):
        total = sum(step.delay for step in chat.steps)
        scale = 1.0 if total <= span else span / total
        offset = generator.rng.uniform(0, max(0.0, span - total * scale))
        moment = offset
        for step in chat.steps:
            moment += step.delay * scale
            at = spec.start + timedelta(seconds=round(moment, 3))
            for author, data, text, text_buyer in step.events:
                seq = seqs.get(step.stream, 0) + 1
                seqs[step.stream] = seq
                record = LogRecord(
                    pos=0,
                    stream=step.stream,
                    seq=seq,
                    at=at,
                    kind=kind_of(data),
                    author=author,
                    data=data,
                    text=text,
                    text_buyer=text_buyer,
                )
                timed.append((round(moment, 3), number, len(timed), record))
        if progress is not None:
            progress(chat.size)
    timed.sort(key=lambda item: item[:3])
    return [
        msgspec.structs.replace(record, pos=pos)
        for pos, (_, _, _, record) in enumerate(timed, start=1)
    ]


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
