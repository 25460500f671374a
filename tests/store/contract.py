"""The store's two contracts, each one test class that every backend subclasses unchanged:
`EventLogContract` (append, streams, the feed, nonces, read marks, durability) and
`ReadModelContract` (the projections' queries and their rebuild), `KeyStoreContract`
(the shops' API keys) and `WebhookStoreContract` (the shops' webhook endpoints).

A backend's test module subclasses both and provides one fixture, `open_store`: an async
callable that opens the store called `name`, a fresh and empty one the first time a test
names it, and the same one, with everything it committed, when the test opens that name
again after closing it. Everything here goes through the store's interfaces; nothing knows
how a backend keeps its data.

Chat events are built by hand from `protocol.events` structs, and their projection rows are
the ones the service gives them: `chatd.projection.chat_rows(state_before, events)`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from chatd.domain.drafts import Draft, stamp
from chatd.domain.evolve import evolve
from chatd.domain.ids import chat_id, claim_id, order_stream
from chatd.domain.model import ChatState
from chatd.projection import REFUND_REASON, LogProjector, chat_rows, order_rows
from chatd.search_text import query_words
from chatd.store.base import (
    DELIVERIES_KEPT,
    ApiKeyRecord,
    Appended,
    AppendRequest,
    Audience,
    Conflict,
    DeliveryRecord,
    EventStore,
    LedgerEntry,
    StoreClosed,
    Stored,
    StoreError,
    WebhookProgress,
    WebhookRecord,
)
from chatd.store.rows import Row, SearchRow
from protocol.events import (
    Attachment,
    Author,
    ChatOpened,
    Event,
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
)

OpenStore = Callable[[str], Awaitable[EventStore]]

# ---- building events ----------------------------------------------------------------------

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
MARKETPLACE = Author(role="system", id="system", name="Wildberries")
PRICE = Money(value=118600, currency="RUB")


def party(ident: str, name: str | None = None) -> Party:
    return Party(id=ident, name=name if name is not None else f"Имя {ident}")


def buyer_author(buyer: Party) -> Author:
    return Author(role="buyer", id=buyer.id, name=buyer.name)


def shop_author(shop: Party) -> Author:
    return Author(
        role="seller",
        id=shop.id,
        name=shop.name,
        operator=Operator(id=f"{shop.id}-operator", name="Оператор"),
    )


def order_card(
    order: str,
    buyer: Party,
    seller: Party,
    *,
    price: Money = PRICE,
    name: str = "Куртка зимняя",
    photo: str | None = None,
) -> OrderCard:
    return OrderCard(
        non_returnable=False,
        id=order,
        buyer=buyer,
        seller=seller,
        article=f"A-{order}",
        name=name,
        brand="Север",
        price=price,
        purchased_at=T0 - timedelta(days=30),
        received_at=T0 - timedelta(days=20),
        photo=photo,
    )


def message(stream: str, seq: int, text: str, *, at: datetime = T0) -> Event:
    return Event(
        stream=stream,
        seq=seq,
        at=at,
        kind="message",
        author=Author(role="buyer", id="someone", name="Кто-то"),
        data=MessagePosted(),
        text=text,
    )


def plain_request(
    stream: str,
    expected_seq: int,
    count: int = 1,
    *,
    keys: tuple[str, ...] = (),
    nonce: tuple[str, str] | None = None,
    text: str = "сообщение",
    rows: Sequence[Row] = (),
) -> AppendRequest:
    """`count` messages after `expected_seq`, with no projection rows unless given."""
    events = [
        message(stream, seq, f"{text} {seq}")
        for seq in range(expected_seq + 1, expected_seq + count + 1)
    ]
    return AppendRequest(
        stream=stream,
        expected_seq=expected_seq,
        events=events,
        audiences=tuple(Audience(key) for key in keys),
        rows=rows,
        nonce=nonce,
    )


def order_registration(
    card: OrderCard, *, at: datetime = T0, photo: Attachment | None = None
) -> AppendRequest:
    """The order's registration as the service appends it; `photo` is the file the card's
    `photo` names, which the service looks up."""
    stream = order_stream(card.id)
    event = Event(
        stream=stream,
        seq=1,
        at=at,
        kind="order.registered",
        author=MARKETPLACE,
        data=OrderRegistered(order=card, photo=photo),
    )
    return AppendRequest(stream=stream, expected_seq=0, events=[event], rows=order_rows([event]))


def match(query: str) -> list[str]:
    """The words the service passes: the query's words, normalised."""
    return query_words(query)


def seqs(stored: list[Stored]) -> list[int]:
    return [item.event.seq for item in stored]


def places(stored: list[Stored]) -> list[tuple[str, int]]:
    return [(item.event.stream, item.event.seq) for item in stored]


def positions(stored: list[Stored]) -> list[int]:
    return [item.pos for item in stored]


class ChatScript:
    """One chat as the service would write it: drafts become events at the next seq, with the
    audiences and the projection of the chat's state before them."""

    def __init__(self, buyer: Party, seller: Party, *, start: datetime = T0) -> None:
        self.buyer = buyer
        self.seller = seller
        self.stream = chat_id(buyer.id, seller.id)
        self.state: ChatState | None = None
        self.clock = start

    @property
    def seq(self) -> int:
        return 0 if self.state is None else self.state.seq

    # -- drafts --

    def opened(self, order: OrderCard | None = None) -> Draft:
        return Draft(ChatOpened(buyer=self.buyer, seller=self.seller, order=order), MARKETPLACE)

    def from_buyer(self, text: str, *files: Attachment) -> Draft:
        return Draft(MessagePosted(attachments=list(files)), buyer_author(self.buyer), text)

    def from_shop(self, text: str, *files: Attachment) -> Draft:
        return Draft(MessagePosted(attachments=list(files)), shop_author(self.seller), text)

    def return_requested(self, order: OrderCard) -> Draft:
        data = ReturnRequested(claim=claim_id(order.id), order=order, amount=order.price)
        text = f'Здравствуйте! Хочу вернуть товар "{order.name}, артикул {order.article}"'
        return Draft(data, buyer_author(self.buyer), text)

    def initiated(self, order: OrderCard) -> Draft:
        data = ReturnInitiated(claim=claim_id(order.id), order=order)
        return Draft(data, MARKETPLACE, "Ожидание подтверждения возврата покупателем.")

    def approved(self, order: OrderCard, mode: ReturnMode) -> Draft:
        data = ReturnApproved(claim=claim_id(order.id), mode=mode, amount=order.price)
        return Draft(data, MARKETPLACE, "Процедура возврата согласована.")

    def rejected(self, order: OrderCard) -> Draft:
        data = ReturnRejected(claim=claim_id(order.id))
        return Draft(data, MARKETPLACE, "Процедура возврата отменена продавцом.")

    def disputed(self, order: OrderCard) -> Draft:
        text = "Покупатель оспорил решение продавца. Заявка передана менеджеру Wildberries."
        return Draft(ReturnDisputed(claim=claim_id(order.id)), MARKETPLACE, text)

    def resolved(self, order: OrderCard, mode: ReturnMode) -> Draft:
        data = ReturnResolved(claim=claim_id(order.id), decision="approve", mode=mode)
        return Draft(data, MARKETPLACE, "Менеджер Wildberries одобрил возврат.")

    def handed_in(self, order: OrderCard) -> Draft:
        data = ReturnHandedIn(claim=claim_id(order.id))
        return Draft(data, MARKETPLACE, "Товар сдан в пункт выдачи.")

    def arrived(self, order: OrderCard) -> Draft:
        return Draft(
            ReturnArrived(claim=claim_id(order.id)), MARKETPLACE, "Товар поступил на склад."
        )

    def refund(self, order: OrderCard) -> Draft:
        data = RefundIssued(claim=claim_id(order.id), amount=order.price)
        return Draft(data, MARKETPLACE, "Денежные средства возвращены на баланс покупателя.")

    def inspected(self, order: OrderCard) -> Draft:
        data = ReturnInspected(claim=claim_id(order.id), defect=False)
        text = "Недостатков не обнаружено, товар будет отправлен на продажу."
        return Draft(data, MARKETPLACE, text)

    # -- appends --

    def request(self, *drafts: Draft, nonce: tuple[str, str] | None = None) -> AppendRequest:
        """The append of `drafts` after the chat's current state (which it does not change)."""
        self.clock += timedelta(minutes=1)
        events = stamp(self.stream, self.seq, self.clock, list(drafts))
        after = self._folded(events)
        audiences = [Audience(f"b:{self.buyer.id}"), Audience(f"s:{self.seller.id}")]
        if after.managers_from is not None:
            audiences.append(Audience("m", after.managers_from))
        return AppendRequest(
            stream=self.stream,
            expected_seq=self.seq,
            events=events,
            audiences=tuple(audiences),
            rows=chat_rows(self.state, events)[1],
            nonce=nonce,
        )

    def advance(self, request: AppendRequest) -> None:
        """Takes `request`'s events as written: later requests follow them."""
        self.state = self._folded(request.events)

    async def append(
        self, store: EventStore, *drafts: Draft, nonce: tuple[str, str] | None = None
    ) -> Appended:
        request = self.request(*drafts, nonce=nonce)
        appended = await store.append(request)
        self.advance(request)
        return appended

    def _folded(self, events: list[Event]) -> ChatState:
        state = self.state
        for event in events:
            state = evolve(state, event)
        assert state is not None
        return state


