"""Claims that always end (version 1.1): the shop withdraws its offer, an offer expires, a
request the shop left undecided goes to the managers; the deadlines themselves as pure
functions; a chat's reply deadline capped by a waiting request's.

No event loop: the chats are built from events and `decide` is asked what one command would
append, as in tests/domain/test_returns.py, whose helpers these tests share.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chatd.domain.actors import Actor
from chatd.domain.commands import PostMessage, ReturnCommand
from chatd.domain.deadlines import Timer, claim_due, reply_due, return_opens_at, timers
from chatd.domain.decide import decide
from chatd.domain.errors import Rejection
from chatd.domain.ids import claim_id
from chatd.domain.model import Claim
from chatd.domain.rules import Rules
from protocol.codes import ErrorCode
from protocol.events import Event
from tests.domain.test_returns import (
    BUYER,
    FILM,
    LATER,
    MANAGER,
    OPERATOR,
    OTHER_OPERATOR,
    RULES,
    SKIRT,
    SYSTEM,
    accept,
    appended,
    approve,
    buyer_message,
    claim_of,
    dispute,
    escalate,
    expire,
    given_chat,
    initiate,
    kinds,
    logistics,
    opened,
    refused,
    reject,
    request,
    resolve,
    state_of,
    when,
    withdraw,
)

WITHDRAWN_TEXT = "Продавец отозвал предложение о возврате."
EXPIRED_TEXT = "Срок предложения о возврате истёк."
ESCALATED_TEXT = (
    "Продавец не ответил на заявку вовремя. Заявка передана на рассмотрение менеджеру Wildberries."
)

# The defaults of the contract: 10 days for the shop's decision, 14 for the buyer's answer.
CLAIM_DUE = LATER + timedelta(days=10)
OFFER_DUE = LATER + timedelta(days=14)


def shop_message(events: list[Event], text: str, at: datetime) -> list[Event]:
    """The shop writes in the chat (a message, not a decision)."""
    return events + appended(
        decide(state_of(events), PostMessage(actor=OPERATOR, text=text), at, RULES)
    )


# ---- the shop withdraws its offer -----------------------------------------------------------


def test_the_shop_withdraws_its_offer_and_the_claim_is_closed() -> None:
    events = given_chat(initiate())
    withdrawn = appended(when(events, withdraw()))
    assert kinds(withdrawn) == ["return.withdrawn"]
    event = withdrawn[0]
    assert event.author.role == "system" and event.author.name == "Wildberries"
    assert event.text == WITHDRAWN_TEXT
    assert event.text_for("buyer") == WITHDRAWN_TEXT
    assert event.data.claim == claim_id(SKIRT.id)
    events = accept(events, withdraw())
    assert claim_of(events).state == "closed"


def test_only_an_offer_still_awaiting_the_buyer_may_be_withdrawn() -> None:
    for history in ([request()], [initiate(), request()], [request(), reject()]):
        refused(when(given_chat(*history), withdraw()), ErrorCode.CONFLICT)
    refused(when(given_chat(request()), withdraw(FILM)), ErrorCode.NOT_FOUND)


def test_only_the_chats_shop_withdraws() -> None:
    events = given_chat(initiate())
    for actor in (BUYER, MANAGER, SYSTEM):
        refused(when(events, withdraw(actor=actor)), ErrorCode.FORBIDDEN)
    refused(when(events, withdraw(actor=OTHER_OPERATOR)), ErrorCode.NOT_FOUND)
    colleague = replace(OPERATOR, id="op-2", name="Тимофей")
    assert kinds(when(events, withdraw(actor=colleague))) == ["return.withdrawn"]


@pytest.mark.parametrize("end", [withdraw(), expire()], ids=["withdrawn", "expired"])
def test_after_an_offer_ends_the_order_cannot_be_requested_through_the_chat(
    end: ReturnCommand,
) -> None:
    events = accept(given_chat(initiate()), end, OFFER_DUE)
    later = OFFER_DUE + timedelta(days=30)
    rejection = refused(when(events, request(), later), ErrorCode.CONFLICT)
    assert "closed" in rejection.message
    # Nothing else moves it either: closed is final.
    for command in (initiate(), withdraw(), expire(), escalate(), approve(), reject(), dispute()):
        refused(when(events, command, later), ErrorCode.CONFLICT)
    # Another order of the same chat is not affected.
    assert kinds(when(events, request(FILM), later)) == ["return.requested"]


# ---- an offer expires -----------------------------------------------------------------------


def test_an_offer_expires_once_its_deadline_has_passed() -> None:
    events = given_chat(initiate())
    early = refused(when(events, expire(), OFFER_DUE - timedelta(seconds=1)), ErrorCode.CONFLICT)
    assert early.details == {"due": "2023-09-07T21:00:00Z"}
    expired = appended(when(events, expire(), OFFER_DUE))
    assert kinds(expired) == ["return.expired"]
    assert expired[0].text == EXPIRED_TEXT
    assert expired[0].author.role == "system"
    assert claim_of(accept(events, expire(), OFFER_DUE)).state == "closed"


def test_an_offer_the_buyer_took_up_does_not_expire() -> None:
    events = given_chat(initiate(), request())
    rejection = refused(when(events, expire(), OFFER_DUE + timedelta(days=1)), ErrorCode.CONFLICT)
    assert "requested" in rejection.message


# ---- a request the shop left undecided goes to the managers -------------------------------


def test_a_request_undecided_by_its_deadline_goes_to_the_managers() -> None:
    events = given_chat(request())
    early = refused(when(events, escalate(), CLAIM_DUE - timedelta(seconds=1)), ErrorCode.CONFLICT)
    assert early.details == {"due": "2023-09-03T21:00:00Z"}
    escalated = appended(when(events, escalate(), CLAIM_DUE))
    assert kinds(escalated) == ["return.escalated"]
    event = escalated[0]
    assert event.text == ESCALATED_TEXT
    assert event.author.role == "system" and event.author.name == "Wildberries"
    assert event.data.claim == claim_id(SKIRT.id)

    events = accept(events, escalate(), CLAIM_DUE)
    state = state_of(events)
    assert claim_of(events).state == "disputed"
    # The managers see the chat from the escalation on, and decide as on a dispute.
    assert state.managers_from == events[-1].seq
    assert kinds(when(events, resolve("approve", "no_return"), CLAIM_DUE)) == [
        "return.resolved",
        "refund.issued",
    ]


def test_the_marketplaces_name_fills_the_escalation_text() -> None:
    events = given_chat(request())
    result = appended(decide(state_of(events), escalate(), CLAIM_DUE, Rules(marketplace="Маркет")))
    assert result[0].text == (
        "Продавец не ответил на заявку вовремя. Заявка передана на рассмотрение менеджеру Маркет."
    )
    assert result[0].author.name == "Маркет"


def test_after_the_escalation_neither_side_decides_any_more() -> None:
    events = accept(given_chat(request()), escalate(), CLAIM_DUE)
    for command in (approve(), approve(mode="no_return"), reject(), dispute(), withdraw()):
        refused(when(events, command, CLAIM_DUE), ErrorCode.CONFLICT)


@pytest.mark.parametrize(
    "decision",
    [approve(mode="pvz"), approve(mode="no_return"), reject()],
    ids=["pvz", "no_return", "reject"],
)
def test_a_decision_in_time_leaves_nothing_to_escalate(decision: ReturnCommand) -> None:
    events = accept(given_chat(request()), decision, CLAIM_DUE - timedelta(minutes=1))
    refused(when(events, escalate(), CLAIM_DUE + timedelta(days=1)), ErrorCode.CONFLICT)


def test_the_deadline_runs_from_the_buyers_request_not_from_the_shops_offer() -> None:
    offered_at = LATER
    taken_up = LATER + timedelta(days=5)
    events = accept(given_chat(initiate(), now=offered_at), request(), taken_up)
    due = taken_up + timedelta(days=10)
    refused(when(events, escalate(), due - timedelta(seconds=1)), ErrorCode.CONFLICT)
    assert kinds(when(events, escalate(), due)) == ["return.escalated"]


@pytest.mark.parametrize("actor", [BUYER, OPERATOR, MANAGER], ids=lambda a: a.role)
def test_only_the_servers_deadlines_escalate_or_expire(actor: Actor) -> None:
    refused(when(given_chat(request()), escalate(actor=actor), CLAIM_DUE), ErrorCode.FORBIDDEN)
    refused(when(given_chat(initiate()), expire(actor=actor), OFFER_DUE), ErrorCode.FORBIDDEN)


@pytest.mark.parametrize(
    ("setup", "fire", "due"),
    [(request(), escalate(), CLAIM_DUE), (initiate(), expire(), OFFER_DUE)],
    ids=["escalate", "expire"],
)
def test_two_nodes_firing_one_deadline_append_one_event(
    setup: ReturnCommand, fire: ReturnCommand, due: datetime
) -> None:
    """Both nodes decide; the log takes the first, and the second decides again on what the
    log now holds (the store refuses its stale append): it is refused, nothing appended."""
    events = given_chat(setup)
    first = appended(when(events, fire, due))
    second_try = when(events + first, fire, due + timedelta(seconds=1))
    assert isinstance(second_try, Rejection) and second_try.code == ErrorCode.CONFLICT
    # A third node, later still, finds nothing to do either.
    refused(when(events + first, fire, due + timedelta(days=30)), ErrorCode.CONFLICT)


# ---- the deadlines as pure functions --------------------------------------------------------


def test_a_claims_due_is_its_requests_or_its_offers_deadline_and_none_after() -> None:
    requested = claim_of(given_chat(request()))
    assert requested.requested_at == LATER
    assert claim_due(requested, RULES) == CLAIM_DUE
    offered = claim_of(given_chat(initiate()))
    assert offered.offered_at == LATER
    assert claim_due(offered, RULES) == OFFER_DUE
    for history in (
        [request(), reject()],
        [request(), approve()],
        [request(), approve(), logistics("handed_in")],
        [initiate(), withdraw()],
    ):
        assert claim_due(claim_of(given_chat(*history)), RULES) is None, history
    short = Rules(claim_deadline=timedelta(seconds=3), offer_deadline=timedelta(minutes=15))
    assert claim_due(requested, short) == LATER + timedelta(seconds=3)
    assert claim_due(offered, short) == LATER + timedelta(minutes=15)


def test_return_opens_at_is_local_midnight_in_utc() -> None:
    # Bought on 10.08.2023 in Moscow: 24.08.2023 00:00 there.
    assert return_opens_at(SKIRT, RULES) == datetime(2023, 8, 23, 21, 0, tzinfo=UTC)
    assert return_opens_at(SKIRT, Rules(return_opens_days=1)) == datetime(
        2023, 8, 10, 21, 0, tzinfo=UTC
    )


def test_the_timers_of_a_chat_are_its_waiting_claims_earliest_first() -> None:
    events = given_chat(initiate(SKIRT))
    events = accept(events, request(FILM), LATER + timedelta(days=1))
    state = state_of(events)
    assert timers(state, RULES) == [
        Timer(state.chat, claim_id(FILM.id), "escalate", LATER + timedelta(days=11)),
        Timer(state.chat, claim_id(SKIRT.id), "expire", OFFER_DUE),
    ]
    state = state_of(accept(events, withdraw(SKIRT), LATER + timedelta(days=2)))
    assert [t.claim for t in timers(state, RULES)] == [claim_id(FILM.id)]
    assert timers(state_of(opened()), RULES) == []


# ---- reply deadlines ------------------------------------------------------------------------


def chat_reply_due(events: list[Event], rules: Rules = RULES) -> datetime | None:
    state = state_of(events)
    return reply_due(state.waiting_since, state.claims.values(), rules)


def test_a_waiting_request_caps_the_reply_deadline_whatever_the_shop_writes() -> None:
    short = Rules(claim_deadline=timedelta(days=3))
    events = given_chat(request())
    assert chat_reply_due(events) == LATER + timedelta(days=10)
    assert chat_reply_due(events, short) == LATER + timedelta(days=3)
    # A message from the shop answers the buyer, but not the request.
    events = shop_message(events, "Посмотрим и ответим", LATER + timedelta(hours=1))
    assert state_of(events).waiting_since is None
    assert chat_reply_due(events) == CLAIM_DUE
    # A newer buyer message does not push the deadline past the request's.
    events = buyer_message(events, "Жду решения", LATER + timedelta(days=2))
    assert chat_reply_due(events) == CLAIM_DUE


def test_an_older_unanswered_message_keeps_its_earlier_deadline() -> None:
    events = buyer_message(opened(), "Здравствуйте!", LATER - timedelta(days=4))
    events = accept(events, request())
    assert chat_reply_due(events) == LATER + timedelta(days=6)


def test_the_decision_lifts_the_cap_and_nothing_waits() -> None:
    events = accept(given_chat(request()), reject(), LATER + timedelta(hours=2))
    assert chat_reply_due(events) is None


def test_an_escalation_is_no_answer_from_the_shop() -> None:
    events = accept(given_chat(request()), escalate(), CLAIM_DUE)
    # Still waiting since the request: the shop's reply is as overdue as it was.
    assert state_of(events).waiting_since == LATER
    assert chat_reply_due(events) == LATER + timedelta(days=10)


def test_a_withdrawal_or_an_expiry_answers_nothing_the_buyer_wrote() -> None:
    events = accept(given_chat(initiate()), request(FILM), LATER + timedelta(hours=1))
    for end, at in ((withdraw(), LATER + timedelta(hours=2)), (expire(), OFFER_DUE)):
        after = accept(events, end, at)
        assert state_of(after).waiting_since == LATER + timedelta(hours=1)


def test_a_claim_before_1_1_has_no_times_and_no_deadline() -> None:
    # Folded from events only, a claim always has its times; one made by hand without them
    # (as a state from before the field existed would be) waits for nothing.
    claim = Claim(
        id="r1", order=SKIRT, state="requested", amount=SKIRT.price, requested_by_buyer=True
    )
    assert claim_due(claim, RULES) is None
    assert reply_due(None, [claim], RULES) is None


def test_folding_keeps_the_times_through_later_events() -> None:
    events = given_chat(initiate())
    events = accept(events, request(), LATER + timedelta(days=1))
    events = accept(events, reject(), LATER + timedelta(days=2))
    events = accept(events, dispute(), LATER + timedelta(days=3))
    claim = claim_of(events)
    assert (claim.offered_at, claim.requested_at) == (LATER, LATER + timedelta(days=1))
