"""The server's deadline timers (chatd.deadline_timers) over the real service and SQLite
store, with a clock the tests move: a request the shop never answers goes to the managers,
an offer nobody takes up ends, each exactly once, on one node or two, and after a restart
past the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatd.deadline_timers import DeadlineTimers
from chatd.domain import commands as cmd
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id, claim_id
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.service import ChatService
from chatd.store.sqlite import SqliteStore
from chatd.store.stats import StoreStats
from protocol.events import Kind, Money, OrderCard, Party

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
RULES = Rules(claim_deadline=timedelta(days=10), offer_deadline=timedelta(days=14))
BUYER = Actor(role="buyer", id="buyer-1", name="Анна")
SHOP = Actor(role="seller", id="op-1", name="Олег", shop="shop-1")
SYSTEM = Actor(role="system", id="marketplace", name="Wildberries")
CHAT = chat_id("buyer-1", "shop-1")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "chatd.db", synchronous="normal")
    await store.open()
    yield store
    await store.close()


def service_on(store: SqliteStore, clock: Clock, *, shared: bool = False) -> ChatService:
    return ChatService(store, LocalHub(), RULES, clock=clock, shared_log=shared)


async def an_order(service: ChatService, n: int = 1) -> OrderCard:
    card = OrderCard(
        id=f"order-{n}",
        buyer=Party(id=BUYER.id, name=BUYER.name),
        seller=Party(id="shop-1", name="Магазин"),
        article=f"{1000 + n}",
        name=f"Товар {n}",
        brand="Бренд",
        price=Money(value=150_000, currency="RUB"),
        non_returnable=False,
        purchased_at=NOW - timedelta(days=30),
        received_at=NOW - timedelta(days=20),
    )
    status, _ = await service.register_order(SYSTEM, card)
    assert status == 201
    assert not isinstance(await service.open_chat(BUYER, "shop-1", None), Rejection)
    return card


async def kinds(store: SqliteStore) -> list[str]:
    return [stored.event.kind for stored in await store.read_stream(CHAT)]


async def test_a_request_the_shop_never_answers_goes_to_the_managers_once(
    store: SqliteStore, clock: Clock
) -> None:
    service = service_on(store, clock)
    card = await an_order(service)
    assert not isinstance(await service.request_return(BUYER, CHAT, card.id), Rejection)
    deadlines = DeadlineTimers(service)

    early = await deadlines.fire_due()
    assert early.fired == []
    assert early.next_due == NOW + RULES.claim_deadline

    clock.now = NOW + RULES.claim_deadline - timedelta(seconds=1)
    assert (await deadlines.fire_due()).fired == []
    clock.now = NOW + RULES.claim_deadline
    fired = await deadlines.fire_due()
    again = await deadlines.fire_due()

    assert [(t.claim, t.action) for t in fired.fired] == [(claim_id(card.id), "escalate")]
    assert again.fired == [] and again.next_due is None
    assert (await kinds(store)).count(Kind.RETURN_ESCALATED) == 1
    assert await store.claims_of_chat(CHAT) == [(claim_id(card.id), card.id, "disputed")]
    assert await store.waiting_claims() == []


async def test_a_decision_before_the_deadline_leaves_nothing_to_fire(
    store: SqliteStore, clock: Clock
) -> None:
    service = service_on(store, clock)
    card = await an_order(service)
    await service.request_return(BUYER, CHAT, card.id)
    deadlines = DeadlineTimers(service)
    assert (await deadlines.fire_due()).next_due is not None  # known, waiting

    clock.now = NOW + timedelta(days=1)
    rejected = await service.reject_return(cmd.RejectReturn(actor=SHOP, claim=claim_id(card.id)))
    assert not isinstance(rejected, Rejection), rejected
    clock.now = NOW + RULES.claim_deadline + timedelta(days=1)

    assert (await deadlines.fire_due()).fired == []
    assert Kind.RETURN_ESCALATED not in await kinds(store)


async def test_an_offer_the_buyer_never_takes_up_expires(store: SqliteStore, clock: Clock) -> None:
    service = service_on(store, clock)
    card = await an_order(service)
    assert not isinstance(await service.initiate_return(SHOP, CHAT, card.id), Rejection)
    deadlines = DeadlineTimers(service)

    clock.now = NOW + RULES.offer_deadline + timedelta(minutes=1)
    fired = await deadlines.fire_due()

    assert [t.action for t in fired.fired] == ["expire"]
    assert (await kinds(store)).count(Kind.RETURN_EXPIRED) == 1
    assert await store.claims_of_chat(CHAT) == [(claim_id(card.id), card.id, "closed")]


async def test_two_nodes_at_the_same_moment_fire_a_deadline_once(
    store: SqliteStore, clock: Clock
) -> None:
    first = service_on(store, clock)
    card = await an_order(first)
    await first.request_return(BUYER, CHAT, card.id)
    # The second node reads the log before deciding, as nodes sharing a log do.
    second = service_on(store, clock, shared=True)
    on_first, on_second = DeadlineTimers(first), DeadlineTimers(second)
    await asyncio.gather(on_first.fire_due(), on_second.fire_due())  # both know the claim

    clock.now = NOW + RULES.claim_deadline + timedelta(seconds=3)
    passes = await asyncio.gather(*(t.fire_due() for t in (on_first, on_second) * 5))

    assert sum(len(p.fired) for p in passes) == 1
    assert (await kinds(store)).count(Kind.RETURN_ESCALATED) == 1


async def test_a_deadline_that_passed_while_no_server_ran_fires_at_start(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "chatd.db"
    store = SqliteStore(path, synchronous="normal")
    await store.open()
    card = await an_order(service_on(store, clock))
    await service_on(store, clock).request_return(BUYER, CHAT, card.id)
    await store.close()

    clock.now = NOW + RULES.claim_deadline + timedelta(days=3)  # the server was down
    restarted = SqliteStore(path, synchronous="normal")
    await restarted.open()
    try:
        fired = await DeadlineTimers(service_on(restarted, clock)).fire_due()
        escalations = [
            s for s in await restarted.read_stream(CHAT) if s.event.kind == Kind.RETURN_ESCALATED
        ]
    finally:
        await restarted.close()

    assert len(fired.fired) == 1
    assert len(escalations) == 1
    # Appended when the server found it, by the server's clock.
    assert escalations[0].event.at == clock.now


async def test_the_loop_fires_a_deadline_soon_after_its_time(store: SqliteStore) -> None:
    # The real clock, a deadline a fraction of a second away: `run` sleeps until it.
    rules = Rules(claim_deadline=timedelta(seconds=0.3))
    service = ChatService(store, LocalHub(), rules)
    card = OrderCard(
        id="order-9",
        buyer=Party(id=BUYER.id, name=BUYER.name),
        seller=Party(id="shop-1", name="Магазин"),
        article="9",
        name="Товар",
        brand="Бренд",
        price=Money(value=100, currency="RUB"),
        non_returnable=False,
        purchased_at=datetime.now(UTC) - timedelta(days=30),
        received_at=datetime.now(UTC) - timedelta(days=20),
    )
    assert (await service.register_order(SYSTEM, card))[0] == 201
    await service.open_chat(BUYER, "shop-1", None)
    assert not isinstance(await service.request_return(BUYER, CHAT, card.id), Rejection)
    loop = asyncio.create_task(DeadlineTimers(service, look_every=5).run(lambda: True))
    try:
        async with asyncio.timeout(3):
            while Kind.RETURN_ESCALATED not in await kinds(store):
                await asyncio.sleep(0.05)
    finally:
        loop.cancel()


class Commits(StoreStats):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.sizes.append(batch_size)


async def test_deadlines_due_together_are_fired_together(tmp_path: Path, clock: Clock) -> None:
    """One after another, each deadline waited for a commit of its own: fifty due in one
    second were fired up to a second late on PostgreSQL. Fired together, they share commits."""
    commits = Commits()
    store = SqliteStore(tmp_path / "chatd.db", synchronous="normal", stats=commits)
    await store.open()
    try:
        service = service_on(store, clock)
        claims = 30
        for n in range(claims):
            buyer = Actor(role="buyer", id=f"buyer-{n}", name="Покупатель")
            card = OrderCard(
                id=f"order-{n}",
                buyer=Party(id=buyer.id, name=buyer.name),
                seller=Party(id="shop-1", name="Магазин"),
                article=f"{n}",
                name="Товар",
                brand="Бренд",
                price=Money(value=100, currency="RUB"),
                non_returnable=False,
                purchased_at=NOW - timedelta(days=30),
                received_at=NOW - timedelta(days=20),
            )
            assert (await service.register_order(SYSTEM, card))[0] == 201
            await service.open_chat(buyer, "shop-1", None)
            chat = chat_id(buyer.id, "shop-1")
            assert not isinstance(await service.request_return(buyer, chat, card.id), Rejection)
        deadlines = DeadlineTimers(service)
        assert (await deadlines.fire_due()).fired == []

        # How many escalations are under way at once: one after another, never more than 1.
        # (Counted rather than the commits they shared, whose number depends on how fast the
        # writer's thread is against the event loop on a busy machine.)
        escalate = service.escalate_claim
        under_way = most = 0

        async def counted(claim: str) -> Any:
            nonlocal under_way, most
            under_way += 1
            most = max(most, under_way)
            try:
                return await escalate(claim)
            finally:
                under_way -= 1

        service.escalate_claim = counted  # type: ignore[method-assign]
        clock.now = NOW + RULES.claim_deadline
        commits.sizes.clear()
        fired = await deadlines.fire_due()

        assert len(fired.fired) == claims
        assert most == claims
        assert sum(commits.sizes) == claims
        assert await store.waiting_claims() == []
    finally:
        await store.close()
