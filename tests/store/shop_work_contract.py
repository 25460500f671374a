"""The store's part in the operator's day, one contract class every backend subclasses
unchanged, beside those of tests/store/contract.py:

- events of kinds hidden from a key (the shop's notes and assignments, from the buyer) are
  never in that key's feed, and the reads by stream (a page of history, unread counts, a
  search) leave out the kinds they are asked to, counting their limits in what is left;
- the operators each shop is known to have (`OperatorStore`).

The appends are built as the service builds them: the chat's audiences from
`chatd.routing.audiences_of`, its rows from `chatd.projection.chat_rows`.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from chatd.domain.drafts import Draft
from chatd.projection import LogProjector
from chatd.routing import audiences_of
from chatd.store.base import AppendRequest, EventStore, OperatorRecord
from protocol.events import SHOP_ONLY_KINDS, ChatAssigned, Kind, NotePosted, Operator
from tests.store.contract import (
    MARKETPLACE,
    T0,
    ChatScript,
    StoreFixtures,
    Stores,
    match,
    order_card,
    party,
    seqs,
    shop_author,
)

ANNA = Operator(id="op-anna", name="Анна")


class ShopScript(ChatScript):
    """A chat whose appends are routed as the service routes them."""

    def note(self, text: str) -> Draft:
        return Draft(NotePosted(), shop_author(self.seller), text)

    def assigned(self, operator: Operator | None) -> Draft:
        return Draft(ChatAssigned(operator=operator, by=ANNA), MARKETPLACE)

    def request(self, *drafts: Draft, nonce: tuple[str, str] | None = None) -> AppendRequest:
        request = super().request(*drafts, nonce=nonce)
        return dataclasses.replace(request, audiences=audiences_of(self._folded(request.events)))


async def noted_chat(store: EventStore) -> ShopScript:
    """seq 1 opened, 2 the buyer, 3 a note, 4 an assignment, 5 the shop, 6 a note."""
    chat = ShopScript(party("b1"), party("s1"))
    await chat.append(store, chat.opened(), chat.from_buyer("Где моя куртка?"))
    await chat.append(store, chat.note("Куртка на складе, позвонить курьеру"))
    await chat.append(store, chat.assigned(ANNA))
    await chat.append(store, chat.from_shop("Куртка уже в пути"))
    await chat.append(store, chat.note("Курьер обещал завтра"))
    return chat


class HiddenKindsContract(StoreFixtures):
    """What a reader may not see of a chat is left out by the store itself."""

    async def test_a_key_is_never_fed_the_kinds_hidden_from_it(self, store: EventStore) -> None:
        await noted_chat(store)
        assert seqs(await store.read_feed(["b:b1"], 0, 100)) == [1, 2, 5]
        assert seqs(await store.read_feed(["s:s1"], 0, 100)) == [1, 2, 3, 4, 5, 6]
        # Both keys at once: what either may see, once.
        assert seqs(await store.read_feed(["b:b1", "s:s1"], 0, 100)) == [1, 2, 3, 4, 5, 6]

    async def test_one_append_of_shown_and_hidden_events_feeds_each_key_its_own(
        self, store: EventStore
    ) -> None:
        chat = ShopScript(party("b1"), party("s1"))
        await chat.append(
            store,
            chat.opened(),
            chat.note("Первая заметка"),
            chat.from_shop("Здравствуйте!"),
            chat.assigned(None),
        )
        assert seqs(await store.read_feed(["b:b1"], 0, 100)) == [1, 3]
        assert seqs(await store.read_feed(["s:s1"], 0, 100)) == [1, 2, 3, 4]

    async def test_after_a_dispute_the_managers_are_fed_the_shops_notes(
        self, store: EventStore
    ) -> None:
        chat = ShopScript(party("b1"), party("s1"))
        order = order_card("o1", party("b1"), party("s1"))
        await chat.append(store, chat.opened(), chat.note("До спора"))
        await chat.append(store, chat.return_requested(order))
        await chat.append(store, chat.rejected(order))
        await chat.append(store, chat.disputed(order))
        await chat.append(store, chat.note("После спора"))
        fed = await store.read_feed(["m"], 0, 100)
        assert [(s.event.seq, s.event.kind) for s in fed] == [
            (5, Kind.RETURN_DISPUTED),
            (6, Kind.NOTE),
        ]
        assert Kind.NOTE not in {s.event.kind for s in await store.read_feed(["b:b1"], 0, 100)}

    async def test_a_page_of_history_leaves_out_hidden_kinds_and_counts_its_limit_without_them(
        self, store: EventStore
    ) -> None:
        chat = await noted_chat(store)
        stream = chat.stream
        assert seqs(await store.read_stream(stream)) == [1, 2, 3, 4, 5, 6]
        assert seqs(await store.read_stream(stream, hide_kinds=SHOP_ONLY_KINDS)) == [1, 2, 5]
        newest = await store.read_stream(stream, before=7, limit=2, hide_kinds=SHOP_ONLY_KINDS)
        assert seqs(newest) == [2, 5]
        older = await store.read_stream(stream, before=2, limit=2, hide_kinds=SHOP_ONLY_KINDS)
        assert seqs(older) == [1]
        assert seqs(await store.read_stream(stream, before=7, limit=2)) == [5, 6]
        only_notes = await store.read_stream(stream, hide_kinds={Kind.MESSAGE, Kind.CHAT_OPENED})
        assert [s.event.kind for s in only_notes] == [Kind.NOTE, Kind.CHAT_ASSIGNED, Kind.NOTE]

    async def test_unread_leaves_out_the_hidden_kinds(self, store: EventStore) -> None:
        chat = await noted_chat(store)
        # For the buyer, the shop's texts after seq 2: two notes and a message.
        assert await store.count_unread(chat.stream, "buyer", 2) == 3
        assert await store.count_unread(chat.stream, "buyer", 2, SHOP_ONLY_KINDS) == 1

    async def test_a_search_finds_the_hidden_kinds_only_for_whom_they_are_not_hidden(
        self, store: EventStore
    ) -> None:
        chat = await noted_chat(store)
        # The note at seq 6 comes after the chat's activity (the shop's message at seq 5):
        # the store must still find it for the shop.
        for key in ("s:s1", "b:b1"):
            found = await store.search(key, match("курьер"), None, 10)
            assert seqs(found) == [6, 3], key
            hidden = await store.search(key, match("курьер"), chat.stream, 10, SHOP_ONLY_KINDS)
            assert hidden == [], key
        shown = await store.search("b:b1", match("куртка"), None, 10, SHOP_ONLY_KINDS)
        assert seqs(shown) == [5, 2]
        limited = await store.search("s:s1", match("куртка"), None, 2)
        assert seqs(limited) == [5, 3]
        limited = await store.search("b:b1", match("куртка"), None, 1, SHOP_ONLY_KINDS)
        assert seqs(limited) == [5]

    async def test_hidden_events_are_no_chats_latest_activity(self, store: EventStore) -> None:
        chat = await noted_chat(store)
        entry = await store.chat_entry(chat.stream)
        assert entry is not None and entry.last_seq == 5
        [listed] = await store.list_chats("b:b1", None, 10)
        assert listed.last_seq == 5

    async def test_a_rebuild_keeps_what_is_hidden_and_from_whom(self, store: EventStore) -> None:
        chat = await noted_chat(store)
        await store.rebuild(LogProjector())
        assert seqs(await store.read_feed(["b:b1"], 0, 100)) == [1, 2, 5]
        entry = await store.chat_entry(chat.stream)
        assert entry is not None and entry.last_seq == 5
        found = await store.search("s:s1", match("курьер"), None, 10)
        assert seqs(found) == [6, 3]


class OperatorStoreContract(StoreFixtures):
    """The operators each shop is known to have."""

    async def test_an_operator_is_kept_by_shop_and_found_by_id(self, store: EventStore) -> None:
        anna = OperatorRecord(shop="s1", id="op-anna", name="Анна", seen_at=T0)
        await store.remember_operator(anna)
        assert await store.operator_of("s1", "op-anna") == anna
        assert await store.operator_of("s2", "op-anna") is None
        assert await store.operator_of("s1", "op-boris") is None

    async def test_a_shop_lists_its_own_operators_by_name(self, store: EventStore) -> None:
        for shop, ident, name in [
            ("s1", "op-3", "Вера"),
            ("s1", "op-1", "Анна"),
            ("s2", "op-9", "Борис"),
            ("s1", "op-2", "Анна"),
        ]:
            await store.remember_operator(OperatorRecord(shop, ident, name, T0))
        listed = await store.operators_of("s1")
        assert [(r.id, r.name) for r in listed] == [
            ("op-1", "Анна"),
            ("op-2", "Анна"),
            ("op-3", "Вера"),
        ]
        assert [r.id for r in await store.operators_of("s2")] == ["op-9"]
        assert await store.operators_of("s3") == []

    async def test_a_later_sign_in_renames_the_operator(self, store: EventStore) -> None:
        await store.remember_operator(OperatorRecord("s1", "op-anna", "Анна", T0))
        later = OperatorRecord("s1", "op-anna", "Анна Петрова", T0 + timedelta(days=1))
        await store.remember_operator(later)
        assert await store.operators_of("s1") == [later]

    async def test_operators_survive_a_reopen_and_a_rebuild(self, stores: Stores) -> None:
        store = await stores.open()
        anna = OperatorRecord("s1", "op-anna", "Анна", T0)
        await store.remember_operator(anna)
        store = await stores.reopen(store)
        assert await store.operators_of("s1") == [anna]
        await store.rebuild(LogProjector())
        assert await store.operators_of("s1") == [anna]