async def read_everything(store: EventStore, page: int = 3) -> list[Stored]:
    """The whole log through `read_all`, in small pages so paging is exercised too."""
    found: list[Stored] = []
    while batch := await store.read_all(found[-1].pos if found else 0, page):
        found.extend(batch)
    return found


@dataclass
class Stores:
    """Opens stores through the backend's `open_store`, and closes what a test left open."""

    open_store: OpenStore

    def __post_init__(self) -> None:
        self._open: list[EventStore] = []

    async def open(self, name: str = "main") -> EventStore:
        store = await self.open_store(name)
        self._open.append(store)
        return store

    async def close(self, store: EventStore) -> None:
        self._open.remove(store)
        await store.close()

    async def reopen(self, store: EventStore, name: str = "main") -> EventStore:
        await self.close(store)
        return await self.open(name)

    async def close_all(self) -> None:
        while self._open:
            await self._open.pop().close()


# ---- the contract -------------------------------------------------------------------------


class StoreFixtures:
    """`stores` and `store`, from the backend's `open_store` fixture."""

    @pytest.fixture
    def open_store(self) -> OpenStore:
        raise NotImplementedError("a backend's test class provides `open_store`")

    @pytest.fixture
    async def stores(self, open_store: OpenStore) -> AsyncIterator[Stores]:
        stores = Stores(open_store)
        yield stores
        await stores.close_all()

    @pytest.fixture
    async def store(self, stores: Stores) -> EventStore:
        return await stores.open()


