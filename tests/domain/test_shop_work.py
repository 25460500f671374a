"""The shop's own work in a chat (docs/protocol.md, "The operator's day"): assignment and
private notes. Given events, when a command, then events or a rejection; and who is given
them (the routing, the reads' hidden kinds, the projection's rows), all without a loop."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec
import pytest

from chatd.domain.access import hidden_kinds, sees_shop_events
from chatd.domain.actors import Actor
from chatd.domain.commands import AssignChat, PostMessage, PostNote
from chatd.domain.decide import decide
from chatd.domain.model import ChatState
from chatd.projection import chat_rows
from chatd.routing import audiences_of, buyer_key, receivers, shop_key
from chatd.store.rows import ChatActivityRow, SearchRow
from protocol.codes import ErrorCode
from protocol.events import SHOP_ONLY_KINDS, Event, Kind, Operator
from tests.domain.test_chat import (
    BUYER,
    MANAGER,
    NOW,
    OPERATOR,
    OTHER_OPERATOR,
    RULES,
    events_of,
    opened,
    rejection,
    say,
    state_of,
)

ANNA = Operator(id="op-anna", name="Анна")
BORIS = Operator(id="op-boris", name="Борис")
SYSTEM = Actor(role="system", id="backend", name="Маркетплейс")
KEY = Actor(
    role="seller", id="key_0123", name="Бот", shop="shop1", scopes=frozenset({"chat:write"})
)
READING_KEY = Actor(
    role="seller", id="key_4567", name="Читатель", shop="shop1", scopes=frozenset({"chat:read"})
)


def assign(events: list[Event], actor: Actor, operator: Operator | None) -> list[Event]:
    return events + events_of(decide(state_of(events), AssignChat(actor, operator), NOW, RULES))


def note(events: list[Event], actor: Actor, text: str) -> list[Event]:
    return events + events_of(decide(state_of(events), PostNote(actor, text), NOW, RULES))


def disputed(state: ChatState, since: int = 2) -> ChatState:
    """The chat as a dispute at `since` leaves it: managers see it from there on."""
    return dataclasses.replace(state, managers_from=since)


# ---- assignment ----------------------------------------------------------------------------


def test_an_operator_gives_a_chat_to_another_and_the_marketplace_authors_it() -> None:
    events = assign(opened(), OPERATOR, BORIS)
    event = events[-1]
    assert (event.seq, event.kind, event.at) == (2, Kind.CHAT_ASSIGNED, NOW)
    assert event.author.role == "system" and event.author.name == "Wildberries"
    assert event.text is None and event.text_buyer is None
    assert event.data.operator == BORIS
    assert event.data.by == ANNA
    assert state_of(events).assignee == BORIS


def test_taking_and_giving_back_a_chat() -> None:
    events = assign(opened(), OPERATOR, ANNA)
    assert state_of(events).assignee == ANNA
    events = assign(events, OPERATOR, None)
    assert events[-1].data.operator is None
    assert state_of(events).assignee is None


def test_every_press_is_an_event_of_its_own() -> None:
    events = assign(assign(opened(), OPERATOR, BORIS), OPERATOR, BORIS)
    assert [e.kind for e in events] == [Kind.CHAT_OPENED, Kind.CHAT_ASSIGNED, Kind.CHAT_ASSIGNED]
    assert state_of(events).assignee == BORIS


def test_an_api_keys_assignment_names_nobody_as_its_author() -> None:
    events = assign(opened(), KEY, BORIS)
    assert events[-1].data.by is None and events[-1].data.operator == BORIS


@pytest.mark.parametrize("actor", [BUYER, MANAGER, SYSTEM])
def test_only_the_shop_assigns(actor: Actor) -> None:
    refused = rejection(decide(state_of(opened()), AssignChat(actor, ANNA), NOW, RULES))
    assert refused.code == ErrorCode.FORBIDDEN


def test_another_shops_operator_finds_no_such_chat() -> None:
    refused = rejection(decide(state_of(opened()), AssignChat(OTHER_OPERATOR, None), NOW, RULES))
    assert (refused.code, refused.message) == (ErrorCode.NOT_FOUND, "no such chat")


def test_an_assignment_answers_nothing_the_buyer_wrote() -> None:
    events = say(opened(), BUYER, "Здравствуйте, где мой заказ?")
    waiting = state_of(events).waiting_since
    assert waiting is not None
    assert state_of(assign(events, OPERATOR, ANNA)).waiting_since == waiting


# ---- notes -------------------------------------------------------------------------------------


def test_a_note_is_authored_as_the_shops_messages_are() -> None:
    events = note(opened(), OPERATOR, "  Покупатель звонил, ждёт ответа до пятницы  ")
    event = events[-1]
    assert (event.seq, event.kind) == (2, Kind.NOTE)
    assert event.text == "Покупатель звонил, ждёт ответа до пятницы"
    assert event.author.role == "seller" and event.author.id == "shop1"
    assert event.author.operator == ANNA
    assert event.text_buyer is None


def test_a_note_holds_1_to_1000_characters_after_trimming() -> None:
    state = state_of(opened())
    assert events_of(decide(state, PostNote(OPERATOR, "я" * 1000), NOW, RULES))
    for text in ("", "   \n "):
        refused = rejection(decide(state, PostNote(OPERATOR, text), NOW, RULES))
        assert refused.code == ErrorCode.BAD_FRAME and "empty" in refused.message
    refused = rejection(decide(state, PostNote(OPERATOR, "я" * 1001), NOW, RULES))
    assert refused.code == ErrorCode.BAD_FRAME
    assert refused.message == "text is 1001 characters long; at most 1000"


def test_a_note_may_hold_contacts() -> None:
    text = "Покупатель оставил телефон +7 916 123-45-67 и почту ivan@mail.ru"
    refused = decide(state_of(opened()), PostMessage(OPERATOR, text), NOW, RULES)
    assert rejection(refused).code == ErrorCode.CONTACTS_FORBIDDEN
    assert note(opened(), OPERATOR, text)[-1].text == text


def test_a_note_does_not_carry_a_number_into_the_shops_next_message() -> None:
    """The split-number rule reads a side's messages: a note is not one of them."""
    events = note(opened(), OPERATOR, "8916")
    assert say(events, OPERATOR, "1234567")[-1].kind == Kind.MESSAGE
    after_message = state_of(say(opened(), OPERATOR, "8916"))
    refused = decide(after_message, PostMessage(OPERATOR, "1234567"), NOW, RULES)
    assert rejection(refused).code == ErrorCode.CONTACTS_FORBIDDEN


