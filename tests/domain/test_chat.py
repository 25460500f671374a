"""Chats and messages: given events, when a command, then events or a rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatd.domain.actors import Actor
from chatd.domain.commands import OpenChat, PostMessage
from chatd.domain.decide import decide
from chatd.domain.errors import Rejection
from chatd.domain.evolve import fold
from chatd.domain.ids import chat_id
from chatd.domain.model import ChatState
from chatd.domain.rules import Rules
from protocol.codes import ErrorCode
from protocol.events import Attachment, Event, Party

RULES = Rules()
NOW = datetime(2023, 3, 4, 7, 1, tzinfo=UTC)
BUYER = Actor(role="buyer", id="lyuda", name="Люда из токена")
OPERATOR = Actor(role="seller", id="op-anna", name="Анна", shop="shop1")
OTHER_OPERATOR = Actor(role="seller", id="op-x", name="Икс", shop="shop2")
MANAGER = Actor(role="manager", id="m1", name="Менеджер")
LYUDA = Party(id="lyuda", name="Люда")
SHOP = Party(id="shop1", name="ИП Кунченко С.А.")


def events_of(result: list[Event] | Rejection) -> list[Event]:
    assert not isinstance(result, Rejection), result
    return result


def opened(at: datetime = NOW) -> list[Event]:
    return events_of(decide(None, OpenChat(actor=BUYER, buyer=LYUDA, seller=SHOP), at, RULES))


def state_of(events: list[Event]) -> ChatState:
    state = fold(events)
    assert state is not None
    return state


def say(events: list[Event], actor: Actor, text: str, at: datetime = NOW) -> list[Event]:
    return events + events_of(decide(state_of(events), PostMessage(actor, text), at, RULES))


def rejection(result: list[Event] | Rejection) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


# ---- opening -------------------------------------------------------------------------------


def test_a_buyer_opens_a_chat_with_chat_opened_as_seq_1() -> None:
    [event] = opened()
    assert event.stream == chat_id("lyuda", "shop1")
    assert (event.seq, event.kind, event.at) == (1, "chat.opened", NOW)
    assert event.author.role == "system" and event.author.name == "Wildberries"
    assert event.data.buyer == LYUDA and event.data.seller == SHOP
    assert event.text is None


def test_opening_an_existing_chat_appends_nothing() -> None:
    state = state_of(opened())
    assert decide(state, OpenChat(actor=BUYER, buyer=LYUDA, seller=SHOP), NOW, RULES) == []


def test_only_a_buyer_opens_a_chat() -> None:
    for actor in (OPERATOR, MANAGER):
        result = decide(None, OpenChat(actor=actor, buyer=LYUDA, seller=SHOP), NOW, RULES)
        assert rejection(result).code == ErrorCode.FORBIDDEN


def test_the_chat_id_is_one_per_buyer_and_shop() -> None:
    assert chat_id("a", "s") == chat_id("a", "s")
    assert chat_id("a", "s") != chat_id("s", "a")
    assert chat_id("a", "bs") != chat_id("ab", "s")


# ---- messages ------------------------------------------------------------------------------


def test_a_buyer_message_is_trimmed_and_named_by_the_marketplace() -> None:
    events = say(opened(), BUYER, "  Здравствуйте, товар не отправили.  \n")
    message = events[-1]
    assert (message.seq, message.kind) == (2, "message")
    assert message.text == "Здравствуйте, товар не отправили."
    assert message.author.role == "buyer"
    assert message.author.name == "Люда"  # the chat's name for the buyer, not the token's
    assert message.data.attachments == []


def test_a_shop_message_names_the_shop_and_its_operator() -> None:
    message = say(opened(), OPERATOR, "Здравствуйте!")[-1]
    assert message.author.role == "seller"
    assert (message.author.id, message.author.name) == ("shop1", "ИП Кунченко С.А.")
    assert message.author.operator is not None
    assert (message.author.operator.id, message.author.operator.name) == ("op-anna", "Анна")


def test_text_length_counts_after_trimming() -> None:
    state = state_of(opened())
    assert not isinstance(
        decide(state, PostMessage(BUYER, " " + "я" * 1000 + " "), NOW, RULES), Rejection
    )
    too_long = rejection(decide(state, PostMessage(BUYER, "я" * 1001), NOW, RULES))
    assert too_long.code == ErrorCode.BAD_FRAME and "1000" in too_long.message
    for empty in ("", "   ", "\n\t"):
        assert rejection(decide(state, PostMessage(BUYER, empty), NOW, RULES)).code == (
            ErrorCode.BAD_FRAME
        )


def test_contacts_are_refused_with_their_spans() -> None:
    state = state_of(opened())
    text = "Напишите мне в телеграм @shop_best или на +7 (916) 123-45-67"
    refused = rejection(decide(state, PostMessage(OPERATOR, text), NOW, RULES))
    assert refused.code == ErrorCode.CONTACTS_FORBIDDEN
    assert refused.details is not None
    found = [text[start:end] for start, end in refused.details["spans"]]
    assert any("@shop_best" in f for f in found)
    assert any("916" in f for f in found)


def test_outsiders_cannot_write_and_managers_may_not_write() -> None:
    state = state_of(opened())
    assert rejection(decide(state, PostMessage(OTHER_OPERATOR, "привет"), NOW, RULES)).code == (
        ErrorCode.NOT_FOUND
    )
    stranger = Actor(role="buyer", id="someone-else", name="x")
    assert rejection(decide(state, PostMessage(stranger, "привет"), NOW, RULES)).code == (
        ErrorCode.NOT_FOUND
    )
    assert rejection(decide(state, PostMessage(MANAGER, "привет"), NOW, RULES)).code == (
        ErrorCode.FORBIDDEN
    )


def test_a_command_on_a_chat_without_events_is_not_found() -> None:
    result = decide(None, PostMessage(BUYER, "привет"), NOW, RULES)
    assert rejection(result).code == ErrorCode.NOT_FOUND


# ---- reply deadline ------------------------------------------------------------------------


def test_the_oldest_unanswered_buyer_message_sets_the_deadline() -> None:
    later = NOW + timedelta(hours=5)
    events = say(say(opened(), BUYER, "первый", NOW), BUYER, "второй", later)
    assert state_of(events).waiting_since == NOW
    events = say(events, OPERATOR, "ответ", later + timedelta(days=1))
    assert state_of(events).waiting_since is None
    events = say(events, BUYER, "ещё вопрос", later + timedelta(days=2))
    assert state_of(events).waiting_since == later + timedelta(days=2)


def test_nothing_waits_in_a_new_chat() -> None:
    assert state_of(opened()).waiting_since is None


# ---- contacts across messages and in file names (issue 12) -----------------------------


def contacts_of(result: list[Event] | Rejection) -> dict[str, object]:
    refused = rejection(result)
    assert refused.code == ErrorCode.CONTACTS_FORBIDDEN
    assert refused.details is not None
    return refused.details


def file(name: str, file_id: str = "f1") -> Attachment:
    return Attachment(id=file_id, name=name, mime="application/pdf", size=1000)


def test_a_file_name_with_contacts_is_refused_by_its_id() -> None:
    state = state_of(opened())
    command = PostMessage(
        BUYER,
        "",
        (file("чек.pdf", "ok"), file("Пишите в телеграм @shop_contact 89161234567.pdf", "bad")),
    )
    details = contacts_of(decide(state, command, NOW, RULES))
    assert details == {"spans": [], "attachments": ["bad"]}


def test_ordinary_file_names_pass() -> None:
    state = state_of(opened())
    for name in ("IMG_20230304_123456.jpg", "Скан чека 04.03.2023.pdf", "фото брака (2).png"):
        events_of(decide(state, PostMessage(BUYER, "фото", (file(name),)), NOW, RULES))


def test_a_number_split_over_two_messages_is_refused_in_the_second() -> None:
    events = say(opened(), BUYER, "8916")
    details = contacts_of(decide(state_of(events), PostMessage(BUYER, "1234567"), NOW, RULES))
    assert details == {"spans": [[0, 7]]}


def test_a_number_split_over_several_messages_and_files() -> None:
    events = say(say(opened(), OPERATOR, "8 (916)"), OPERATOR, "123")
    events += events_of(
        decide(state_of(events), PostMessage(OPERATOR, "", (file("a.png"),)), NOW, RULES)
    )
    events = say(events, BUYER, "Что?")  # the other side's message does not break it
    text = "45-67, звоните"
    details = contacts_of(decide(state_of(events), PostMessage(OPERATOR, text), NOW, RULES))
    assert details == {"spans": [[0, 5]]}


def test_the_split_rule_keeps_each_side_apart_and_stops_at_words() -> None:
    events = say(opened(), BUYER, "8916")
    # The shop's digits do not continue the buyer's.
    events_of(decide(state_of(events), PostMessage(OPERATOR, "1234567"), NOW, RULES))
    # A message that ends in words ends the number.
    events = say(events, BUYER, "размер 42 подошёл, спасибо")
    assert state_of(events).buyer_tail == ""
    events_of(decide(state_of(events), PostMessage(BUYER, "1234567"), NOW, RULES))


def test_numbers_in_separate_messages_that_make_no_phone_pass() -> None:
    events = say(say(opened(), BUYER, "Размер 42"), BUYER, "44")
    events = say(events, BUYER, "Цена 2 990")
    say(events, BUYER, "Заказ 12345678")
    assert state_of(events).buyer_tail.endswith("2 990")


def test_a_keyword_shields_only_in_the_message_that_holds_the_number() -> None:
    events = say(opened(), OPERATOR, "артикул")
    contacts_of(decide(state_of(events), PostMessage(OPERATOR, "9161234567"), NOW, RULES))
    say(events, OPERATOR, "артикул 9161234567")