class EventLogContract(StoreFixtures):
    """What every backend's event log must do."""

    # ---- appending and reading streams -------------------------------------------------------

    async def test_a_new_store_is_empty(self, store: EventStore) -> None:
        assert await store.last_position() == 0
        assert await store.read_stream("c1") == []
        assert await store.read_all(0, 100) == []
        assert await store.read_feed(["b:u1"], 0, 100) == []
        assert await store.read_marks("c1") == {}
        assert await store.list_chats("b:u1", None, 10) == []

    async def test_append_returns_the_events_with_increasing_positions(
        self, store: EventStore
    ) -> None:
        request = plain_request("c1", 0, 2)
        first = await store.append(request)
        second = await store.append(plain_request("c2", 0))
        third = await store.append(plain_request("c1", 2))

        assert [item.event for item in first.events] == request.events
        assert (first.duplicate, first.stream, first.seq) == (False, "c1", 1)
        assert first.pos == first.events[0].pos
        assert (third.stream, third.seq, third.pos) == ("c1", 3, third.events[0].pos)
        written = [item.pos for a in (first, second, third) for item in a.events]
        assert written[0] >= 1
        assert written == sorted(set(written))
        assert await store.last_position() == written[-1]

    async def test_read_stream_returns_one_stream_ascending_as_appended(
        self, store: EventStore
    ) -> None:
        a1 = await store.append(plain_request("c1", 0, 2, text="первый"))
        await store.append(plain_request("c2", 0, 1, text="второй"))
        a2 = await store.append(plain_request("c1", 2, 1, text="первый"))

        stream = await store.read_stream("c1")

        assert stream == [*a1.events, *a2.events]
        assert seqs(stream) == [1, 2, 3]
        assert [item.event.text for item in stream] == ["первый 1", "первый 2", "первый 3"]
        assert positions(stream) == sorted(positions(stream))
        assert places(await store.read_stream("c2")) == [("c2", 1)]

    async def test_read_stream_pages_by_after_before_and_limit(self, store: EventStore) -> None:
        await store.append(plain_request("c1", 0, 4))
        await store.append(plain_request("c1", 4, 6))

        async def page(**kwargs: Any) -> list[int]:
            return seqs(await store.read_stream("c1", **kwargs))

        assert await page() == list(range(1, 11))
        assert await page(after=3) == list(range(4, 11))
        assert await page(before=4) == [1, 2, 3]
        assert await page(after=2, before=6) == [3, 4, 5]
        # With a limit, the newest `limit` of the range, still ascending: a history page.
        assert await page(limit=3) == [8, 9, 10]
        assert await page(before=8, limit=3) == [5, 6, 7]
        assert await page(before=3, limit=5) == [1, 2]
        assert await page(after=6, before=8, limit=5) == [7]
        assert await page(before=1) == []
        assert await page(after=10) == []

    async def test_a_stale_expected_seq_raises_conflict_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        await store.append(plain_request("c1", 0, 2))
        before = await read_everything(store)

        with pytest.raises(Conflict) as behind:
            await store.append(plain_request("c1", 1, 3))
        with pytest.raises(Conflict) as ahead:
            await store.append(plain_request("c1", 5))
        with pytest.raises(Conflict) as new_stream:
            await store.append(plain_request("c9", 3))

        assert (behind.value.stream, behind.value.expected, behind.value.actual) == ("c1", 1, 2)
        assert (ahead.value.expected, ahead.value.actual) == (5, 2)
        assert (new_stream.value.stream, new_stream.value.actual) == ("c9", 0)
        assert await read_everything(store) == before
        assert await store.read_stream("c9") == []
        assert await store.last_position() == before[-1].pos

    async def test_racing_appends_with_one_expected_seq_give_one_winner(
        self, store: EventStore
    ) -> None:
        await store.append(plain_request("c1", 0))
        racers = [plain_request("c1", 1, 2, text=f"писатель {n}") for n in range(8)]

        results = await asyncio.gather(*(store.append(r) for r in racers), return_exceptions=True)

        winners = [r for r in results if isinstance(r, Appended)]
        losers = [r for r in results if not isinstance(r, Appended)]
        assert len(winners) == 1
        assert len(losers) == 7
        assert all(isinstance(r, Conflict) and (r.stream, r.expected) == ("c1", 1) for r in losers)
        stream = await store.read_stream("c1")
        assert seqs(stream) == [1, 2, 3]
        assert stream[1:] == winners[0].events
        assert len(await read_everything(store)) == 3

    async def test_a_multi_event_append_is_written_whole(self, store: EventStore) -> None:
        appended = await store.append(plain_request("c1", 0, 5))

        assert seqs(appended.events) == [1, 2, 3, 4, 5]
        assert await store.read_stream("c1") == appended.events

    async def test_a_conflicting_multi_event_append_writes_none_of_its_events(
        self, store: EventStore
    ) -> None:
        await store.append(plain_request("c1", 0))
        short = plain_request("c1", 1, 1, text="короткий")
        long = plain_request("c1", 1, 4, text="длинный")

        results = await asyncio.gather(
            store.append(short), store.append(long), return_exceptions=True
        )

        assert sum(isinstance(r, Appended) for r in results) == 1
        assert sum(isinstance(r, Conflict) for r in results) == 1
        texts = [item.event.text or "" for item in await store.read_stream("c1")]
        # Either the short append won whole, or the long one did: never a mix.
        assert texts in (
            ["сообщение 1", "короткий 2"],
            ["сообщение 1", "длинный 2", "длинный 3", "длинный 4", "длинный 5"],
        )

    async def test_an_append_whose_rows_cannot_be_written_writes_none_of_its_events(
        self, store: EventStore
    ) -> None:
        # A row naming an event the append does not have: the backend cannot place it.
        stray = [SearchRow(seq=99, chat="c1", text="x")]

        with pytest.raises(KeyError):
            await store.append(plain_request("c1", 0, 3, keys=("b:u1",), rows=stray))

        assert await store.read_stream("c1") == []
        assert await store.read_feed(["b:u1"], 0, 10) == []
        assert await store.last_position() == 0
        # The stream is not poisoned: the same place takes the next append.
        retried = await store.append(plain_request("c1", 0, 3, keys=("b:u1",)))
        assert seqs(await store.read_stream("c1")) == [1, 2, 3]
        assert await store.read_feed(["b:u1"], 0, 10) == retried.events

    async def test_rows_that_cannot_be_written_fail_only_their_own_append(
        self, store: EventStore
    ) -> None:
        stray = [SearchRow(seq=99, chat="c2", text="x")]
        results = await asyncio.gather(
            store.append(plain_request("c1", 0)),
            store.append(plain_request("c2", 0, 2, rows=stray)),
            store.append(plain_request("c3", 0)),
            return_exceptions=True,
        )

        assert isinstance(results[0], Appended)
        assert isinstance(results[1], KeyError)
        assert isinstance(results[2], Appended)
        assert places(await read_everything(store)) == [("c1", 1), ("c3", 1)]

    # ---- nonces ------------------------------------------------------------------------------

    async def test_a_repeated_nonce_appends_once_and_answers_with_the_original(
        self, store: EventStore
    ) -> None:
        await store.append(plain_request("c1", 0))
        request = plain_request("c1", 1, 2, nonce=("u1", "n1"))
        first = await store.append(request)

        again = await store.append(request)
        # A retry built on the stream as it is now is the same command: still a duplicate.
        retry = await store.append(plain_request("c1", 3, 2, nonce=("u1", "n1")))

        for answer in (again, retry):
            assert answer.duplicate is True
            assert answer.events == []
            assert (answer.stream, answer.seq, answer.pos) == ("c1", 2, first.events[0].pos)
        assert first.duplicate is False
        assert seqs(await store.read_stream("c1")) == [1, 2, 3]

    async def test_a_nonce_in_flight_twice_at_once_appends_once(self, store: EventStore) -> None:
        request = plain_request("c1", 0, 1, nonce=("u1", "n1"))

        results = await asyncio.gather(*(store.append(request) for _ in range(5)))

        originals = [r for r in results if not r.duplicate]
        duplicates = [r for r in results if r.duplicate]
        assert len(originals) == 1
        assert len(duplicates) == 4
        original = originals[0].events[0]
        for answer in duplicates:
            assert (answer.stream, answer.seq, answer.pos) == ("c1", 1, original.pos)
        assert await store.read_stream("c1") == [original]

    async def test_one_nonce_from_different_users_appends_for_each(self, store: EventStore) -> None:
        first = await store.append(plain_request("c1", 0, nonce=("u1", "same")))
        second = await store.append(plain_request("c1", 1, nonce=("u2", "same")))
        together = await asyncio.gather(
            store.append(plain_request("c2", 0, nonce=("u3", "same"))),
            store.append(plain_request("c3", 0, nonce=("u4", "same"))),
        )

        assert not any(a.duplicate for a in (first, second, *together))
        assert seqs(await store.read_stream("c1")) == [1, 2]
        assert places(await read_everything(store)) == [("c1", 1), ("c1", 2), ("c2", 1), ("c3", 1)]

    async def test_the_nonce_of_a_refused_append_stays_free(self, store: EventStore) -> None:
        await store.append(plain_request("c1", 0))
        with pytest.raises(Conflict):
            await store.append(plain_request("c1", 0, nonce=("u1", "n1")))

        appended = await store.append(plain_request("c1", 1, nonce=("u1", "n1")))

        assert appended.duplicate is False
        assert seqs(appended.events) == [2]

    # ---- the feed and the whole log ----------------------------------------------------------

    async def test_the_feed_holds_only_the_streams_a_key_may_see(self, store: EventStore) -> None:
        await store.append(plain_request("c1", 0, 2, keys=("b:u1", "s:s1")))
        await store.append(plain_request("c2", 0, 1, keys=("b:u2", "s:s1")))
        await store.append(plain_request("c3", 0, 1, keys=("b:u1", "s:s2")))
        await store.append(plain_request("c1", 2, 1, keys=("b:u1", "s:s1")))
        await store.append(plain_request("c4", 0, 1))
        everything = await read_everything(store)

        def of(*streams: str) -> list[Stored]:
            return [item for item in everything if item.event.stream in streams]

        assert await store.read_feed(["b:u1"], 0, 100) == of("c1", "c3")
        assert await store.read_feed(["s:s1"], 0, 100) == of("c1", "c2")
        assert await store.read_feed(["b:u2"], 0, 100) == of("c2")
        assert await store.read_feed(["b:nobody"], 0, 100) == []
        assert await store.read_feed(["m"], 0, 100) == []

    async def test_the_feed_shows_a_stream_from_its_audience_from_seq(
        self, store: EventStore
    ) -> None:
        buyer, managers = Audience("b:u1"), Audience("m", from_seq=4)

        async def append(after: int, count: int, *audiences: Audience) -> None:
            events = plain_request("c1", after, count).events
            await store.append(AppendRequest("c1", after, events, audiences=audiences))

        await append(0, 2, buyer)
        await append(2, 4, buyer, managers)  # seqs 3 to 6: managers from 4 on
        await append(6, 1, buyer, managers)

        assert seqs(await store.read_feed(["m"], 0, 100)) == [4, 5, 6, 7]
        assert seqs(await store.read_feed(["b:u1"], 0, 100)) == [1, 2, 3, 4, 5, 6, 7]
        assert seqs(await store.read_feed(["b:u1", "m"], 0, 100)) == [1, 2, 3, 4, 5, 6, 7]

    async def test_the_feed_pages_by_position_after_and_limit(self, store: EventStore) -> None:
        seq = {"c1": 0, "c2": 0}
        for stream, count in [("c1", 2), ("c2", 1), ("c1", 3), ("c2", 2), ("c1", 1)]:
            key = "b:u1" if stream == "c1" else "b:u2"
            await store.append(plain_request(stream, seq[stream], count, keys=(key,)))
            seq[stream] += count
        full = await store.read_feed(["b:u1"], 0, 100)

        pages: list[list[Stored]] = []
        after = 0
        while page := await store.read_feed(["b:u1"], after, 4):
            pages.append(page)
            after = page[-1].pos

        assert seqs(full) == [1, 2, 3, 4, 5, 6]
        assert positions(full) == sorted(positions(full))
        assert [len(p) for p in pages] == [4, 2]
        assert [item for p in pages for item in p] == full
        assert await store.read_feed(["b:u1"], full[2].pos, 2) == full[3:5]
        assert await store.read_feed(["b:u1"], full[-1].pos, 10) == []

    async def test_a_feed_of_several_keys_holds_each_event_once(self, store: EventStore) -> None:
        await store.append(plain_request("c1", 0, 2, keys=("b:u1", "s:s1")))
        await store.append(plain_request("c2", 0, 2, keys=("b:u2", "s:s1")))
        await store.append(plain_request("c3", 0, 1, keys=("b:u1", "s:s2", "m")))
        everything = await read_everything(store)

        both = await store.read_feed(["b:u1", "s:s1"], 0, 100)
        first_three = await store.read_feed(["b:u1", "s:s1", "m"], 0, 3)

        assert places(both) == places(everything)
        assert len(set(positions(both))) == len(both) == 5
        # The limit counts events, not the routing entries behind them.
        assert first_three == everything[:3]

    async def test_read_all_returns_every_event_ascending_and_pages(
        self, store: EventStore
    ) -> None:
        await store.append(plain_request("c1", 0, 2))
        await store.append(plain_request("c2", 0, 3))
        await store.append(plain_request("c1", 2, 2))

        everything = await store.read_all(0, 100)

        assert places(everything) == [("c1", 1), ("c1", 2)] + [("c2", n) for n in (1, 2, 3)] + [
            ("c1", 3),
            ("c1", 4),
        ]
        assert positions(everything) == sorted(set(positions(everything)))
        assert await store.read_all(0, 3) == everything[:3]
        assert await store.read_all(everything[3].pos, 2) == everything[4:6]
        assert await read_everything(store, page=2) == everything
        assert await store.read_all(everything[-1].pos, 10) == []

    # ---- read marks --------------------------------------------------------------------------

    async def test_a_read_mark_only_rises_and_answers_the_mark_in_force(
        self, store: EventStore
    ) -> None:
        assert await store.set_read_mark("c1", "buyer", 5) == 5
        assert await store.set_read_mark("c1", "buyer", 3) == 5
        assert await store.set_read_mark("c1", "seller", 2) == 2
        assert await store.read_marks("c1") == {"buyer": 5, "seller": 2}
        assert await store.set_read_mark("c1", "buyer", 7) == 7
        assert await store.read_marks("c1") == {"buyer": 7, "seller": 2}
        assert await store.read_marks("c2") == {}

    async def test_concurrent_read_marks_keep_the_highest(self, store: EventStore) -> None:
        wanted = [7, 3, 20, 1, 12, 20, 5, 19, 2, 11]

        answers = await asyncio.gather(*(store.set_read_mark("c1", "seller", s) for s in wanted))

        assert all(answer >= s for answer, s in zip(answers, wanted, strict=True))
        assert max(answers) == 20
        assert await store.read_marks("c1") == {"seller": 20}

    # ---- durability and life cycle -----------------------------------------------------------

    async def test_acked_events_and_projections_survive_a_reopen(self, stores: Stores) -> None:
        store = await stores.open()
        world = await write_mixed_history(store)
        await store.append(plain_request("c1", 0, 2, keys=("b:u1",), nonce=("u1", "n1")))
        log, last = await read_everything(store), await store.last_position()
        answers = await projection_answers(store, world)
        assert_every_projection_answers(answers, world)
        feed = await store.read_feed(["b:u1"], 0, 1000)

        store = await stores.reopen(store)

        assert await read_everything(store) == log
        assert await store.last_position() == last
        assert await projection_answers(store, world) == answers
        assert await store.read_feed(["b:u1"], 0, 1000) == feed
        assert (await store.append(plain_request("c1", 0, nonce=("u1", "n1")))).duplicate
        with pytest.raises(Conflict):
            await store.append(plain_request("c1", 0))
        appended = await store.append(plain_request("c1", 2))
        assert appended.pos > last

    async def test_close_commits_the_appends_it_already_accepted(self, stores: Stores) -> None:
        store = await stores.open()
        pending = [
            asyncio.ensure_future(store.append(plain_request(f"c{n}", 0))) for n in range(20)
        ]
        await asyncio.sleep(0)

        await stores.close(store)
        acked = await asyncio.gather(*pending)

        assert all(isinstance(a, Appended) for a in acked)
        store = await stores.open()
        assert sorted(places(await read_everything(store))) == sorted(
            (f"c{n}", 1) for n in range(20)
        )

    async def test_a_closed_store_refuses_appends(self, stores: Stores) -> None:
        store = await stores.open()
        await stores.close(store)

        with pytest.raises(StoreClosed):
            await store.append(plain_request("c1", 0))
        with pytest.raises(StoreClosed):
            await store.set_read_mark("c1", "buyer", 1)

    async def test_log_id_is_stable_across_reopen_and_differs_between_logs(
        self, stores: Stores
    ) -> None:
        store = await stores.open("main")
        other = await stores.open("other")
        log_id = store.log_id

        store = await stores.reopen(store, "main")

        assert log_id
        assert store.log_id == log_id
        assert other.log_id and other.log_id != log_id


