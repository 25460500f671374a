"""The buttons on a claim outside the chat: the actions an HTTP client names
(`POST /api/v1/claims/{claim}/actions`) and which of them a user may press now.

Each action is one return command (`command_for`). Whether it is available is the domain's
own answer to that command, not a list kept here: `available` asks `decide_return` (the
role policy, the claim's relation to the user, the transition table and its guards) with
what a client would send by default (the claim's own amount, no text), and keeps the
actions it would carry out. Nothing is written; the events it drafts are dropped. So the
listing cannot drift from the rules: an action is shown exactly when pressing it would pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from chatd.domain.actors import Actor
from chatd.domain.commands import ApproveReturn, RejectReturn, ResolveReturn, WithdrawReturn
from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.model import ChatState, Claim
from chatd.domain.returns import decide_return
from chatd.domain.rules import Rules
from protocol.events import Money

ClaimAction = Literal[
    "approve_pvz",
    "approve_no_return",
    "reject",
    "withdraw",
    "resolve_approve_pvz",
    "resolve_approve_no_return",
    "resolve_reject",
]
CLAIM_ACTIONS: tuple[ClaimAction, ...] = get_args(ClaimAction)


ClaimCommand = ApproveReturn | RejectReturn | ResolveReturn | WithdrawReturn


def command_for(
    actor: Actor,
    claim: str,
    action: ClaimAction,
    amount: Money | None = None,
    reason: str | None = None,
    comment: str | None = None,
) -> ClaimCommand | Rejection:
    """The command an action stands for, as the matching frame would build it; an approval
    without `amount` is malformed, as a `return.approve` frame without it is."""
    match action:
        case "approve_pvz" | "approve_no_return" if amount is None:
            return bad_frame("`amount` is required to approve")
        case "approve_pvz":
            assert amount is not None
            return ApproveReturn(actor=actor, claim=claim, mode="pvz", amount=amount)
        case "approve_no_return":
            assert amount is not None
            return ApproveReturn(actor=actor, claim=claim, mode="no_return", amount=amount)
        case "reject":
            return RejectReturn(actor=actor, claim=claim, reason=reason)
        case "withdraw":
            return WithdrawReturn(actor=actor, claim=claim)
        case "resolve_approve_pvz":
            return ResolveReturn(
                actor=actor, claim=claim, decision="approve", mode="pvz", comment=comment
            )
        case "resolve_approve_no_return":
            return ResolveReturn(
                actor=actor, claim=claim, decision="approve", mode="no_return", comment=comment
            )
        case "resolve_reject":
            return ResolveReturn(actor=actor, claim=claim, decision="reject", comment=comment)


def available(
    actor: Actor, state: ChatState, claim: Claim, now: datetime, rules: Rules
) -> list[ClaimAction]:
    """The actions `actor` may take on `claim` now, in the order of `CLAIM_ACTIONS`."""
    found: list[ClaimAction] = []
    for action in CLAIM_ACTIONS:
        command = command_for(actor, claim.id, action, claim.amount)
        if isinstance(command, Rejection):
            continue
        if not isinstance(decide_return(state, command, now, rules), Rejection):
            found.append(action)
    return found
