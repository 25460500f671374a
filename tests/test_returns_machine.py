"""Random sequences of every return command from every role, logistics, deadlines that
pass (escalations, expired and withdrawn offers), and store crashes, through the real
service and SQLite store; the invariants hold after every step.

A "crash" here drops the service and its caches and reopens the store from its file, as a
restarted process would. A second service on the same log stands for a second node: it
fires the same deadlines at the same moment as the first.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import event as note_reached
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chatd.domain import commands as cmd
from chatd.domain.actors import Actor
from chatd.domain.deadlines import timers
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id, claim_id
from chatd.domain.returns import claim_state_label
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.projection import LogProjector
from chatd.service import ChatService, Done
from chatd.store.sqlite import SqliteStore
from protocol.events import Event, Money, OrderCard, Party

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
RULES = Rules()
SHOPS = ("shop-a", "shop-b")
BUYERS = ("buyer-1", "buyer-2")
FINAL_LABELS = {"inspected", "resolved_rejected"}

buyers = st.sampled_from(BUYERS)
shops = st.sampled_from(SHOPS)
order_numbers = st.integers(min_value=0, max_value=2)


def buyer(ident: str) -> Actor:
    return Actor(role="buyer", id=ident, name=ident)


def operator(shop: str, n: int) -> Actor:
    return Actor(role="seller", id=f"{shop}-op{n}", name=f"op{n}", shop=shop)


MANAGER = Actor(role="manager", id="mgr", name="Менеджер")
SYSTEM = Actor(role="system", id="marketplace", name="Wildberries")
actors = st.one_of(
    buyers.map(buyer),
    st.tuples(shops, st.integers(0, 1)).map(lambda t: operator(*t)),
    st.just(MANAGER),
    st.just(SYSTEM),
)


def order_id(n: int) -> str:
    return f"order-{n}"


# Mostly the actor whose button it is, sometimes anyone at all: random roles alone would
# almost never get a claim past its request.
who_acts = st.one_of(st.just(None), st.just(None), st.just(None), actors)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class ReturnsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="chatd-machine-"))
        self.clock = Clock()
        self.orders: dict[str, OrderCard] = {}
        self.store: SqliteStore | None = None
        self.service: ChatService | None = None
        self.other_node: ChatService | None = None

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _open(self) -> None:
        self.store = SqliteStore(self.folder / "chatd.db", synchronous="normal")
        await self.store.open()
        self.service = ChatService(self.store, LocalHub(), RULES, clock=self.clock)
        # Another node on the same log: it reads the log before every decision, as nodes
        # sharing a PostgreSQL log do; the first node learns of its writes by a conflict.
        self.other_node = ChatService(
            self.store, LocalHub(), RULES, clock=self.clock, shared_log=True
        )

    @initialize(
        kinds=st.lists(
            st.tuples(
                buyers,
                shops,
                st.sampled_from([None, 2, 20, 20, 20]),
                st.booleans(),
                st.sampled_from(["RUB", "BYN"]),
            ),
            min_size=3,
            max_size=3,
        )
    )
    def start(self, kinds: list[tuple[str, str, int | None, bool, str]]) -> None:
        self.run(self._open())
        # Every order exists from the start, so the steps go to the claims themselves.
        for n, (who, shop, received, non_returnable, currency) in enumerate(kinds):
            self.register_order(n, who, shop, received, non_returnable, currency)

    def teardown(self) -> None:
        if self.store is not None:
            self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def svc(self) -> ChatService:
        assert self.service is not None
        return self.service

    # ---- rules ---------------------------------------------------------------------------

    @rule(
        n=order_numbers,
        who=buyers,
        shop=shops,
        received=st.sampled_from([None, 2, 20, 20, 20]),
        non_returnable=st.booleans(),
        currency=st.sampled_from(["RUB", "BYN"]),
    )
    def register_order(
        self, n: int, who: str, shop: str, received: int | None, non_returnable: bool, currency: str
    ) -> None:
        if order_id(n) in self.orders:
            return
        card = OrderCard(
            id=order_id(n),
            buyer=Party(id=who, name=who),
            seller=Party(id=shop, name=shop),
            article=f"{1000 + n}",
            name=f"Товар {n}",
            brand="Бренд",
            price=Money(value=1000 * (n + 1), currency=currency),
            purchased_at=self.clock.now - timedelta(days=30),
            received_at=None if received is None else self.clock.now - timedelta(days=received),
            non_returnable=non_returnable,
        )
        status, _ = self.run(self.svc.register_order(SYSTEM, card))
        assert status in (200, 201)
        self.orders[card.id] = card

    @rule(who=buyers, shop=shops)
    def open_chat(self, who: str, shop: str) -> None:
        outcome = self.run(self.svc.open_chat(buyer(who), shop, None))
        assert not isinstance(outcome, Rejection), outcome

    def _card(self, n: int) -> OrderCard:
        card = self.orders.get(order_id(n))
        if card is None:
            # Rules about orders act on registered ones; an unknown order is tried too.
            return OrderCard(
                non_returnable=False,
                id=order_id(n),
                buyer=Party(id=BUYERS[0], name=""),
                seller=Party(id=SHOPS[0], name=""),
                article="0",
                name="x",
                brand="x",
                price=Money(value=1, currency="RUB"),
                purchased_at=NOW,
            )
        return card

    def _chat(self, card: OrderCard) -> str:
        self.run(self.svc.open_chat(buyer(card.buyer.id), card.seller.id, None))
        return chat_id(card.buyer.id, card.seller.id)

    @rule(actor=who_acts, n=order_numbers)
    def request(self, actor: Actor | None, n: int) -> None:
        card = self._card(n)
        chat = self._chat(card)
        self.run(self.svc.request_return(actor or buyer(card.buyer.id), chat, card.id))

    @rule(actor=who_acts, n=order_numbers, op=st.integers(0, 1))
    def initiate(self, actor: Actor | None, n: int, op: int) -> None:
        card = self._card(n)
        chat = self._chat(card)
        self.run(self.svc.initiate_return(actor or operator(card.seller.id, op), chat, card.id))

    @rule(
        actor=who_acts,
        n=order_numbers,
        mode=st.sampled_from(["pvz", "no_return"]),
        exact=st.sampled_from([True, True, True, False]),
    )
    def approve(self, actor: Actor | None, n: int, mode: str, exact: bool) -> None:
        card = self._card(n)
        price = card.price
        amount = price if exact else Money(value=price.value + 1, currency=price.currency)
        command = cmd.ApproveReturn(
            actor=actor or operator(card.seller.id, 0),
            claim=claim_id(card.id),
            mode=mode,  # type: ignore[arg-type]
            amount=amount,
        )
        self.run(self.svc.approve_return(command))

    @rule(n=order_numbers)
    def two_operators_approve_at_once(self, n: int) -> None:
        card = self._card(n)
        claim = claim_id(card.id)
        one, two = (
            cmd.ApproveReturn(
                actor=operator(card.seller.id, op), claim=claim, mode="no_return", amount=card.price
            )
            for op in (0, 1)
        )

        async def race() -> list[Any]:
            return await asyncio.gather(self.svc.approve_return(one), self.svc.approve_return(two))

        outcomes = self.run(race())
        assert sum(not isinstance(o, Rejection) for o in outcomes) <= 1

    @rule(actor=who_acts, n=order_numbers)
    def reject(self, actor: Actor | None, n: int) -> None:
        card = self._card(n)
        who = actor or operator(card.seller.id, 1)
        self.run(self.svc.reject_return(cmd.RejectReturn(actor=who, claim=claim_id(card.id))))

    @rule(actor=who_acts, n=order_numbers)
    def dispute(self, actor: Actor | None, n: int) -> None:
        card = self._card(n)
        who = actor or buyer(card.buyer.id)
        self.run(self.svc.dispute_return(cmd.DisputeReturn(actor=who, claim=claim_id(card.id))))

    @rule(
        actor=who_acts,
        n=order_numbers,
        decision=st.sampled_from(["approve", "reject"]),
        mode=st.sampled_from([None, "pvz", "pvz", "no_return", "no_return"]),
    )
    def resolve(self, actor: Actor | None, n: int, decision: str, mode: str | None) -> None:
        command = cmd.ResolveReturn(
            actor=actor or MANAGER,
            claim=claim_id(order_id(n)),
            decision=decision,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
        )
        self.run(self.svc.resolve_return(command))

    @rule(
        actor=who_acts,
        n=order_numbers,
        step=st.sampled_from(["handed_in", "arrived", "inspected"]),
        defect=st.booleans(),
    )
    def logistics(self, actor: Actor | None, n: int, step: str, defect: bool) -> None:
        self.run(self.svc.report_logistics(actor or SYSTEM, order_id(n), step, defect))  # type: ignore[arg-type]

    # The natural path gets twice the steps of any single random action.
    @rule(n=order_numbers, branch=st.integers(0, 3), op=st.integers(0, 1))
    def advance(self, n: int, branch: int, op: int) -> None:
        self._advance(n, branch, op)

    @rule(n=order_numbers, branch=st.integers(0, 3), op=st.integers(0, 1))
    def advance_further(self, n: int, branch: int, op: int) -> None:
        self._advance(n, branch, op)

    def _advance(self, n: int, branch: int, op: int) -> None:
        """The natural next step of an order's claim, by whoever's button it is."""
        card = self._card(n)
        chat = self._chat(card)
        claim = claim_id(card.id)
        state = self.run(self.svc.states.get(chat))
        current = state.claims.get(claim) if state is not None else None
        label = claim_state_label(current) if current is not None else None
        shop = operator(card.seller.id, op)
        mode: Any = "pvz" if (branch + op) % 2 else "no_return"
        if label is None:
            # Half the claims start as the shop's offer: offers end in more ways.
            if branch >= 2:
                self.run(self.svc.initiate_return(shop, chat, card.id))
            else:
                self.run(self.svc.request_return(buyer(card.buyer.id), chat, card.id))
        elif label == "awaiting_buyer":
            # Taken up, withdrawn, or left to wait until it expires.
            if branch < 2:
                self.run(self.svc.request_return(buyer(card.buyer.id), chat, card.id))
            elif branch == 2:
                withdraw = cmd.WithdrawReturn(actor=shop, claim=claim)
                self.run(self.svc.withdraw_return(withdraw))
        elif label == "requested":
            if branch == 3 and op == 1:
                pass  # the shop says nothing: the deadline will decide
            elif branch < 2:
                self.run(self.svc.reject_return(cmd.RejectReturn(actor=shop, claim=claim)))
            else:
                approve = cmd.ApproveReturn(actor=shop, claim=claim, mode=mode, amount=card.price)
                self.run(self.svc.approve_return(approve))
        elif label == "rejected":
            dispute = cmd.DisputeReturn(actor=buyer(card.buyer.id), claim=claim)
            self.run(self.svc.dispute_return(dispute))
        elif label == "disputed":
            decision: Any = "reject" if branch == 0 else "approve"
            resolve = cmd.ResolveReturn(actor=MANAGER, claim=claim, decision=decision, mode=mode)
            self.run(self.svc.resolve_return(resolve))
        else:
            step: Any = {"approved": "handed_in", "resolved_approved": "handed_in"}.get(
                label, {"handed_in": "arrived", "arrived": "inspected"}.get(label)
            )
            if step is not None:
                self.run(self.svc.report_logistics(SYSTEM, card.id, step, branch == 0))

    @rule(actor=who_acts, n=order_numbers, op=st.integers(0, 1))
    def withdraw(self, actor: Actor | None, n: int, op: int) -> None:
        card = self._card(n)
        who = actor or operator(card.seller.id, op)
        command = cmd.WithdrawReturn(actor=who, claim=claim_id(card.id))
        self.run(self.svc.withdraw_return(command))

    @rule(n=order_numbers, expire=st.booleans())
    def a_deadline_fires_whether_due_or_not(self, n: int, expire: bool) -> None:
        """A timer fired at any moment, early or late, on any claim."""
        claim = claim_id(order_id(n))
        fire = self.svc.expire_offer if expire else self.svc.escalate_claim
        self.run(fire(claim))

    @rule()
    def the_scheduler_fires_what_is_due(self) -> None:
        self._fire_due()

    def _fire_due(self) -> None:
        """What the scheduler of deadlines will do: every timer the chats' states name whose
        time has come, fired once."""
        for who in BUYERS:
            for shop in SHOPS:
                state = self.run(self.svc.states.get(chat_id(who, shop)))
                if state is None:
                    continue
                for timer in timers(state, RULES):
                    if timer.due > self.clock.now:
                        continue
                    fire = (
                        self.svc.escalate_claim
                        if timer.action == "escalate"
                        else self.svc.expire_offer
                    )
                    outcome = self.run(fire(timer.claim))
                    # The first node's cache may be behind the other node's writes: then
                    # the log says the claim moved on and the firing is refused.
                    if isinstance(outcome, Rejection):
                        assert outcome.code == "conflict", outcome

    @rule(n=order_numbers, expire=st.booleans())
    def two_nodes_fire_one_deadline_at_once(self, n: int, expire: bool) -> None:
        assert self.other_node is not None
        claim = claim_id(order_id(n))
        nodes = (self.svc, self.other_node)

        async def race() -> list[Any]:
            if expire:
                return await asyncio.gather(*(node.expire_offer(claim) for node in nodes))
            return await asyncio.gather(*(node.escalate_claim(claim) for node in nodes))

        outcomes = self.run(race())
        assert sum(isinstance(o, Done) for o in outcomes) <= 1, outcomes

    @rule(days=st.integers(min_value=1, max_value=15), scheduler_runs=st.booleans())
    def time_passes(self, days: int, scheduler_runs: bool) -> None:
        self.clock.now += timedelta(days=days)
        if scheduler_runs:
            self._fire_due()

    @rule()
    def crash_and_reopen(self) -> None:
        assert self.store is not None
        self.run(self.store.close())
        self.run(self._open())

    # ---- invariants ------------------------------------------------------------------------

    def _log(self) -> list[Event]:
        assert self.store is not None
        return [s.event for s in self.run(self.store.read_all(0, 1_000_000))]

    @invariant()
    def returns_follow_the_rules(self) -> None:
        if self.store is None:
            return
        refunds: Counter[str] = Counter()
        requests: Counter[str] = Counter()
        escalations: Counter[str] = Counter()
        approved: dict[str, str] = {}
        arrived: set[str] = set()
        final: set[str] = set()
        # Where each claim stands by the log alone, and when its waits began.
        stage: dict[str, str] = {}
        offered_at: dict[str, datetime] = {}
        requested_at: dict[str, datetime] = {}
        for event in self._log():
            claim = getattr(event.data, "claim", None)
            if claim is None:
                continue
            assert claim not in final, f"{event.kind} after claim {claim} ended"
            before = stage.get(claim)
            if event.kind in _FROM:
                assert before in _FROM[event.kind], f"{event.kind} on a claim in {before}"
                stage[claim] = _TO[event.kind]
            if event.kind == "return.initiated":
                offered_at[claim] = event.at
            elif event.kind == "return.escalated":
                escalations[claim] += 1
                assert escalations[claim] == 1, "two escalations of one claim"
                assert event.at >= requested_at[claim] + RULES.claim_deadline, "escalated early"
            elif event.kind in ("return.withdrawn", "return.expired"):
                if event.kind == "return.expired":
                    assert event.at >= offered_at[claim] + RULES.offer_deadline, "expired early"
                final.add(claim)
            if event.kind == "return.requested":
                requested_at[claim] = event.at
                requests[claim] += 1
                assert requests[claim] == 1, "two buyer requests for one order"
            elif event.kind == "return.approved" or (
                event.kind == "return.resolved" and event.data.decision == "approve"
            ):
                approved[claim] = event.data.mode
            elif event.kind == "return.resolved":
                final.add(claim)
            elif event.kind == "return.arrived":
                arrived.add(claim)
            elif event.kind == "return.inspected":
                final.add(claim)
            elif event.kind == "refund.issued":
                refunds[claim] += 1
                assert refunds[claim] == 1, "two refunds for one claim"
                assert claim in approved, "a refund without an approval"
                if approved[claim] == "pvz":
                    assert claim in arrived, "a pvz refund before the goods arrived"
                else:
                    final.add(claim)

    @invariant()
    def the_ledger_sums_to_zero_and_matches_refunds(self) -> None:
        if self.store is None:
            return
        totals: defaultdict[str, int] = defaultdict(int)
        for who in BUYERS:
            for currency, value in self.run(self.store.balances("b:" + who)).items():
                totals[currency] += value
        for shop in SHOPS:
            for currency, value in self.run(self.store.balances("s:" + shop)).items():
                totals[currency] += value
        assert all(v == 0 for v in totals.values()), totals
        log = self._log()
        refunded = sum(e.data.amount.value for e in log if e.kind == "refund.issued")
        # What the runs reach, for --hypothesis-show-statistics.
        for kind in (
            "refund.issued",
            "return.disputed",
            "return.inspected",
            "return.resolved",
            "return.escalated",
            "return.expired",
            "return.withdrawn",
        ):
            note_reached(f"reached {kind}: {any(e.kind == kind for e in log)}")
        paid = 0
        for who in BUYERS:
            paid += sum(self.run(self.store.balances("b:" + who)).values())
        assert paid == refunded

    @invariant()
    def summaries_show_the_deadlines(self) -> None:
        """Chat summaries: a waiting claim has its due, no other claim has one, and a
        request waiting for the shop caps the chat's reply deadline."""
        if self.store is None:
            return
        for who in BUYERS:
            page = self.run(self.svc.views.chats(buyer(who), None, 100))
            assert not isinstance(page, Rejection), page
            for summary in page.chats:
                for claim in summary.claims:
                    waits = claim.state in ("requested", "awaiting_buyer")
                    assert (claim.due is not None) == waits, claim
                    if claim.state == "requested":
                        assert claim.due is not None and summary.reply_due is not None
                        assert summary.reply_due <= claim.due, summary

    @invariant()
    def per_chat_seq_is_gapless(self) -> None:
        if self.store is None:
            return
        seqs: defaultdict[str, list[int]] = defaultdict(list)
        for event in self._log():
            seqs[event.stream].append(event.seq)
        for stream, found in seqs.items():
            assert found == list(range(1, len(found) + 1)), stream