class ReadModelContract(StoreFixtures):
    """What every backend's read model must answer, about the rows its appends carried."""

    # ---- the chat list -----------------------------------------------------------------------

    async def test_list_chats_puts_the_latest_activity_first_and_pages_by_position(
        self, store: EventStore
    ) -> None:
        anna, boris = party("u1", "Анна"), party("u2", "Борис")
        shop1, shop2, shop3 = party("s1", "Магазин 1"), party("s2"), party("s3")
        c1, c2, c3 = ChatScript(anna, shop1), ChatScript(anna, shop2), ChatScript(anna, shop3)
        other = ChatScript(boris, shop1)
        for chat in (c1, c2, c3, other):
            await chat.append(store, chat.opened())
        latest = await c1.append(store, c1.from_buyer("Добрый день"))

        listed = await store.list_chats("b:u1", None, 10)
        first = await store.list_chats("b:u1", None, 2)
        rest = await store.list_chats("b:u1", first[-1].last_pos, 2)

        assert [e.chat for e in listed] == [c1.stream, c3.stream, c2.stream]
        assert [e.chat for e in first] == [c1.stream, c3.stream]
        assert [e.chat for e in rest] == [c2.stream]
        assert await store.list_chats("b:u1", rest[-1].last_pos, 2) == []
        assert [e.chat for e in await store.list_chats("s:s1", None, 10)] == [
            c1.stream,
            other.stream,
        ]
        assert await store.list_chats("s:s9", None, 10) == []
        entry = listed[0]
        assert (entry.buyer_id, entry.buyer_name) == ("u1", "Анна")
        assert (entry.seller_id, entry.seller_name) == ("s1", "Магазин 1")
        assert (entry.last_pos, entry.last_seq) == (latest.pos, 2)
        assert entry == await store.chat_entry(c1.stream)
        assert await store.chat_entry("no-such-chat") is None

    async def test_chat_entry_keeps_the_oldest_unanswered_buyer_message(
        self, store: EventStore
    ) -> None:
        chat = ChatScript(party("u1"), party("s1"))
        await chat.append(store, chat.opened())
        entry = await store.chat_entry(chat.stream)
        assert entry is not None and entry.waiting_since is None

        await chat.append(store, chat.from_buyer("Где заказ?"))
        asked_at = chat.clock
        await chat.append(store, chat.from_buyer("Ау?"))
        waiting = await store.chat_entry(chat.stream)
        await chat.append(store, chat.from_shop("Уже едет"))
        answered = await store.chat_entry(chat.stream)

        assert waiting is not None and waiting.waiting_since == asked_at
        assert answered is not None and answered.waiting_since is None
        assert answered.last_seq == 4
        assert answered.managers_from is None

    async def test_managers_see_a_chat_only_after_a_dispute(self, store: EventStore) -> None:
        buyer, shop = party("u1"), party("s1")
        order = order_card("o1", buyer, shop)
        chat, calm = ChatScript(buyer, shop), ChatScript(party("u2"), shop)
        for script in (chat, calm):
            await script.append(store, script.opened())
        await chat.append(store, chat.from_buyer("Пришла бракованная куртка"))
        await chat.append(store, chat.return_requested(order))
        await chat.append(store, chat.rejected(order))
        await calm.append(store, calm.from_buyer("Пришла отличная куртка"))
        assert await store.list_chats("m", None, 10) == []
        assert await store.read_feed(["m"], 0, 100) == []
        assert await store.search("m", match("куртка"), None, 10) == []

        await chat.append(store, chat.disputed(order))
        await chat.append(store, chat.from_buyer("Куртка порвана, фото приложила"))

        listed = await store.list_chats("m", None, 10)
        assert [e.chat for e in listed] == [chat.stream]
        assert listed[0].managers_from == 5
        assert seqs(await store.read_feed(["m"], 0, 100)) == [5, 6]
        # Search shows a manager the whole disputed chat, and nothing of the others.
        found = await store.search("m", match("куртк"), None, 10)
        assert places(found) == [(chat.stream, 6), (chat.stream, 3), (chat.stream, 2)]

    # ---- unread, search, files ---------------------------------------------------------------

    async def test_count_unread_counts_texts_of_the_other_side_and_the_system(
        self, store: EventStore
    ) -> None:
        buyer, shop = party("u1"), party("s1")
        order = order_card("o1", buyer, shop)
        chat = ChatScript(buyer, shop)
        await chat.append(store, chat.opened())  # 1: no text
        await chat.append(store, chat.from_buyer("раз"), chat.from_buyer("два"))  # 2, 3
        await chat.append(store, chat.from_shop("ответ"))  # 4
        await chat.append(store, chat.return_requested(order))  # 5: the buyer's
        await chat.append(store, chat.rejected(order))  # 6: the system's

        assert await store.count_unread(chat.stream, "seller", 0) == 4
        assert await store.count_unread(chat.stream, "buyer", 0) == 2
        assert await store.count_unread(chat.stream, "seller", 3) == 2
        assert await store.count_unread(chat.stream, "buyer", 4) == 1
        assert await store.count_unread(chat.stream, "buyer", 6) == 0
        assert await store.count_unread("no-such-chat", "buyer", 0) == 0

    async def test_search_matches_word_prefixes_case_and_yo_insensitively(
        self, store: EventStore
    ) -> None:
        anna, boris = party("u1"), party("u2")
        shop1, shop2 = party("s1"), party("s2")
        a, b, c = ChatScript(anna, shop1), ChatScript(boris, shop1), ChatScript(anna, shop2)
        for chat in (a, b, c):
            await chat.append(store, chat.opened())
        await a.append(store, a.from_buyer("Где моя Ёлка?"))  # a 2
        await b.append(store, b.from_buyer("елка не пришла"))  # b 2
        await a.append(store, a.from_shop("Ёлочная игрушка уже в пути"))  # a 3
        await c.append(store, c.from_buyer("Искусственная ЕЛКА сломалась, кроссовки NIKE тоже"))
        await a.append(store, a.from_buyer("ЖДУ ЁЛКУ к празднику"))  # a 4

        async def found(key: str, query: str, chat: str | None = None, limit: int = 50) -> Any:
            return places(await store.search(key, match(query), chat, limit))

        assert await found("b:u1", "ёлк") == [(a.stream, 4), (c.stream, 2), (a.stream, 2)]
        assert await found("b:u1", "ЕЛКА") == [(c.stream, 2), (a.stream, 2)]
        assert await found("s:s1", "елк") == [(a.stream, 4), (b.stream, 2), (a.stream, 2)]
        assert await found("s:s1", "елк", limit=2) == [(a.stream, 4), (b.stream, 2)]
        assert await found("b:u1", "ёлк", chat=a.stream) == [(a.stream, 4), (a.stream, 2)]
        assert await found("b:u1", "жду ёлку") == [(a.stream, 4)]
        assert await found("b:u1", "ёлочн") == [(a.stream, 3)]
        assert await found("b:u1", "nike") == [(c.stream, 2)]
        assert await found("b:u1", "ёлка кроссовки") == [(c.stream, 2)]
        assert await found("b:u2", "ёлочн") == []
        assert await found("b:u3", "елк") == []
        hit = (await store.search("b:u1", match("праздник"), None, 10))[0]
        assert hit == (await store.read_stream(a.stream, after=3))[0]

    async def test_files_of_chat_lists_attachments_newest_first(self, store: EventStore) -> None:
        chat = ChatScript(party("u1"), party("s1"))
        photo = Attachment(id="f1", name="брак.jpg", mime="image/jpeg", size=1200)
        receipt = Attachment(id="f2", name="чек.pdf", mime="application/pdf", size=3400)
        label = Attachment(id="f3", name="label.png", mime="image/png", size=560)
        await chat.append(store, chat.opened())
        first = await chat.append(store, chat.from_buyer("Вот фото", photo, receipt))
        first_at = chat.clock
        second = await chat.append(store, chat.from_shop("", label))

        files = await store.files_of_chat(chat.stream)

        assert [(f.file, f.seq, f.pos) for f in files] == [
            ("f3", 3, second.pos),
            ("f1", 2, first.pos),
            ("f2", 2, first.pos),
        ]
        assert (files[1].name, files[1].mime, files[1].size, files[1].at) == (
            "брак.jpg",
            "image/jpeg",
            1200,
            first_at,
        )
        assert await store.files_of_chat("no-such-chat") == []

    async def test_a_file_is_known_by_the_chats_it_was_sent_in_and_the_orders_naming_it(
        self, store: EventStore
    ) -> None:
        anna, boris, shop = party("u1"), party("u2"), party("s1")
        photo = Attachment(id="f1", name="юбка.png", mime="image/png", size=900)
        sent = Attachment(id="f2", name="брак.jpg", mime="image/jpeg", size=1200)
        # One product photo on two buyers' orders of the same goods; a third order has none.
        annas = order_card("o2", anna, shop, photo="f1")
        boris_s = order_card("o1", boris, shop, photo="f1")
        plain = order_card("o3", anna, shop)
        for card in (annas, boris_s):
            await store.append(order_registration(card, photo=photo))
        await store.append(order_registration(plain))
        chat = ChatScript(anna, shop)
        await chat.append(store, chat.opened(annas))
        await chat.append(store, chat.from_buyer("Вот фото", sent))

        assert await store.orders_with_file("f1") == ["o1", "o2"]
        assert await store.orders_with_file("f2") == []
        assert await store.orders_with_file("f9") == []
        # An order's photo is in no chat, not even the one whose card shows it.
        assert await store.chats_with_file("f1") == []
        assert await store.chats_with_file("f2") == [chat.stream]
        assert [f.file for f in await store.files_of_chat(chat.stream)] == ["f2"]

    # ---- orders, claims, money ---------------------------------------------------------------

    async def test_registered_orders_give_cards_and_party_names(self, store: EventStore) -> None:
        shop1, shop2 = party("s1", "Магазин"), party("s2", "Лавка")
        first = order_card("o1", party("u1", "Анна"), shop1)
        second = order_card("o2", party("u1", "Анна К."), party("s1", "Магазин Плюс"))
        elsewhere = order_card("o3", party("u1", "Анна К."), shop2, name="Шарф")

        for card in (first, second, elsewhere):
            await store.append(order_registration(card))

        def card_of(raw: bytes | None) -> OrderCard:
            assert raw is not None
            return msgspec.msgpack.decode(raw, type=OrderCard)

        assert card_of(await store.order_card("o1")) == first
        assert await store.order_card("o9") is None
        assert [card_of(raw) for raw in await store.orders_between("u1", "s1")] == [second, first]
        assert [card_of(raw) for raw in await store.orders_between("u1", "s2")] == [elsewhere]
        assert await store.orders_between("u2", "s1") == []
        assert await store.party_name("b:u1") == "Анна К."
        assert await store.party_name("s:s1") == "Магазин Плюс"
        assert await store.party_name("s:s2") == "Лавка"
        assert await store.party_name("b:u9") is None

    async def test_claims_follow_their_chat_through_the_return(self, store: EventStore) -> None:
        buyer, shop = party("u1"), party("s1")
        order = order_card("o1", buyer, shop)
        claim = claim_id("o1")
        chat = ChatScript(buyer, shop)
        await chat.append(store, chat.opened(order))
        assert await store.claims_of_chat(chat.stream) == []
        assert await store.chat_of_claim(claim) is None

        states = []
        for step in (
            chat.return_requested(order),
            chat.approved(order, "pvz"),
            chat.handed_in(order),
        ):
            await chat.append(store, step)
            states.extend(await store.claims_of_chat(chat.stream))

        assert states == [
            (claim, "o1", "requested"),
            (claim, "o1", "approved"),
            (claim, "o1", "handed_in"),
        ]
        assert await store.chat_of_claim(claim) == chat.stream
        assert await store.claims_of_chat("no-such-chat") == []

    async def test_waiting_claims_are_the_requests_and_offers_nobody_answered(
        self, store: EventStore
    ) -> None:
        shop = party("s1")
        requested, answered, offered = (
            (party(f"u{n}"), order_card(f"o{n}", party(f"u{n}"), shop)) for n in (1, 2, 3)
        )
        assert await store.waiting_claims() == []
        for buyer, order in (requested, answered, offered):
            chat = ChatScript(buyer, shop)
            await chat.append(store, chat.opened(order))
            if order is offered[1]:
                await chat.append(store, chat.initiated(order))
            else:
                await chat.append(store, chat.return_requested(order))
            if order is answered[1]:
                await chat.append(store, chat.approved(order, "pvz"))

        assert await store.waiting_claims() == sorted(
            [
                (claim_id("o1"), chat_id("u1", "s1")),
                (claim_id("o3"), chat_id("u3", "s1")),
            ]
        )

    async def test_the_claims_a_shop_a_buyer_and_the_managers_see(self, store: EventStore) -> None:
        shop, other_shop = party("s1"), party("s2")
        scripts: dict[str, ChatScript] = {}
        orders: dict[str, OrderCard] = {}
        for n, seller in ((1, shop), (2, shop), (3, other_shop)):
            buyer = party(f"u{n}")
            orders[f"o{n}"] = order_card(f"o{n}", buyer, seller)
            scripts[f"o{n}"] = chat = ChatScript(buyer, seller)
            await chat.append(store, chat.opened(orders[f"o{n}"]))
            await chat.append(store, chat.return_requested(orders[f"o{n}"]))
        # The second is refused and disputed: the managers see its chat from then on.
        chat = scripts["o2"]
        await chat.append(store, chat.rejected(orders["o2"]))
        await chat.append(store, chat.disputed(orders["o2"]))
        one, two, three = (
            (claim_id(f"o{n}"), chat_id(f"u{n}", s)) for n, s in ((1, "s1"), (2, "s1"), (3, "s2"))
        )

        assert await store.claims_seen_by("s:s1") == sorted([one, two])
        assert await store.claims_seen_by("s:s2") == [three]
        assert await store.claims_seen_by("b:u3") == [three]
        assert await store.claims_seen_by("m") == [two]
        assert await store.claims_seen_by("s:s1", state="requested") == [one]
        assert await store.claims_seen_by("s:s1", state="disputed", order="o2") == [two]
        assert await store.claims_seen_by("s:s1", order="o3") == []
        assert await store.claims_seen_by("s:nobody") == []

    async def test_a_second_refund_of_a_claim_is_refused_without_harming_other_appends(
        self, store: EventStore
    ) -> None:
        buyer, shop = party("u1"), party("s1")
        order = order_card("o1", buyer, shop)
        chat = ChatScript(buyer, shop)
        await chat.append(store, chat.opened())
        await chat.append(store, chat.return_requested(order))
        await chat.append(store, chat.approved(order, "pvz"))
        await chat.append(store, chat.handed_in(order))
        first_refund = chat.request(chat.arrived(order), chat.refund(order))
        chat.advance(first_refund)
        second_refund = chat.request(chat.refund(order))
        bystanders = [ChatScript(party(f"u{n}"), shop) for n in range(2, 5)]

        results = await asyncio.gather(
            store.append(first_refund),
            store.append(second_refund),
            *(b.append(store, b.opened()) for b in bystanders),
            return_exceptions=True,
        )

        assert isinstance(results[0], Appended)
        assert isinstance(results[1], StoreError)
        assert all(isinstance(r, Appended) for r in results[2:])
        assert seqs(await store.read_stream(chat.stream)) == [1, 2, 3, 4, 5, 6]
        for b in bystanders:
            assert seqs(await store.read_stream(b.stream)) == [1]
        assert await store.balances("b:u1") == {"RUB": 118600}
        assert await store.balances("s:s1") == {"RUB": -118600}
        assert len(await store.sales_report("s1")) == 1

    async def test_refunds_credit_the_buyer_debit_the_shop_and_fill_its_sales_report(
        self, store: EventStore
    ) -> None:
        anna, boris, shop, other_shop = party("u1"), party("u2"), party("s1"), party("s2")
        byn = Money(value=2753, currency="BYN")
        jacket = order_card("o1", anna, shop)
        scarf = order_card("o2", boris, shop, price=byn, name="Шарф")
        hat = order_card("o3", anna, other_shop, name="Шапка")
        refunded_at: dict[str, datetime] = {}
        for order in (jacket, scarf, hat):
            chat = ChatScript(
                order.buyer, order.seller, start=T0 + timedelta(hours=len(refunded_at))
            )
            await chat.append(store, chat.opened(order))
            await chat.append(store, chat.return_requested(order))
            await chat.append(store, chat.approved(order, "no_return"), chat.refund(order))
            refunded_at[order.id] = chat.clock

        assert await store.balances("b:u1") == {"RUB": 2 * 118600}
        assert await store.balances("b:u2") == {"BYN": 2753}
        assert await store.balances("s:s1") == {"RUB": -118600, "BYN": -2753}
        assert await store.balances("s:s2") == {"RUB": -118600}
        assert await store.balances("b:u9") == {}
        assert await store.sales_report("s1") == [
            LedgerEntry(
                at=refunded_at["o1"],
                order="o1",
                article="A-o1",
                name="Куртка зимняя",
                value=-118600,
                currency="RUB",
                reason=REFUND_REASON,
            ),
            LedgerEntry(
                at=refunded_at["o2"],
                order="o2",
                article="A-o2",
                name="Шарф",
                value=-2753,
                currency="BYN",
                reason=REFUND_REASON,
            ),
        ]
        assert [e.order for e in await store.sales_report("s2")] == ["o3"]
        assert await store.sales_report("s9") == []

    # ---- rebuild -----------------------------------------------------------------------------

    async def test_rebuild_from_the_log_gives_the_same_answers(self, store: EventStore) -> None:
        world = await write_mixed_history(store)
        live = await projection_answers(store, world)
        assert_every_projection_answers(live, world)

        await store.rebuild(LogProjector())

        assert await projection_answers(store, world) == live

    async def test_rebuild_replaces_the_projections_with_what_the_projector_derives(
        self, store: EventStore
    ) -> None:
        world = await write_mixed_history(store)
        live = await projection_answers(store, world)
        log = await read_everything(store)

        await store.rebuild(lambda stored: [])
        emptied = await projection_answers(store, world)
        await store.rebuild(LogProjector())

        assert emptied["chats b:u1"] == []
        assert emptied["balances b:u1"] == {}
        assert emptied["search s:s1 куртк"] == []
        assert emptied["order o1"] is None
        assert emptied["orders with f4"] == []
        assert await read_everything(store) == log
        assert await projection_answers(store, world) == live


