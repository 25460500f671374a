"""The actions a claim offers each user outside the chat (`chatd.domain.claim_actions`), and
what a claim keeps for its listing: no event loop, chats built from events as in
tests/domain/test_returns.py."""

from __future__ import annotations

import pytest

from chatd.domain.actors import Actor
from chatd.domain.claim_actions import ClaimAction, available, command_for
from chatd.domain.commands import RejectReturn, RequestReturn, ReturnCommand
from chatd.domain.errors import Rejection
from chatd.domain.ids import claim_id
from protocol.codes import ErrorCode
from protocol.events import Attachment
from tests.domain.test_returns import (
    BUYER,
    LATER,
    MANAGER,
    OPERATOR,
    OTHER_OPERATOR,
    RULES,
    SKIRT,
    SYSTEM,
    approve,
    claim_of,
    dispute,
    given_chat,
    initiate,
    reject,
    request,
    state_of,
    withdraw,
)

SHOP_DECIDES: list[ClaimAction] = ["approve_pvz", "approve_no_return", "reject"]
MANAGER_DECIDES: list[ClaimAction] = [
    "resolve_approve_pvz",
    "resolve_approve_no_return",
    "resolve_reject",
]


def actions(history: tuple[ReturnCommand, ...], actor: Actor) -> list[ClaimAction]:
    events = given_chat(*history)
    return available(actor, state_of(events), claim_of(events), LATER, RULES)


@pytest.mark.parametrize(
    ("history", "shop", "manager"),
    [
        ((request(),), SHOP_DECIDES, []),
        ((initiate(),), ["withdraw"], []),
        ((initiate(), request()), SHOP_DECIDES, []),
        ((request(), reject()), [], []),
        ((request(), reject(), dispute()), [], MANAGER_DECIDES),
        ((request(), approve()), [], []),
        ((initiate(), withdraw()), [], []),
    ],
)
def test_each_user_sees_the_actions_its_role_may_take_in_the_claims_stage(
    history: tuple[ReturnCommand, ...], shop: list[ClaimAction], manager: list[ClaimAction]
) -> None:
    assert actions(history, OPERATOR) == shop
    assert actions(history, MANAGER) == manager
    # Neither the buyer, another shop nor the marketplace has a button here.
    for actor in (BUYER, OTHER_OPERATOR, SYSTEM):
        assert actions(history, actor) == []


def test_an_approval_without_an_amount_is_malformed() -> None:
    for action in ("approve_pvz", "approve_no_return"):
        refused = command_for(OPERATOR, claim_id(SKIRT.id), action)
        assert isinstance(refused, Rejection) and refused.code == ErrorCode.BAD_FRAME


def test_a_claim_keeps_its_evidence_its_reason_and_when_it_last_moved() -> None:
    photo = Attachment(id="f" + "0" * 24, name="брак.jpg", mime="image/jpeg", size=10)
    events = given_chat(
        RequestReturn(actor=BUYER, order=SKIRT, comment=" Брак ", attachments=(photo,)),
        RejectReturn(actor=OPERATOR, claim=claim_id(SKIRT.id), reason="Следы носки"),
    )
    claim = claim_of(events)
    assert claim.comment == "Брак" and claim.attachments == (photo,)
    assert claim.reason == "Следы носки"
    assert claim.updated_at == events[-1].at and claim.requested_at == events[-2].at