# The claim's stage each kind requires, by the log alone, and the stage it leaves.
_FROM: dict[str, tuple[str | None, ...]] = {
    "return.initiated": (None,),
    "return.requested": (None, "awaiting_buyer"),
    "return.withdrawn": ("awaiting_buyer",),
    "return.expired": ("awaiting_buyer",),
    "return.escalated": ("requested",),
    "return.approved": ("requested",),
    "return.rejected": ("requested",),
    "return.disputed": ("rejected",),
    "return.resolved": ("disputed",),
}
_TO: dict[str, str] = {
    "return.initiated": "awaiting_buyer",
    "return.requested": "requested",
    "return.withdrawn": "closed",
    "return.expired": "closed",
    "return.escalated": "disputed",
    "return.approved": "approved",
    "return.rejected": "rejected",
    "return.disputed": "disputed",
    "return.resolved": "resolved",
}


def projection_answers(machine: ReturnsMachine) -> dict[str, Any]:
    store = machine.store
    assert store is not None
    answers: dict[str, Any] = {}
    for key in [*(f"b:{b}" for b in BUYERS), *(f"s:{s}" for s in SHOPS), "m"]:
        answers[f"chats {key}"] = machine.run(store.list_chats(key, None, 100))
        if key != "m":
            answers[f"balance {key}"] = machine.run(store.balances(key))
    for shop in SHOPS:
        answers[f"report {shop}"] = machine.run(store.sales_report(shop))
        for who in BUYERS:
            chat = chat_id(who, shop)
            answers[f"claims {chat}"] = machine.run(store.claims_of_chat(chat))
            answers[f"orders {chat}"] = machine.run(store.orders_between(who, shop))
    return answers


class ReturnsMachineWithRebuild(ReturnsMachine):
    @rule()
    def a_rebuilt_projection_equals_the_live_one(self) -> None:
        live = projection_answers(self)
        self.run(self.store.rebuild(LogProjector()))
        assert projection_answers(self) == live


ReturnsMachineWithRebuild.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestReturnsMachine = ReturnsMachineWithRebuild.TestCase