class KeyStoreContract(StoreFixtures):
    """What every backend must do with the shops' API keys (chatd.store.base.KeyStore)."""

    @staticmethod
    def key(shop: str, ident: str, *, name: str = "CRM", minutes: int = 0) -> ApiKeyRecord:
        return ApiKeyRecord(
            id=ident,
            shop=shop,
            name=name,
            scopes=("chat:read", "returns:write"),
            # Made of the id, so that two records never share a digest by accident.
            digest=hashlib.sha256(f"key of {ident}".encode()).digest(),
            created_at=T0 + timedelta(minutes=minutes, microseconds=123_456),
        )

    async def test_a_key_is_found_by_its_digest_as_it_was_created(self, store: EventStore) -> None:
        record = self.key("shop-a", "key-1", name="Бот «Ответы»")
        await store.create_key(record)
        assert await store.key_by_digest(record.digest) == record
        assert await store.key_by_digest(hashlib.sha256(b"another key").digest()) is None

    async def test_a_shop_lists_its_own_live_keys_oldest_first(self, store: EventStore) -> None:
        newer = self.key("shop-a", "key-b", minutes=5)
        older = self.key("shop-a", "key-a", minutes=1)
        foreign = self.key("shop-b", "key-c", minutes=3)
        for record in (newer, foreign, older):
            await store.create_key(record)
        assert await store.keys_of_shop("shop-a") == [older, newer]
        assert await store.keys_of_shop("shop-b") == [foreign]
        assert await store.keys_of_shop("shop-c") == []

    async def test_a_revoked_key_is_found_listed_and_live_no_more(self, store: EventStore) -> None:
        kept, revoked = self.key("shop-a", "key-1"), self.key("shop-a", "key-2", minutes=1)
        await store.create_key(kept)
        await store.create_key(revoked)
        assert await store.live_keys(["key-1", "key-2", "key-x"]) == {"key-1", "key-2"}

        assert await store.revoke_key("shop-a", "key-2", T0 + timedelta(hours=1))
        assert await store.key_by_digest(revoked.digest) is None
        assert await store.keys_of_shop("shop-a") == [kept]
        assert await store.live_keys(["key-1", "key-2"]) == {"key-1"}
        assert await store.live_keys([]) == set()
        # Once is enough: a second revocation finds no live key.
        assert not await store.revoke_key("shop-a", "key-2", T0 + timedelta(hours=2))

    async def test_a_shop_cannot_revoke_another_shops_key(self, store: EventStore) -> None:
        record = self.key("shop-a", "key-1")
        await store.create_key(record)
        assert not await store.revoke_key("shop-b", "key-1", T0)
        assert not await store.revoke_key("shop-a", "key-unknown", T0)
        assert await store.key_by_digest(record.digest) == record

    async def test_keys_and_revocations_survive_a_reopen(self, stores: Stores) -> None:
        store = await stores.open()
        live, revoked = self.key("shop-a", "key-1"), self.key("shop-a", "key-2", minutes=1)
        await store.create_key(live)
        await store.create_key(revoked)
        await store.revoke_key("shop-a", "key-2", T0)
        store = await stores.reopen(store)
        assert await store.key_by_digest(live.digest) == live
        assert await store.key_by_digest(revoked.digest) is None
        assert await store.keys_of_shop("shop-a") == [live]

    async def test_a_rebuild_of_the_projections_keeps_the_keys(self, store: EventStore) -> None:
        # Keys are no projection of the log: nothing could derive them again.
        record = self.key("shop-a", "key-1")
        await store.create_key(record)
        await store.rebuild(LogProjector())
        assert await store.key_by_digest(record.digest) == record


