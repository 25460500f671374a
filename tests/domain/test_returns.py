"""Returns through the chat: given events, when a command, then events or a rejection.

The stories follow the seller portal's help page; the rules and texts are those of the wire
contract (docs/protocol.md). No event loop: `decide` and `fold` are
pure, so every test builds its chat from events and asks what one command would append.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace as changed

from chatd.domain.actors import Actor, author_of
from chatd.domain.commands import (
    ApproveReturn,
    Command,
    DisputeReturn,
    EscalateClaim,
    ExpireOffer,
    InitiateReturn,
    OpenChat,
    RejectReturn,
    ReportLogistics,
    RequestReturn,
    ResolveReturn,
    ReturnCommand,
    WithdrawReturn,
)
from chatd.domain.decide import decide
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection
from chatd.domain.evolve import evolve, fold
from chatd.domain.ids import claim_id
from chatd.domain.model import ChatState, Claim
from chatd.domain.returns import (
    TRANSITIONS,
    Action,
    Stage,
    action_of,
    claim_state_label,
    evolve_claims,
    stage_of,
)
from chatd.domain.rules import Rules
from protocol.codes import ErrorCode
from protocol.events import (
    Decision,
    Event,
    GoodsState,
    MessagePosted,
    Money,
    OrderCard,
    Party,
    ReturnMode,
)

RULES = Rules()

BUYER_PARTY = Party(id="buyer-1", name="Тимур")
SHOP = Party(id="shop-1", name="ИП Кунченко С.А.")
BUYER = Actor(role="buyer", id="buyer-1", name="Тимур")
OTHER_BUYER = Actor(role="buyer", id="buyer-2", name="Люда")
OPERATOR = Actor(role="seller", id="op-1", name="Светлана", shop="shop-1", shop_name=SHOP.name)
OTHER_OPERATOR = Actor(role="seller", id="op-9", name="Владислав", shop="shop-9")
MANAGER = Actor(role="manager", id="manager-1", name="Менеджер")
SYSTEM = Actor(role="system", id="system", name="Wildberries")

OPENED_AT = datetime(2023, 8, 1, 9, 0, tzinfo=UTC)
# Noon UTC is 15:00 in Moscow: the same day either way.
RECEIVED = datetime(2023, 8, 17, 12, 0, tzinfo=UTC)
# Bought on 10.08.2023 (11:00 in Moscow): a return through the chat opens on 24.08.2023 at
# 00:00 Moscow time, which is 21:00 UTC the day before.
PURCHASED = datetime(2023, 8, 10, 8, 0, tzinfo=UTC)
OPENS_AT = datetime(2023, 8, 23, 21, 0, tzinfo=UTC)
LATER = OPENS_AT + timedelta(days=1)

SKIRT = OrderCard(
    non_returnable=False,
    id="order-skirt",
    buyer=BUYER_PARTY,
    seller=SHOP,
    article="140158860",
    name="Юбка короткая плиссе со складками",
    brand="SK - Line",
    size="S",
    color="черный",
    price=Money(value=118600, currency="RUB"),
    purchased_at=PURCHASED,
    received_at=RECEIVED,
)
FILM = OrderCard(
    non_returnable=False,
    id="order-film",
    buyer=BUYER_PARTY,
    seller=SHOP,
    article="170589710",
    name="защитная пленка для Galaxy S23",
    brand="Samsung",
    price=Money(value=2753, currency="BYN"),
    purchased_at=PURCHASED,
    received_at=RECEIVED,
)
VITAMINS = changed(SKIRT, id="order-vitamins", name="Витамин D3", size=None, non_returnable=True)
IN_TRANSIT = changed(SKIRT, id="order-in-transit", received_at=None)
FOREIGN_BUYERS = changed(SKIRT, id="order-foreign-buyer", buyer=Party(id="buyer-2", name="Люда"))
FOREIGN_SHOPS = changed(SKIRT, id="order-foreign-shop", seller=Party(id="shop-9", name="Другой"))

APPROVED_TEXT = "Процедура возврата согласована."
REJECTED_TEXT = "Процедура возврата отменена продавцом."
REFUND_TEXT = "Денежные средства возвращены на баланс покупателя."
SKIRT_T1 = (
    'Здравствуйте! Хочу вернуть товар "Юбка короткая плиссе со складками, бренд SK - Line, '
    'размер S, артикул 140158860, товар получен 17.08.2023"'
)
FILM_T1 = (
    'Здравствуйте! Хочу вернуть товар "защитная пленка для Galaxy S23, бренд Samsung, '
    'артикул 170589710, товар получен 17.08.2023"'
)


# ---- commands, as the buttons press them ---------------------------------------------------


def request(order: OrderCard = SKIRT, actor: Actor = BUYER) -> RequestReturn:
    return RequestReturn(actor=actor, order=order)


def initiate(order: OrderCard = SKIRT, actor: Actor = OPERATOR) -> InitiateReturn:
    return InitiateReturn(actor=actor, order=order)


def approve(
    order: OrderCard = SKIRT,
    mode: ReturnMode = "pvz",
    amount: Money | None = None,
    actor: Actor = OPERATOR,
) -> ApproveReturn:
    return ApproveReturn(
        actor=actor, claim=claim_id(order.id), mode=mode, amount=amount or order.price
    )


def reject(order: OrderCard = SKIRT, actor: Actor = OPERATOR) -> RejectReturn:
    return RejectReturn(actor=actor, claim=claim_id(order.id))


def dispute(order: OrderCard = SKIRT, actor: Actor = BUYER) -> DisputeReturn:
    return DisputeReturn(actor=actor, claim=claim_id(order.id))


def resolve(
    decision: Decision,
    mode: ReturnMode | None = None,
    order: OrderCard = SKIRT,
    actor: Actor = MANAGER,
) -> ResolveReturn:
    return ResolveReturn(actor=actor, claim=claim_id(order.id), decision=decision, mode=mode)


def withdraw(order: OrderCard = SKIRT, actor: Actor = OPERATOR) -> WithdrawReturn:
    return WithdrawReturn(actor=actor, claim=claim_id(order.id))


def escalate(order: OrderCard = SKIRT, actor: Actor = SYSTEM) -> EscalateClaim:
    return EscalateClaim(actor=actor, claim=claim_id(order.id))


def expire(order: OrderCard = SKIRT, actor: Actor = SYSTEM) -> ExpireOffer:
    return ExpireOffer(actor=actor, claim=claim_id(order.id))


def logistics(
    step: GoodsState, defect: bool = False, order: OrderCard = SKIRT, actor: Actor = SYSTEM
) -> ReportLogistics:
    return ReportLogistics(actor=actor, claim=claim_id(order.id), step=step, defect=defect)


# ---- given, when, then ---------------------------------------------------------------------


def opened() -> list[Event]:
    command = OpenChat(actor=BUYER, buyer=BUYER_PARTY, seller=SHOP)
    return appended(decide(None, command, OPENED_AT, RULES))


def state_of(events: list[Event]) -> ChatState:
    state = fold(events)
    assert state is not None
    return state


def when(events: list[Event], command: Command, now: datetime = LATER) -> list[Event] | Rejection:
    return decide(state_of(events), command, now, RULES)


def accept(events: list[Event], command: ReturnCommand, now: datetime = LATER) -> list[Event]:
    """Append what `command` decides, and check the claim lands where the table says."""
    before = state_of(events)
    result = appended(decide(before, command, now, RULES))
    assert [e.seq for e in result] == list(range(before.seq + 1, before.seq + 1 + len(result)))
    action = action_of(command)
    assert not isinstance(action, Rejection)
    cid = result[0].data.claim
    step = TRANSITIONS[(stage_of(before.claims.get(cid)), action)]
    assert [e.kind for e in result] == list(step.then)
    after = state_of(events + result)
    assert stage_of(after.claims[cid]) == step.to
    return events + result


def given_chat(*commands: ReturnCommand, now: datetime = LATER) -> list[Event]:
    """A chat in which every one of `commands` was accepted, in order."""
    events = opened()
    for command in commands:
        events = accept(events, command, now)
    return events


def kinds(result: list[Event] | Rejection) -> list[str]:
    assert isinstance(result, list), result
    return [e.kind for e in result]


def appended(result: list[Event] | Rejection) -> list[Event]:
    assert isinstance(result, list), result
    return result


def refused(result: list[Event] | Rejection, code: ErrorCode) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.code == code, result
    return result


def claim_of(events: list[Event], order: OrderCard = SKIRT) -> Claim:
    return state_of(events).claims[claim_id(order.id)]


def buyer_message(events: list[Event], text: str, at: datetime = LATER) -> list[Event]:
    state = state_of(events)
    draft = Draft(
        data=MessagePosted(), author=author_of(BUYER, state.buyer, state.seller), text=text
    )
    return events + stamp(state.chat, state.seq, at, [draft])


# ---- texts ---------------------------------------------------------------------------------


def test_request_text_names_size_brand_article_and_moscow_date() -> None:
    result = appended(when(opened(), request(SKIRT)))
    assert kinds(result) == ["return.requested"]
    event = result[0]
    assert event.text == SKIRT_T1
    assert event.text_buyer is None
    assert event.author.role == "buyer"
    assert event.author.id == BUYER.id
    assert event.data.claim == claim_id(SKIRT.id)
    assert event.data.order == SKIRT
    assert event.data.amount == Money(value=118600, currency="RUB")


def test_request_text_leaves_out_size_when_the_order_has_none() -> None:
    result = appended(when(opened(), request(FILM)))
    assert result[0].text == FILM_T1
    assert result[0].data.amount == Money(value=2753, currency="BYN")


def test_request_text_uses_the_moscow_date_not_the_utc_date() -> None:
    # 22:30 UTC on the 16th is 01:30 on the 17th in Moscow.
    late_evening = changed(FILM, received_at=datetime(2023, 8, 16, 22, 30, tzinfo=UTC))
    result = appended(when(opened(), request(late_evening)))
    assert result[0].text == FILM_T1


# ---- story 1: the shop approves, the goods go back through a pickup point ------------------


@pytest.mark.parametrize(
    ("defect", "inspected_text"),
    [
        (True, "Склад обнаружил недостатки, товар будет возвращён продавцу."),
        (False, "Недостатков не обнаружено, товар будет отправлен на продажу."),
    ],
    ids=["defect", "no-defect"],
)
def test_approval_to_pickup_point_refunds_on_arrival(defect: bool, inspected_text: str) -> None:
    events = given_chat(request())

    approved = appended(when(events, approve(mode="pvz")))
    assert kinds(approved) == ["return.approved"]
    assert approved[0].text == APPROVED_TEXT
    assert approved[0].author.role == "system"
    assert approved[0].author.name == "Wildberries"
    assert approved[0].data.mode == "pvz"
    assert approved[0].data.amount == SKIRT.price

    events = accept(events, approve(mode="pvz"))
    handed_in = appended(when(events, logistics("handed_in")))
    assert kinds(handed_in) == ["return.handed_in"]
    assert handed_in[0].text == "Товар сдан в пункт выдачи."

    events = accept(events, logistics("handed_in"))
    arrived = appended(when(events, logistics("arrived")))
    assert kinds(arrived) == ["return.arrived", "refund.issued"]
    assert arrived[0].text == "Товар поступил на склад."
    assert arrived[1].text == REFUND_TEXT
    assert arrived[1].data.amount == SKIRT.price

    events = accept(events, logistics("arrived"))
    assert claim_of(events).refunded
    inspected = appended(when(events, logistics("inspected", defect=defect)))
    assert kinds(inspected) == ["return.inspected"]
    assert inspected[0].text == inspected_text
    assert inspected[0].data.defect is defect

    events = accept(events, logistics("inspected", defect=defect))
    assert claim_state_label(claim_of(events)) == "inspected"
    # Inspected is final.
    for command in (logistics("inspected"), logistics("arrived"), approve(), reject(), dispute()):
        refused(when(events, command), ErrorCode.CONFLICT)


def test_approval_without_return_refunds_at_once_and_is_final() -> None:
    events = given_chat(request())
    approved = appended(when(events, approve(mode="no_return")))
    assert kinds(approved) == ["return.approved", "refund.issued"]
    assert [e.text for e in approved] == [APPROVED_TEXT, REFUND_TEXT]
    assert approved[1].data.amount == SKIRT.price

    events = accept(events, approve(mode="no_return"))
    claim = claim_of(events)
    assert (claim.state, claim.mode, claim.refunded) == ("approved", "no_return", True)
    for command in (logistics("handed_in"), approve(), reject(), dispute()):
        refused(when(events, command), ErrorCode.CONFLICT)


# ---- story 2: the shop refuses, the buyer disputes, a manager decides -----------------------


def test_refusal_then_dispute_hands_the_claim_to_managers() -> None:
    events = given_chat(request())
    rejected = appended(when(events, reject()))
    assert kinds(rejected) == ["return.rejected"]
    assert rejected[0].text == REJECTED_TEXT

    events = accept(events, reject())
    disputed = appended(when(events, dispute()))
    assert kinds(disputed) == ["return.disputed"]
    assert disputed[0].text == (
        "Покупатель оспорил решение продавца. "
        "Заявка передана на рассмотрение менеджеру Wildberries."
    )
    events = accept(events, dispute())
    assert state_of(events).managers_from == events[-1].seq
    refused(when(events, dispute()), ErrorCode.CONFLICT)


def test_manager_approval_to_pickup_point_refunds_after_arrival() -> None:
    events = given_chat(request(), reject(), dispute())
    resolved = appended(when(events, resolve("approve", "pvz")))
    assert kinds(resolved) == ["return.resolved"]
    assert resolved[0].text == "Менеджер Wildberries одобрил возврат."
    assert resolved[0].data.decision == "approve"
    assert resolved[0].data.mode == "pvz"

    events = accept(events, resolve("approve", "pvz"))
    refused(when(events, logistics("arrived")), ErrorCode.CONFLICT)
    events = accept(events, logistics("handed_in"))
    assert kinds(when(events, logistics("arrived"))) == ["return.arrived", "refund.issued"]
    events = accept(events, logistics("arrived"))
    events = accept(events, logistics("inspected"))
    refused(when(events, resolve("approve", "pvz")), ErrorCode.CONFLICT)


def test_manager_approval_without_return_refunds_at_once() -> None:
    events = given_chat(request(), reject(), dispute())
    resolved = appended(when(events, resolve("approve", "no_return")))
    assert kinds(resolved) == ["return.resolved", "refund.issued"]
    assert resolved[1].text == REFUND_TEXT
    events = accept(events, resolve("approve", "no_return"))
    for command in (logistics("handed_in"), resolve("approve", "no_return"), dispute()):
        refused(when(events, command), ErrorCode.CONFLICT)


def test_manager_rejection_keeps_goods_with_buyer_and_is_final() -> None:
    events = given_chat(request(), reject(), dispute())
    resolved = appended(when(events, resolve("reject")))
    assert kinds(resolved) == ["return.resolved"]
    assert resolved[0].text == "Менеджер Wildberries отклонил возврат. Товар остаётся у покупателя."
    assert resolved[0].data.decision == "reject"
    assert resolved[0].data.mode is None

    events = accept(events, resolve("reject"))
    assert claim_of(events).state == "resolved_rejected"
    for command in (resolve("approve", "pvz"), dispute(), logistics("handed_in"), approve()):
        refused(when(events, command), ErrorCode.CONFLICT)


def test_resolve_approve_without_mode_is_a_bad_frame() -> None:
    events = given_chat(request(), reject(), dispute())
    refused(when(events, resolve("approve")), ErrorCode.BAD_FRAME)


def test_a_marketplace_name_from_the_rules_reaches_every_text() -> None:
    events = given_chat(request(), reject())
    rules = Rules(marketplace="Маркет")
    result = appended(decide(state_of(events), dispute(), LATER, rules))
    assert result[0].text is not None
    assert result[0].text.endswith("менеджеру Маркет.")
    assert result[0].author.name == "Маркет"


# ---- story 3: the shop offers a return, the buyer takes it on ------------------------------


def test_shop_offer_lets_the_buyer_request_at_once() -> None:
    soon = RECEIVED + timedelta(days=2)
    events = opened()
    offered = appended(when(events, initiate(), soon))
    assert kinds(offered) == ["return.initiated"]
    offer = offered[0]
    assert offer.author.role == "system"
    assert offer.data.claim == claim_id(SKIRT.id)
    assert offer.data.order == SKIRT
    assert offer.text_for("seller") == "Ожидание подтверждения возврата покупателем."
    assert offer.text_for("manager") == "Ожидание подтверждения возврата покупателем."
    assert offer.text_for("buyer") == (
        "Продавец предлагает оформить возврат товара «Юбка короткая плиссе со складками». "
        "Чтобы продолжить, нажмите «Вернуть товар»."
    )

    events = accept(events, initiate(), soon)
    assert claim_of(events).state == "awaiting_buyer"
    # The shop's offer does not take the approval buttons with it.
    refused(when(events, approve(), soon), ErrorCode.CONFLICT)

    requested = appended(when(events, request(), soon))
    assert kinds(requested) == ["return.requested"]
    assert requested[0].text == SKIRT_T1
    events = accept(events, request(), soon)
    assert claim_of(events).state == "requested"
    assert claim_of(events).requested_by_buyer

    events = accept(events, approve(mode="no_return"), soon)
    assert claim_of(events).refunded
    refused(when(events, request(), soon), ErrorCode.RETURN_ALREADY_REQUESTED)


def test_shop_offers_a_return_once() -> None:
    refused(when(given_chat(initiate()), initiate()), ErrorCode.CONFLICT)
    refused(when(given_chat(request()), initiate()), ErrorCode.CONFLICT)


# ---- when a return may be asked for --------------------------------------------------------


def test_too_early_says_when_the_return_opens_and_where_to_go_until_then() -> None:
    result = when(opened(), request(), OPENS_AT - timedelta(seconds=1))
    rejection = refused(result, ErrorCode.RETURN_TOO_EARLY)
    assert rejection.details == {"opens_at": "2023-08-23T21:00:00Z"}
    assert rejection.message == (
        "Запросить возврат через чат можно с 24.08.2023. "
        "До этого возврат товара проходит через «Проверка товара»."
    )


def test_the_window_opens_at_local_midnight_of_the_fourteenth_day_after_purchase() -> None:
    assert kinds(when(opened(), request(), OPENS_AT)) == ["return.requested"]


def test_the_portals_example_is_accepted() -> None:
    # Bought earlier (01.08.2023), received 17.08.2023, asked 18.08.2023: the request names
    # the day of receipt, and the 14 days count from the purchase.
    bought_early = changed(SKIRT, purchased_at=datetime(2023, 8, 1, 7, 0, tzinfo=UTC))
    asked = datetime(2023, 8, 18, 9, 0, tzinfo=UTC)
    result = appended(when(opened(), request(bought_early), asked))
    assert kinds(result) == ["return.requested"]
    assert result[0].text == SKIRT_T1


# Bought at 23:30 Moscow time on 01.08.2023: day 14 (15.08) starts at 21:00 UTC on 14.08.
LATE_BUY = changed(SKIRT, purchased_at=datetime(2023, 8, 1, 20, 30, tzinfo=UTC))
DAY_14_MOSCOW = datetime(2023, 8, 14, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        # 23:59:59 on day 13 in Moscow, 20:59:59 UTC: still early.
        (DAY_14_MOSCOW - timedelta(seconds=1), False),
        # 00:00:00 on day 14 in Moscow, though it is still 14.08 in UTC.
        (DAY_14_MOSCOW, True),
        (DAY_14_MOSCOW + timedelta(minutes=1), True),
    ],
    ids=["day-13-23:59:59-msk", "day-14-00:00-msk", "day-14-00:01-msk"],
)
def test_around_midnight_in_moscow_on_day_13_and_14(now: datetime, opens: bool) -> None:
    result = when(opened(), request(LATE_BUY), now)
    if opens:
        assert kinds(result) == ["return.requested"]
    else:
        rejection = refused(result, ErrorCode.RETURN_TOO_EARLY)
        assert rejection.details == {"opens_at": "2023-08-14T21:00:00Z"}
        assert "15.08.2023" in rejection.message


def test_the_day_of_purchase_is_the_local_day_not_the_utc_day() -> None:
    # 22:30 UTC on 01.08 is 01:30 on 02.08 in Moscow: the return opens on 16.08 there.
    after_midnight = changed(SKIRT, purchased_at=datetime(2023, 8, 1, 22, 30, tzinfo=UTC))
    opens = datetime(2023, 8, 15, 21, 0, tzinfo=UTC)
    rejection = refused(
        when(opened(), request(after_midnight), opens - timedelta(seconds=1)),
        ErrorCode.RETURN_TOO_EARLY,
    )
    assert rejection.details == {"opens_at": "2023-08-15T21:00:00Z"}
    assert kinds(when(opened(), request(after_midnight), opens)) == ["return.requested"]


def test_opens_at_is_utc_even_when_purchased_at_is_not() -> None:
    order = changed(SKIRT, purchased_at=PURCHASED.astimezone(RULES.timezone))
    rejection = refused(when(opened(), request(order), RECEIVED), ErrorCode.RETURN_TOO_EARLY)
    assert rejection.details == {"opens_at": "2023-08-23T21:00:00Z"}


def test_the_marketplaces_time_zone_is_a_setting() -> None:
    # In Vladivostok (UTC+10) 10.08 11:00 Moscow is 18:00 on the same day: the window opens at
    # 00:00 there on 24.08, which is 14:00 UTC on 23.08, seven hours before Moscow's.
    far_east = Rules(timezone=ZoneInfo("Asia/Vladivostok"))
    opens = datetime(2023, 8, 23, 14, 0, tzinfo=UTC)
    early = decide(state_of(opened()), request(), opens - timedelta(seconds=1), far_east)
    rejection = refused(early, ErrorCode.RETURN_TOO_EARLY)
    assert rejection.details == {"opens_at": "2023-08-23T14:00:00Z"}
    assert kinds(decide(state_of(opened()), request(), opens, far_east)) == ["return.requested"]


def test_receipt_long_after_purchase_is_asked_for_at_once() -> None:
    # The 14 days count from the purchase, not from the receipt: goods that travelled for
    # three weeks may be returned the day they arrive.
    slow = changed(SKIRT, received_at=PURCHASED + timedelta(days=21))
    assert kinds(when(opened(), request(slow), PURCHASED + timedelta(days=21, hours=1))) == [
        "return.requested"
    ]


def test_non_returnable_goods_may_be_returned_at_once() -> None:
    result = appended(when(opened(), request(VITAMINS), RECEIVED + timedelta(minutes=1)))
    assert kinds(result) == ["return.requested"]
    assert result[0].text == (
        'Здравствуйте! Хочу вернуть товар "Витамин D3, бренд SK - Line, '
        'артикул 140158860, товар получен 17.08.2023"'
    )


def test_an_order_not_bought_out_cannot_be_returned_or_offered() -> None:
    refused(when(opened(), request(IN_TRANSIT)), ErrorCode.CONFLICT)
    refused(when(opened(), initiate(IN_TRANSIT)), ErrorCode.CONFLICT)


@pytest.mark.parametrize("order", [FOREIGN_BUYERS, FOREIGN_SHOPS])
def test_an_order_of_another_buyer_or_shop_is_not_found(order: OrderCard) -> None:
    refused(when(opened(), request(order)), ErrorCode.NOT_FOUND)
    refused(when(opened(), initiate(order)), ErrorCode.NOT_FOUND)


@pytest.mark.parametrize(
    "history",
    [
        [request()],
        [request(), approve(mode="pvz")],
        [request(), approve(mode="no_return")],
        [request(), reject()],
        [request(), reject(), dispute()],
        [request(), reject(), dispute(), resolve("reject")],
        [request(), reject(), dispute(), resolve("approve", "pvz"), logistics("handed_in")],
        [initiate(), request()],
    ],
    ids=lambda history: "-".join(type(c).__name__ for c in history),
)
def test_a_second_request_for_the_same_order_is_refused(history: list[ReturnCommand]) -> None:
    events = given_chat(*history)
    rejection = refused(when(events, request()), ErrorCode.RETURN_ALREADY_REQUESTED)
    assert claim_state_label(claim_of(events)) in rejection.message


def test_each_order_has_its_own_claim() -> None:
    events = given_chat(request(SKIRT), reject(SKIRT))
    assert kinds(when(events, request(FILM))) == ["return.requested"]


# ---- the shop's decision -------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [Money(value=118500, currency="RUB"), Money(value=118600, currency="BYN")],
    ids=["value", "currency"],
)
def test_only_the_full_price_may_be_refunded(amount: Money) -> None:
    events = given_chat(request())
    for mode in ("pvz", "no_return"):
        rejection = refused(
            when(events, approve(mode=mode, amount=amount)), ErrorCode.AMOUNT_MISMATCH
        )
        assert rejection.details == {"expected": {"value": 118600, "currency": "RUB"}}


def test_a_second_approval_is_a_conflict_and_refunds_nothing() -> None:
    events = given_chat(request(), approve(mode="no_return"))
    rejection = refused(when(events, approve(mode="no_return")), ErrorCode.CONFLICT)
    assert "approved" in rejection.message
    refused(when(events, approve(mode="pvz")), ErrorCode.CONFLICT)
    refused(when(events, reject()), ErrorCode.CONFLICT)


def test_two_operators_of_one_shop_see_one_claim() -> None:
    colleague = replace(OPERATOR, id="op-2", name="Тимофей")
    events = given_chat(request(), approve(mode="pvz"))
    refused(when(events, approve(mode="pvz", actor=colleague)), ErrorCode.CONFLICT)


def test_rejection_and_dispute_follow_the_states() -> None:
    refused(when(given_chat(request()), dispute()), ErrorCode.CONFLICT)
    refused(when(given_chat(request(), approve()), dispute()), ErrorCode.CONFLICT)
    refused(when(given_chat(request(), reject()), reject()), ErrorCode.CONFLICT)
    refused(when(given_chat(request(), reject()), approve()), ErrorCode.CONFLICT)
    refused(when(given_chat(initiate()), reject()), ErrorCode.CONFLICT)


def test_an_unknown_claim_is_not_found() -> None:
    events = given_chat(request())
    for command in (approve(FILM), reject(FILM), dispute(FILM), logistics("handed_in", order=FILM)):
        refused(when(events, command), ErrorCode.NOT_FOUND)


# ---- who may press which button ------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "command"),
    [
        (BUYER, approve()),
        (BUYER, reject()),
        (BUYER, initiate()),
        (BUYER, resolve("reject")),
        (BUYER, logistics("handed_in")),
        (OPERATOR, request()),
        (OPERATOR, dispute()),
        (OPERATOR, resolve("reject")),
        (MANAGER, request()),
        (MANAGER, approve()),
        (SYSTEM, request()),
        (SYSTEM, approve()),
        (OTHER_BUYER, approve()),
        (OTHER_OPERATOR, request()),
    ],
    ids=lambda value: value.role if isinstance(value, Actor) else type(value).__name__,
)
def test_a_role_pressing_another_roles_button_is_forbidden(
    actor: Actor, command: ReturnCommand
) -> None:
    events = given_chat(request(), reject(), dispute())
    refused(when(events, replace(command, actor=actor)), ErrorCode.FORBIDDEN)


def test_a_foreign_shops_operator_finds_nothing() -> None:
    events = given_chat(request())
    for command in (approve(), reject(), initiate(FILM)):
        refused(when(events, replace(command, actor=OTHER_OPERATOR)), ErrorCode.NOT_FOUND)


def test_a_foreign_buyer_finds_nothing() -> None:
    events = given_chat(request(), reject())
    refused(when(events, request(FILM, actor=OTHER_BUYER)), ErrorCode.NOT_FOUND)
    refused(when(events, dispute(actor=OTHER_BUYER)), ErrorCode.NOT_FOUND)


def test_a_manager_sees_the_chat_only_after_a_dispute() -> None:
    events = given_chat(request(), reject())
    refused(when(events, resolve("reject")), ErrorCode.NOT_FOUND)
    refused(when(events, resolve("approve", "pvz")), ErrorCode.NOT_FOUND)
    events = accept(events, dispute())
    assert kinds(when(events, resolve("reject"))) == ["return.resolved"]


def test_a_manager_resolves_only_the_disputed_claim() -> None:
    events = given_chat(request(FILM), request(), reject(), dispute())
    refused(when(events, resolve("approve", "pvz", order=FILM)), ErrorCode.CONFLICT)


# ---- logistics -----------------------------------------------------------------------------


def test_logistics_out_of_order_is_a_conflict() -> None:
    approved = given_chat(request(), approve(mode="pvz"))
    refused(when(approved, logistics("arrived")), ErrorCode.CONFLICT)
    refused(when(approved, logistics("inspected")), ErrorCode.CONFLICT)
    handed_in = accept(approved, logistics("handed_in"))
    refused(when(handed_in, logistics("handed_in")), ErrorCode.CONFLICT)
    refused(when(handed_in, logistics("inspected")), ErrorCode.CONFLICT)
    arrived = accept(handed_in, logistics("arrived"))
    rejection = refused(when(arrived, logistics("arrived")), ErrorCode.CONFLICT)
    assert "arrived" in rejection.message


@pytest.mark.parametrize(
    "history",
    [
        [request()],
        [request(), approve(mode="no_return")],
        [request(), reject()],
        [request(), reject(), dispute()],
        [request(), reject(), dispute(), resolve("reject")],
        [request(), reject(), dispute(), resolve("approve", "no_return")],
        [initiate()],
    ],
    ids=lambda history: "-".join(type(c).__name__ for c in history),
)
def test_goods_move_only_after_an_approval_to_a_pickup_point(
    history: list[ReturnCommand],
) -> None:
    refused(when(given_chat(*history), logistics("handed_in")), ErrorCode.CONFLICT)


# ---- reply deadlines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [approve(mode="pvz"), approve(mode="no_return"), reject()], ids=["pvz", "no", "rej"]
)
def test_a_shops_decision_answers_the_request(answer: ReturnCommand) -> None:
    events = given_chat(request())
    assert state_of(events).waiting_since == LATER
    assert state_of(accept(events, answer)).waiting_since is None


def test_a_shops_offer_answers_what_the_buyer_wrote() -> None:
    events = buyer_message(opened(), "Джинсы бракованные, верните деньги")
    assert state_of(events).waiting_since == LATER
    assert state_of(accept(events, initiate())).waiting_since is None


def test_a_managers_decision_does_not_answer_for_the_shop() -> None:
    events = given_chat(request(), reject(), dispute())
    events = buyer_message(events, "Почему отказали?", LATER + timedelta(hours=1))
    waiting = LATER + timedelta(hours=1)
    assert state_of(events).waiting_since == waiting
    for decision in (resolve("reject"), resolve("approve", "no_return")):
        assert state_of(accept(events, decision)).waiting_since == waiting


# ---- folding -------------------------------------------------------------------------------


def test_events_of_other_kinds_leave_the_state_as_it_is() -> None:
    events = given_chat(request())
    state = state_of(events)
    message = buyer_message(events, "Жду ответа")[-1]
    assert evolve_claims(state, message) is state


def test_a_claim_event_makes_a_new_claims_dict() -> None:
    events = given_chat(request())
    before = state_of(events)
    after = state_of(accept(events, reject()))
    assert before.claims[claim_id(SKIRT.id)].state == "requested"
    assert after.claims[claim_id(SKIRT.id)].state == "rejected"
    assert after.claims is not before.claims


def test_the_summary_label_is_where_the_goods_are_once_they_moved() -> None:
    events = given_chat(request(), approve(mode="pvz"))
    assert claim_state_label(claim_of(events)) == "approved"
    events = accept(events, logistics("handed_in"))
    assert claim_state_label(claim_of(events)) == "handed_in"


def walked_rows(*commands: ReturnCommand) -> set[tuple[Stage, Action]]:
    """The table rows a story takes; `accept` checks that each ends where its row says.
    Fifteen days pass before each step, so every deadline on the way has passed."""
    events, rows = opened(), set()
    for step, command in enumerate(commands):
        before = state_of(events)
        events = accept(events, command, LATER + timedelta(days=15 * step))
        action = action_of(command)
        assert not isinstance(action, Rejection)
        rows.add((stage_of(before.claims.get(events[-1].data.claim)), action))
    return rows


def test_the_portals_stories_walk_every_row_of_the_table() -> None:
    pvz_path = [logistics("handed_in"), logistics("arrived"), logistics("inspected")]
    walked = (
        walked_rows(request(), approve(mode="pvz"), *pvz_path)
        | walked_rows(request(), approve(mode="no_return"))
        | walked_rows(request(), reject(), dispute(), resolve("approve", "pvz"), *pvz_path)
        | walked_rows(request(), reject(), dispute(), resolve("approve", "no_return"))
        | walked_rows(request(), reject(), dispute(), resolve("reject"))
        | walked_rows(initiate(), request())
        | walked_rows(initiate(), withdraw())
        | walked_rows(initiate(), expire())
        | walked_rows(request(), escalate(), resolve("approve", "no_return"))
    )
    assert walked == set(TRANSITIONS)


def test_the_final_stages_are_those_of_the_protocol() -> None:
    stages = {stage for stage, _ in TRANSITIONS} | {step.to for step in TRANSITIONS.values()}
    final = stages - {stage for stage, _ in TRANSITIONS}
    assert final == {
        "approved no_return",
        "resolved_approved no_return",
        "resolved_rejected",
        "inspected",
        "closed",
    }


# ---- money: never twice, never before an approval ------------------------------------------

# Commands of every kind, pressed by anyone, about any order, with any amount: most of them
# are refused, which is the point. Alone they would rarely get past a request, so three in
# four commands are drawn from the actions the claim's stage allows (`TRANSITIONS` only
# steers the draw: the checks below look at the events, not at the table).
ORDERS = [SKIRT, FILM, VITAMINS, IN_TRANSIT, FOREIGN_BUYERS]
ACTORS = [BUYER, OTHER_BUYER, OPERATOR, OTHER_OPERATOR, MANAGER, SYSTEM]
AMOUNTS = [o.price for o in ORDERS] + [Money(value=118500, currency="RUB")]

orders = st.sampled_from(ORDERS)
claims = orders.map(lambda order: claim_id(order.id)) | st.just("r-unknown")
actors = st.sampled_from(ACTORS)
MODES: list[ReturnMode] = ["pvz", "no_return"]
STEPS: list[GoodsState] = ["handed_in", "arrived", "inspected"]
modes = st.sampled_from(MODES)
steps = st.sampled_from(STEPS)

any_command: st.SearchStrategy[ReturnCommand] = st.one_of(
    st.builds(RequestReturn, actor=actors, order=orders),
    st.builds(InitiateReturn, actor=actors, order=orders),
    st.builds(
        ApproveReturn, actor=actors, claim=claims, mode=modes, amount=st.sampled_from(AMOUNTS)
    ),
    st.builds(RejectReturn, actor=actors, claim=claims),
    st.builds(DisputeReturn, actor=actors, claim=claims),
    st.builds(
        ResolveReturn,
        actor=actors,
        claim=claims,
        decision=st.sampled_from(["approve", "reject"]),
        mode=st.one_of(st.none(), modes),
    ),
    st.builds(ReportLogistics, actor=actors, claim=claims, step=steps, defect=st.booleans()),
    st.builds(WithdrawReturn, actor=actors, claim=claims),
    st.builds(EscalateClaim, actor=actors, claim=claims),
    st.builds(ExpireOffer, actor=actors, claim=claims),
)


def pressed_by(actor: Actor) -> st.SearchStrategy[Actor]:
    """Mostly `actor`, sometimes anyone."""
    return st.sampled_from([actor] * len(ACTORS) * 4 + ACTORS)


@st.composite
def likely_command(draw: st.DrawFn, state: ChatState) -> ReturnCommand:
    order = draw(orders)
    stage = stage_of(state.claims.get(claim_id(order.id)))
    allowed = sorted(action for at, action in TRANSITIONS if at == stage)
    if not allowed:
        return draw(any_command)
    action = draw(st.sampled_from(allowed))
    cid = claim_id(order.id)
    if action == "request":
        return RequestReturn(actor=draw(pressed_by(BUYER)), order=order)
    if action == "initiate":
        return InitiateReturn(actor=draw(pressed_by(OPERATOR)), order=order)
    if action in ("approve pvz", "approve no_return"):
        return ApproveReturn(
            actor=draw(pressed_by(OPERATOR)),
            claim=cid,
            mode="pvz" if action == "approve pvz" else "no_return",
            amount=draw(st.sampled_from([order.price] * 3 + AMOUNTS)),
        )
    if action == "reject":
        return RejectReturn(actor=draw(pressed_by(OPERATOR)), claim=cid)
    if action == "dispute":
        return DisputeReturn(actor=draw(pressed_by(BUYER)), claim=cid)
    if action == "withdraw":
        return WithdrawReturn(actor=draw(pressed_by(OPERATOR)), claim=cid)
    if action == "escalate":
        return EscalateClaim(actor=draw(pressed_by(SYSTEM)), claim=cid)
    if action == "expire":
        return ExpireOffer(actor=draw(pressed_by(SYSTEM)), claim=cid)
    if action.startswith("resolve"):
        return ResolveReturn(
            actor=draw(pressed_by(MANAGER)),
            claim=cid,
            decision="reject" if action == "resolve reject" else "approve",
            mode=draw(st.one_of(st.none(), modes)) if action == "resolve reject" else draw(modes),
        )
    step = next(step for step in STEPS if step == action)
    return ReportLogistics(
        actor=draw(pressed_by(SYSTEM)), claim=cid, step=step, defect=draw(st.booleans())
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_commands_never_refund_twice_or_before_an_approval(data: st.DataObject) -> None:
    state = state_of(opened())
    now = data.draw(st.sampled_from([RECEIVED, OPENS_AT]))
    approved: set[str] = set()
    refunded: set[str] = set()
    ended: set[str] = set()
    for _ in range(data.draw(st.integers(10, 50))):
        likely = data.draw(st.sampled_from([True, True, True, False]))
        command = data.draw(likely_command(state) if likely else any_command)
        # Mostly half a day a step: a script that starts on the day of receipt crosses the
        # window; now and then four days, so that deadlines pass too.
        now += timedelta(hours=data.draw(st.sampled_from([12, 12, 12, 96])))
        result = decide(state, command, now, RULES)
        if isinstance(result, Rejection):
            continue
        before = state
        for event in result:
            cid = event.data.claim
            assert cid not in ended, f"{event.kind} after the offer of {cid} ended"
            waited = before.claims.get(cid)
            if event.kind == "return.escalated":
                assert waited is not None and waited.state == "requested"
                assert waited.requested_at is not None
                assert now >= waited.requested_at + RULES.claim_deadline, "escalated early"
            if event.kind in ("return.expired", "return.withdrawn"):
                assert waited is not None and waited.state == "awaiting_buyer"
                ended.add(cid)
            if event.kind == "return.expired":
                assert waited is not None and waited.offered_at is not None
                assert now >= waited.offered_at + RULES.offer_deadline, "expired early"
            state = evolve(state, event)
            if event.kind == "return.approved" or (
                event.kind == "return.resolved" and event.data.decision == "approve"
            ):
                approved.add(cid)
            if event.kind == "refund.issued":
                assert cid in approved, "a refund before an approval"
                assert cid not in refunded, "a second refund for one claim"
                assert event.data.amount == state.claims[cid].order.price
                refunded.add(cid)
        action = action_of(command)
        assert not isinstance(action, Rejection)
        cid = result[0].data.claim
        assert (
            stage_of(state.claims[cid])
            == TRANSITIONS[(stage_of(before.claims.get(cid)), action)].to
        )
    for cid, claim in state.claims.items():
        assert claim.refunded == (cid in refunded)