def test_a_note_answers_nothing_the_buyer_wrote() -> None:
    events = say(opened(), BUYER, "Здравствуйте, где мой заказ?")
    waiting = state_of(events).waiting_since
    events = note(events, OPERATOR, "Проверить на складе")
    assert state_of(events).waiting_since == waiting
    later = say(events, OPERATOR, "Заказ в пути", at=NOW + timedelta(hours=1))
    assert state_of(later).waiting_since is None


@pytest.mark.parametrize("actor", [BUYER, MANAGER, SYSTEM])
def test_only_the_shop_writes_notes(actor: Actor) -> None:
    refused = rejection(decide(state_of(opened()), PostNote(actor, "Заметка"), NOW, RULES))
    assert refused.code == ErrorCode.FORBIDDEN


def test_another_shops_operator_leaves_no_note() -> None:
    refused = rejection(decide(state_of(opened()), PostNote(OTHER_OPERATOR, "x"), NOW, RULES))
    assert (refused.code, refused.message) == (ErrorCode.NOT_FOUND, "no such chat")


# ---- who sees them -----------------------------------------------------------------------------


def test_the_buyer_and_the_marketplace_never_see_them_the_shop_always_a_manager_in_a_dispute() -> (
    None
):
    chat = state_of(opened())
    assert hidden_kinds(BUYER, chat) == SHOP_ONLY_KINDS
    assert hidden_kinds(SYSTEM, chat) == SHOP_ONLY_KINDS
    assert hidden_kinds(OPERATOR, chat) == frozenset()
    assert hidden_kinds(MANAGER, disputed(chat)) == frozenset()
    assert not sees_shop_events(MANAGER, chat)
    # Another shop's operator sees nothing of the chat at all.
    assert not sees_shop_events(OTHER_OPERATOR, chat)
    # Over every chat of their key (a search without `chat`).
    assert hidden_kinds(BUYER) == SHOP_ONLY_KINDS
    assert hidden_kinds(OPERATOR) == frozenset()
    assert hidden_kinds(MANAGER) == frozenset()


def test_a_key_sees_them_as_its_shop_does_when_it_may_read() -> None:
    chat = state_of(opened())
    assert hidden_kinds(READING_KEY, chat) == frozenset()
    assert hidden_kinds(KEY, chat) == SHOP_ONLY_KINDS  # no chat:read: it reads nothing


def test_they_are_routed_to_the_shop_and_after_a_dispute_to_the_managers_never_to_the_buyer() -> (
    None
):
    events = note(assign(opened(), OPERATOR, ANNA), OPERATOR, "Заметка")
    chat = state_of(events)
    shop, buyer = shop_key("shop1"), buyer_key("lyuda")
    for event in events[1:]:
        assert receivers(audiences_of(chat), event) == (shop,)
        assert receivers(audiences_of(disputed(chat)), event) == (shop, "m")
    message = say(events, BUYER, "Алло?")[-1]
    assert receivers(audiences_of(chat), message) == (buyer, shop)


def test_a_note_is_searchable_but_moves_no_chat_and_is_no_chats_last() -> None:
    events = say(opened(), BUYER, "Где заказ?")
    before = state_of(events)
    noted = events_of(decide(before, PostNote(OPERATOR, "Проверить склад"), NOW, RULES))
    after, rows = chat_rows(before, noted)
    assert after is not None and after.seq == 3
    assert [r for r in rows if isinstance(r, ChatActivityRow)] == []
    assert [(r.seq, r.text) for r in rows if isinstance(r, SearchRow)] == [(3, "проверить склад")]
    assigned = events_of(decide(after, AssignChat(OPERATOR, ANNA), NOW, RULES))
    _, rows = chat_rows(after, assigned)
    assert rows == []
    # An append that also holds an event everyone sees is that event's activity.
    message = msgspec.structs.replace(say(events, BUYER, "Алло?")[-1], seq=4)
    _, rows = chat_rows(before, [noted[0], message])
    [activity] = [r for r in rows if isinstance(r, ChatActivityRow)]
    assert activity.last_seq == 4