class WebhookStoreContract(StoreFixtures):
    """What every backend must do with the shops' webhook endpoints
    (chatd.store.base.WebhookStore)."""

    @staticmethod
    def endpoint(
        shop: str, ident: str, *, minutes: int = 0, events: tuple[str, ...] = ("*",)
    ) -> WebhookRecord:
        return WebhookRecord(
            id=ident,
            shop=shop,
            url=f"https://crm.example/{ident}",
            events=events,
            description="CRM «Заказы»" if minutes % 2 == 0 else None,
            secret="whsec_" + ident,
            created_at=T0 + timedelta(minutes=minutes, microseconds=654_321),
        )

    @staticmethod
    def attempt(
        endpoint: str, pos: int, attempt: int, outcome: str = "delivered"
    ) -> DeliveryRecord:
        return DeliveryRecord(
            endpoint=endpoint,
            message=f"{endpoint}_{pos}",
            pos=pos,
            chat="b:lyuda|s:shop-a",
            seq=pos + 1,
            kind="message",
            attempt=attempt,
            at=T0 + timedelta(seconds=pos * 10 + attempt, microseconds=1),
            outcome=outcome,
            status=200 if outcome == "delivered" else None,
            error=None if outcome == "delivered" else "timed out after 10 s",
        )

    async def test_a_shop_lists_its_own_endpoints_oldest_first(self, store: EventStore) -> None:
        newer = self.endpoint("shop-a", "wh-b", minutes=5, events=("message", "return.requested"))
        older = self.endpoint("shop-a", "wh-a", minutes=1)
        foreign = self.endpoint("shop-b", "wh-c", minutes=3)
        for record in (newer, foreign, older):
            await store.create_webhook(record, 0)
        assert await store.webhooks_of_shop("shop-a") == [older, newer]
        assert await store.webhooks_of_shop("shop-c") == []
        assert await store.live_webhooks() == [older, newer, foreign]

    async def test_one_owner_at_a_time_holds_an_endpoints_lease(self, store: EventStore) -> None:
        await store.create_webhook(self.endpoint("shop-a", "wh-1"), 7)
        until = T0 + timedelta(seconds=15)
        assert await store.lease_webhook("wh-1", "node-a", T0, until) == WebhookProgress(7)
        # Held: another node is refused until the lease runs out, its holder may renew.
        assert (
            await store.lease_webhook("wh-1", "node-b", T0 + timedelta(seconds=14), until) is None
        )
        later = T0 + timedelta(seconds=30)
        assert await store.lease_webhook("wh-1", "node-a", T0, later) == WebhookProgress(7)
        assert await store.lease_webhook("wh-1", "node-b", until, later) is None
        # Run out: the next node takes it, and the first one can no longer move anything.
        assert await store.lease_webhook(
            "wh-1", "node-b", later + timedelta(seconds=1), later + timedelta(seconds=20)
        ) == WebhookProgress(7)
        assert not await store.advance_webhook("wh-1", "node-a", WebhookProgress(9))
        assert await store.lease_webhook("wh-1", "node-x", T0, until) is None
        assert await store.lease_webhook("wh-unknown", "node-a", T0, until) is None

    async def test_a_released_lease_is_free_at_once(self, store: EventStore) -> None:
        await store.create_webhook(self.endpoint("shop-a", "wh-1"), 0)
        until = T0 + timedelta(hours=1)
        assert await store.lease_webhook("wh-1", "node-a", T0, until) is not None
        await store.release_webhook("wh-1", "node-b")  # not the holder: nothing happens
        assert await store.lease_webhook("wh-1", "node-b", T0, until) is None
        await store.release_webhook("wh-1", "node-a")
        assert await store.lease_webhook("wh-1", "node-b", T0, until) == WebhookProgress(0)

    async def test_renewing_extends_the_owners_leases_only(self, store: EventStore) -> None:
        for ident in ("wh-1", "wh-2", "wh-3"):
            await store.create_webhook(self.endpoint("shop-a", ident), 0)
        soon = T0 + timedelta(seconds=15)
        await store.lease_webhook("wh-1", "node-a", T0, soon)
        await store.lease_webhook("wh-2", "node-a", T0, soon)
        await store.lease_webhook("wh-3", "node-b", T0, soon)
        assert await store.renew_webhook_leases("node-a", T0 + timedelta(hours=1)) == {
            "wh-1",
            "wh-2",
        }
        # Renewed: still node-a's past the first expiry; node-b's ran out.
        past = soon + timedelta(seconds=1)
        assert await store.lease_webhook("wh-1", "node-b", past, past) is None
        assert await store.lease_webhook("wh-3", "node-c", past, past) is not None
        assert await store.renew_webhook_leases("node-z", past) == set()

    async def test_progress_moves_forward_with_its_attempt_in_the_log(
        self, store: EventStore
    ) -> None:
        await store.create_webhook(self.endpoint("shop-a", "wh-1"), 3)
        await store.lease_webhook("wh-1", "node-a", T0, T0 + timedelta(hours=1))
        retry_at = T0 + timedelta(minutes=5, microseconds=7)
        failed = self.attempt("wh-1", 4, 1, "retrying")
        assert await store.advance_webhook(
            "wh-1", "node-a", WebhookProgress(3, 1, retry_at), failed
        )
        delivered = self.attempt("wh-1", 4, 2)
        assert await store.advance_webhook("wh-1", "node-a", WebhookProgress(4), delivered)
        # Events it did not ask for are passed over without an attempt.
        assert await store.advance_webhook("wh-1", "node-a", WebhookProgress(9))
        assert await store.webhook_deliveries("wh-1", 10) == [delivered, failed]
        assert await store.webhook_deliveries("wh-1", 1) == [delivered]
        assert await store.webhook_deliveries("wh-2", 10) == []
        # Never backwards: a stale writer changes nothing and logs nothing.
        assert not await store.advance_webhook("wh-1", "node-a", WebhookProgress(8), failed)
        assert await store.webhook_deliveries("wh-1", 10) == [delivered, failed]
        assert await store.lease_webhook("wh-1", "node-a", T0, T0) == WebhookProgress(9)

    async def test_the_retry_schedule_survives_a_reopen(self, stores: Stores) -> None:
        store = await stores.open()
        await store.create_webhook(self.endpoint("shop-a", "wh-1"), 3)
        await store.lease_webhook("wh-1", "node-a", T0, T0 + timedelta(seconds=15))
        retry_at = T0 + timedelta(hours=2, microseconds=5)
        failed = self.attempt("wh-1", 4, 3, "retrying")
        await store.advance_webhook("wh-1", "node-a", WebhookProgress(3, 3, retry_at), failed)
        store = await stores.reopen(store)
        # A node after a crash: the dead one's lease runs out, the schedule is where it was.
        progress = await store.lease_webhook(
            "wh-1", "node-b", T0 + timedelta(seconds=16), T0 + timedelta(seconds=31)
        )
        assert progress == WebhookProgress(3, 3, retry_at)
        assert await store.webhook_deliveries("wh-1", 5) == [failed]
        assert await store.webhooks_of_shop("shop-a") == [self.endpoint("shop-a", "wh-1")]

    async def test_a_deleted_endpoint_is_gone_for_listing_leasing_and_progress(
        self, store: EventStore
    ) -> None:
        kept, deleted = self.endpoint("shop-a", "wh-1"), self.endpoint("shop-a", "wh-2", minutes=1)
        await store.create_webhook(kept, 0)
        await store.create_webhook(deleted, 0)
        until = T0 + timedelta(hours=1)
        await store.lease_webhook("wh-2", "node-a", T0, until)
        await store.advance_webhook(
            "wh-2", "node-a", WebhookProgress(1), self.attempt("wh-2", 1, 1)
        )

        assert not await store.delete_webhook("shop-b", "wh-2", T0)  # another shop's
        assert await store.delete_webhook("shop-a", "wh-2", T0)
        assert not await store.delete_webhook("shop-a", "wh-2", T0)  # once is enough
        assert await store.webhooks_of_shop("shop-a") == [kept]
        assert await store.live_webhooks() == [kept]
        assert await store.renew_webhook_leases("node-a", until) == set()
        assert await store.lease_webhook("wh-2", "node-a", T0, until) is None
        assert not await store.advance_webhook("wh-2", "node-a", WebhookProgress(2))
        # Its attempts stay on record.
        assert [d.pos for d in await store.webhook_deliveries("wh-2", 10)] == [1]

    async def test_the_delivery_log_keeps_the_latest_attempts(self, store: EventStore) -> None:
        await store.create_webhook(self.endpoint("shop-a", "wh-1"), 0)
        await store.create_webhook(self.endpoint("shop-a", "wh-2"), 0)
        until = T0 + timedelta(hours=1)
        await store.lease_webhook("wh-1", "node-a", T0, until)
        await store.lease_webhook("wh-2", "node-a", T0, until)
        await store.advance_webhook(
            "wh-2", "node-a", WebhookProgress(1), self.attempt("wh-2", 1, 1)
        )
        for pos in range(1, DELIVERIES_KEPT + 6):
            attempt = self.attempt("wh-1", pos, 1)
            assert await store.advance_webhook("wh-1", "node-a", WebhookProgress(pos), attempt)
        kept = await store.webhook_deliveries("wh-1", DELIVERIES_KEPT + 50)
        assert [d.pos for d in kept] == list(range(DELIVERIES_KEPT + 5, 5, -1))
        # Another endpoint's log is its own.
        assert len(await store.webhook_deliveries("wh-2", 10)) == 1

    async def test_a_rebuild_of_the_projections_keeps_the_endpoints(
        self, store: EventStore
    ) -> None:
        record = self.endpoint("shop-a", "wh-1")
        await store.create_webhook(record, 5)
        await store.rebuild(LogProjector())
        assert await store.webhooks_of_shop("shop-a") == [record]
        assert await store.lease_webhook("wh-1", "node-a", T0, T0) == WebhookProgress(5)


# ---- a mixed history and everything the projections answer about it ----------------------


@dataclass
class World:
    chats: list[ChatScript]
    orders: list[OrderCard]
    keys: list[str]
    queries: list[str]


async def write_mixed_history(store: EventStore) -> World:
    """Orders, chats with messages and files, returns settled every way, marks, a dispute."""
    anna, boris = party("u1", "Анна"), party("u2", "Борис")
    shop1, shop2 = party("s1", "Магазин"), party("s2", "Лавка")
    jacket = order_card("o1", anna, shop1)
    boots = order_card("o2", anna, shop1, name="Ботинки", price=Money(value=5990, currency="RUB"))
    scarf = order_card("o3", boris, shop1, name="Шарф", price=Money(value=2753, currency="BYN"))
    hat = order_card("o4", anna, shop2, name="Шапка ёлочкой", photo="f4")
    hat_photo = Attachment(id="f4", name="шапка.png", mime="image/png", size=700)
    for order in (jacket, boots, scarf, hat):
        await store.append(order_registration(order, photo=hat_photo if order is hat else None))

    photo = Attachment(id="f1", name="брак.jpg", mime="image/jpeg", size=1200)
    a, b, c = ChatScript(anna, shop1), ChatScript(boris, shop1), ChatScript(anna, shop2)
    await a.append(store, a.opened(jacket))
    await b.append(store, b.opened())
    await a.append(store, a.from_buyer("Куртка пришла с браком", photo))
    await c.append(store, c.opened(hat))
    await a.append(store, a.return_requested(jacket))
    await b.append(store, b.from_buyer("Шарф колется, верну"))
    await a.append(store, a.approved(jacket, "pvz"))
    await a.append(store, a.handed_in(jacket))
    await b.append(store, b.return_requested(scarf))
    await a.append(store, a.arrived(jacket), a.refund(jacket))
    await c.append(store, c.from_shop("Ёлочный узор вручную"))
    await b.append(store, b.rejected(scarf))
    await a.append(store, a.inspected(jacket))
    await b.append(store, b.disputed(scarf))
    await a.append(store, a.return_requested(boots))
    await b.append(store, b.resolved(scarf, "no_return"), b.refund(scarf))
    await a.append(store, a.approved(boots, "no_return"), a.refund(boots))
    await c.append(store, c.from_buyer("Шапка ёлочкой супер, а куртку верну"))
    await store.set_read_mark(a.stream, "buyer", 4)
    await store.set_read_mark(a.stream, "seller", 9)
    await store.set_read_mark(b.stream, "seller", 2)
    return World(
        chats=[a, b, c],
        orders=[jacket, boots, scarf, hat],
        keys=["b:u1", "b:u2", "s:s1", "s:s2", "m"],
        queries=["куртк", "ёлочк", "шарф верну", "возврат"],
    )


async def projection_answers(store: EventStore, world: World) -> dict[str, Any]:
    """Every projection query about `world`, keyed by what was asked."""
    answers: dict[str, Any] = {}
    for key in world.keys:
        answers[f"chats {key}"] = await store.list_chats(key, None, 100)
        answers[f"chats {key} page"] = await store.list_chats(key, None, 1)
        if key != "m":
            answers[f"balances {key}"] = await store.balances(key)
            answers[f"name {key}"] = await store.party_name(key)
        for query in world.queries:
            answers[f"search {key} {query}"] = await store.search(key, match(query), None, 100)
    for chat in world.chats:
        stream = chat.stream
        answers[f"entry {stream}"] = await store.chat_entry(stream)
        answers[f"claims {stream}"] = await store.claims_of_chat(stream)
        answers[f"files {stream}"] = await store.files_of_chat(stream)
        for sent in answers[f"files {stream}"]:
            answers[f"chats with {sent.file}"] = await store.chats_with_file(sent.file)
        answers[f"marks {stream}"] = await store.read_marks(stream)
        answers[f"search in {stream}"] = await store.search(
            f"b:{chat.buyer.id}", match("верну"), stream, 100
        )
        for side in ("buyer", "seller"):
            answers[f"unread {stream} {side}"] = await store.count_unread(stream, side, 0)
    for order in world.orders:
        answers[f"order {order.id}"] = await store.order_card(order.id)
        answers[f"claim {order.id}"] = await store.chat_of_claim(claim_id(order.id))
        answers[f"between {order.id}"] = await store.orders_between(order.buyer.id, order.seller.id)
        answers[f"sales {order.seller.id}"] = await store.sales_report(order.seller.id)
        if order.photo is not None:
            answers[f"orders with {order.photo}"] = await store.orders_with_file(order.photo)
            answers[f"chats with {order.photo}"] = await store.chats_with_file(order.photo)
    return answers


def assert_every_projection_answers(answers: dict[str, Any], world: World) -> None:
    """A comparison of answers is worth something only if the history reached them all."""
    chat, disputed, _ = world.chats
    assert answers["balances s:s1"] == {"RUB": -(118600 + 5990), "BYN": -2753}
    assert [entry.chat for entry in answers["chats m"]] == [disputed.stream]
    assert answers[f"claims {chat.stream}"] == [
        (claim_id("o1"), "o1", "inspected"),
        (claim_id("o2"), "o2", "approved"),
    ]
    assert answers[f"files {chat.stream}"]
    assert answers["chats with f1"] == [chat.stream]
    assert answers["orders with f4"] == ["o4"]
    assert answers["search s:s1 куртк"]
    assert answers["order o1"] is not None
    assert answers["name b:u2"] == "Борис"
    assert len(answers["sales s1"]) == 3
