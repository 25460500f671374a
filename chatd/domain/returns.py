"""Returns through the chat (docs/protocol.md, version 1.1): one table of claim transitions,
and the two pure functions that read it.

A claim is one order's return. Where it stands is its *stage*: the claim state, or the goods
state once the goods have moved, with the return mode for approved claims (an approval to a
pickup point waits for the goods, an approval without return is over at once). Every rule
about what may happen next is a row of `TRANSITIONS`: from a stage, an action is allowed,
appends these event kinds, after these guards pass, and leaves the claim at that stage.
A stage with no row for an action refuses it; a stage with no row at all is final.

Who may press which button, and which chat, claim and order a command may reach, are
checked before the table, in that order, so that an outsider learns nothing from the
refusal: a role that never may is `forbidden`, a chat or claim that is not the actor's is
`not_found` (both from the role policy, `chatd.domain.policy`), and only then does the
claim's stage speak.

Two of the actions are the server's own (`escalate`, `expire`): when a claim's deadline
passes, the scheduler of deadlines issues them. They are rows like any other, so they apply
only from the stage they expect (a request still undecided, an offer still unanswered) and
only once due: a second node firing the same deadline finds the claim moved on and is
refused, and nothing is appended twice.

`decide_return` reads the table to turn a command into events; `evolve_claims` folds those
events back into the chat's claims. Both are pure: the time and the settings come in as
arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from msgspec import UNSET, Struct

from chatd.domain import policy
from chatd.domain.actors import Actor, author_of, system_author
from chatd.domain.commands import (
    ApproveReturn,
    DisputeReturn,
    EscalateClaim,
    ExpireOffer,
    InitiateReturn,
    RejectReturn,
    ReportLogistics,
    RequestReturn,
    ResolveReturn,
    ReturnCommand,
    WithdrawReturn,
)
from chatd.domain.deadlines import claim_due, return_opens_at
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame, conflict, not_found
from chatd.domain.ids import claim_id
from chatd.domain.model import ChatState, Claim
from chatd.domain.moderation import find_contacts
from chatd.domain.rules import Rules
from protocol.codes import ErrorCode
from protocol.events import (
    Attachment,
    Decision,
    Event,
    Kind,
    Money,
    OrderCard,
    RefundIssued,
    ReturnApproved,
    ReturnArrived,
    ReturnDisputed,
    ReturnEscalated,
    ReturnExpired,
    ReturnHandedIn,
    ReturnInitiated,
    ReturnInspected,
    ReturnMode,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
    ReturnWithdrawn,
)
from protocol.texts import (
    APPROVED,
    ARRIVED,
    AWAITING_BUYER,
    CONTACTS_FORBIDDEN,
    EXPIRED,
    HANDED_IN,
    REFUND_ISSUED,
    REJECTED,
    WITHDRAWN,
    as_utc,
    disputed_text,
    escalated_text,
    inspected_text,
    offer_text,
    resolved_approved_text,
    resolved_rejected_text,
    return_request_text,
    too_early_text,
)

Stage = Literal[
    "none",  # no claim for the order yet
    "awaiting_buyer",
    "requested",
    "approved pvz",
    "approved no_return",
    "rejected",
    "disputed",
    "resolved_approved pvz",
    "resolved_approved no_return",
    "resolved_rejected",
    "handed_in",
    "arrived",
    "inspected",
    # The shop's offer ended unanswered: withdrawn, or expired.
    "closed",
]

# What a command asks for. Approvals name their mode, since the mode decides what follows.
Action = Literal[
    "request",
    "initiate",
    "approve pvz",
    "approve no_return",
    "reject",
    "dispute",
    "resolve approve pvz",
    "resolve approve no_return",
    "resolve reject",
    "handed_in",
    "arrived",
    "inspected",
    "withdraw",
    # The server's own, when a deadline passes.
    "escalate",
    "expire",
]

_MODE_OF: dict[Action, ReturnMode] = {
    "approve pvz": "pvz",
    "approve no_return": "no_return",
    "resolve approve pvz": "pvz",
    "resolve approve no_return": "no_return",
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One return command read against the chat: what the guards and the event builders need."""

    actor: Actor
    action: Action
    chat: ChatState
    claim: Claim | None
    claim_id: str
    order: OrderCard
    # The claim's amount: the order's full price, as the request (or the offer) recorded it.
    amount: Money
    now: datetime
    rules: Rules
    # The amount the shop confirmed with its approval.
    offered: Money | None = None
    defect: bool = False
    # What the actor wrote, as sent (the events keep it trimmed): the buyer's comment on a
    # request, the manager's on a decision, the shop's reason for a refusal.
    comment: str | None = None
    reason: str | None = None
    attachments: tuple[Attachment, ...] = ()


Guard = Callable[[Turn], Rejection | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One allowed transition: the event kinds it appends, in order, and where it leaves the
    claim. Guards run in order; the first refusal wins."""

    then: tuple[str, ...]
    to: Stage
    guards: tuple[Guard, ...] = ()


# ---- guards: the rules that depend on more than the stage ---------------------------------


def _bought_out(turn: Turn) -> Rejection | None:
    if turn.order.received_at is not None:
        return None
    return conflict(f"order {turn.order.id} is not bought out yet: it has not been received")


def _return_window_open(turn: Turn) -> Rejection | None:
    """From the calendar day `purchased_at` + 14 days on, in the marketplace's time zone
    (`chatd.domain.deadlines.return_opens_at`); at once for non-returnable goods."""
    if turn.order.received_at is None:
        return _bought_out(turn)
    if turn.order.non_returnable:
        return None
    rules = turn.rules
    opens_at = return_opens_at(turn.order, rules)
    if as_utc(turn.now) >= opens_at:
        return None
    return Rejection(
        ErrorCode.RETURN_TOO_EARLY,
        too_early_text(opens_at.astimezone(rules.timezone).date()),
        {"opens_at": rfc3339(opens_at)},
    )


def _no_contacts(turn: Turn) -> Rejection | None:
    """The contacts filter on what a participant writes into a claim: the buyer's comment
    and the names of its files, the shop's reason. `details.spans` mark the text as sent
    and `details.field` names it; `details.attachments` lists files whose names hold one."""
    field = "reason" if turn.action == "reject" else "comment"
    text = turn.reason if field == "reason" else turn.comment
    spans = find_contacts(text) if text else []
    files = [file.id for file in turn.attachments if find_contacts(file.name)]
    if not spans and not files:
        return None
    details: dict[str, object] = {
        "field": field,
        "spans": [[found.start, found.end] for found in spans],
    }
    if files:
        details["attachments"] = files
    return Rejection(ErrorCode.CONTACTS_FORBIDDEN, CONTACTS_FORBIDDEN, details)


def _due(turn: Turn) -> Rejection | None:
    """A deadline's action only once the deadline has passed: a node whose clock runs
    ahead, or a timer fired early, changes nothing. `details.due` says when to come back."""
    due = claim_due(turn.claim, turn.rules) if turn.claim is not None else None
    if due is None:
        return conflict(f"claim {turn.claim_id} has no deadline to {turn.action} on")
    if as_utc(turn.now) >= due:
        return None
    return Rejection(
        ErrorCode.CONFLICT,
        f"claim {turn.claim_id} is not due to {turn.action} before {rfc3339(due)}",
        {"due": rfc3339(due)},
    )


def _full_amount(turn: Turn) -> Rejection | None:
    """Only a full refund: the value and the currency of the order's price."""
    expected = turn.amount
    if turn.offered == expected:
        return None
    return Rejection(
        ErrorCode.AMOUNT_MISMATCH,
        "a return through the chat refunds the order's full price",
        {"expected": {"value": expected.value, "currency": expected.currency}},
    )


def _not_refunded(turn: Turn) -> Rejection | None:
    # The stages already make a second refund unreachable; this keeps the money path safe
    # even if a future row gets that wrong.
    if turn.claim is None or not turn.claim.refunded:
        return None
    return conflict(f"claim {turn.claim_id} is already refunded")


def rfc3339(moment: datetime) -> str:
    """A UTC time as the wire writes it: `2023-08-31T12:00:00Z`."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


# ---- the table ----------------------------------------------------------------------------

TRANSITIONS: dict[tuple[Stage, Action], Step] = {
    # The buyer asks for a return; after the shop's offer the 14-day window does not apply.
    ("none", "request"): Step(
        (Kind.RETURN_REQUESTED,), "requested", (_bought_out, _no_contacts, _return_window_open)
    ),
    ("awaiting_buyer", "request"): Step((Kind.RETURN_REQUESTED,), "requested", (_no_contacts,)),
    # The shop offers a return; the buyer's request takes it on. Unanswered, the offer ends:
    # the shop withdraws it, or its deadline passes. Either way the order's one claim is
    # over, and the buyer cannot ask for that order through the chat any more.
    ("none", "initiate"): Step((Kind.RETURN_INITIATED,), "awaiting_buyer", (_bought_out,)),
    ("awaiting_buyer", "withdraw"): Step((Kind.RETURN_WITHDRAWN,), "closed"),
    ("awaiting_buyer", "expire"): Step((Kind.RETURN_EXPIRED,), "closed", (_due,)),
    # The shop decides.
    ("requested", "approve pvz"): Step((Kind.RETURN_APPROVED,), "approved pvz", (_full_amount,)),
    ("requested", "approve no_return"): Step(
        (Kind.RETURN_APPROVED, Kind.REFUND_ISSUED),
        "approved no_return",
        (_full_amount, _not_refunded),
    ),
    ("requested", "reject"): Step((Kind.RETURN_REJECTED,), "rejected", (_no_contacts,)),
    # The shop let the deadline for its decision pass: the managers decide, as on a dispute.
    ("requested", "escalate"): Step((Kind.RETURN_ESCALATED,), "disputed", (_due,)),
    # The buyer disputes a refusal once; a manager decides for good.
    ("rejected", "dispute"): Step((Kind.RETURN_DISPUTED,), "disputed"),
    ("disputed", "resolve approve pvz"): Step((Kind.RETURN_RESOLVED,), "resolved_approved pvz"),
    ("disputed", "resolve approve no_return"): Step(
        (Kind.RETURN_RESOLVED, Kind.REFUND_ISSUED), "resolved_approved no_return", (_not_refunded,)
    ),
    ("disputed", "resolve reject"): Step((Kind.RETURN_RESOLVED,), "resolved_rejected"),
    # The goods travel back; the money follows their arrival at the warehouse.
    ("approved pvz", "handed_in"): Step((Kind.RETURN_HANDED_IN,), "handed_in"),
    ("resolved_approved pvz", "handed_in"): Step((Kind.RETURN_HANDED_IN,), "handed_in"),
    ("handed_in", "arrived"): Step(
        (Kind.RETURN_ARRIVED, Kind.REFUND_ISSUED), "arrived", (_not_refunded,)
    ),
    ("arrived", "inspected"): Step((Kind.RETURN_INSPECTED,), "inspected"),
}


def role_refusal(command_type: type[ReturnCommand], actor: Actor) -> Rejection | None:
    """`forbidden` when the actor's role never presses this button (`chatd.domain.policy`).

    It depends on the role alone, so it is checked before anything is looked up: the answer
    must not differ between a claim that exists elsewhere and one that does not."""
    return policy.check(actor, policy.COMMAND_ACTIONS[command_type])


def stage_of(claim: Claim | None) -> Stage:
    """The claim's row key in `TRANSITIONS`."""
    if claim is None:
        return "none"
    if claim.goods is not None:
        return claim.goods
    if claim.state == "approved":
        return "approved pvz" if claim.mode == "pvz" else "approved no_return"
    if claim.state == "resolved_approved":
        return "resolved_approved pvz" if claim.mode == "pvz" else "resolved_approved no_return"
    return claim.state


def claim_state_label(claim: Claim) -> str:
    """What a chat summary shows: where the goods are once they moved, else the claim state."""
    return claim.goods if claim.goods is not None else claim.state


def action_of(command: ReturnCommand) -> Action | Rejection:
    """The table's column for `command`; a resolve-approve without a mode is malformed."""
    match command:
        case RequestReturn():
            return "request"
        case InitiateReturn():
            return "initiate"
        case ApproveReturn(mode="pvz"):
            return "approve pvz"
        case ApproveReturn():
            return "approve no_return"
        case RejectReturn():
            return "reject"
        case DisputeReturn():
            return "dispute"
        case ResolveReturn(decision="reject"):
            return "resolve reject"
        case ResolveReturn(mode="pvz"):
            return "resolve approve pvz"
        case ResolveReturn(mode="no_return"):
            return "resolve approve no_return"
        case ResolveReturn():
            return bad_frame("return.resolve with decision approve needs mode")
        case ReportLogistics(step=step):
            return step
        case WithdrawReturn():
            return "withdraw"
        case EscalateClaim():
            return "escalate"
        case ExpireOffer():
            return "expire"


# ---- deciding -----------------------------------------------------------------------------


def decide_return(
    state: ChatState, command: ReturnCommand, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    """The events a return command appends to the chat, or why it is refused."""
    action = action_of(command)
    if isinstance(action, Rejection):
        return action
    refusal = overlong(command, rules)
    if refusal is not None:
        return refusal
    refusal = _check_actor(state, command.actor, type(command))
    if refusal is not None:
        return refusal
    turn = _read(state, command, action, now, rules)
    if isinstance(turn, Rejection):
        return turn
    step = TRANSITIONS.get((stage_of(turn.claim), action))
    if step is None:
        return _not_allowed(turn)
    for guard in step.guards:
        refusal = guard(turn)
        if refusal is not None:
            return refusal
    drafts = [_DRAFTS[kind](turn) for kind in step.then]
    return stamp(state.chat, state.seq, now, drafts)


def overlong(command: ReturnCommand, rules: Rules) -> Rejection | None:
    """`bad_frame` for a comment or reason past its length, counted after trimming as a
    message's text is. It depends on the frame alone, so it comes first, like any other
    malformed frame (protocol/DECISIONS.md, "The order of checks"): the service asks it
    before it looks anything up, and `decide_return` again."""
    match command:
        case RequestReturn(comment=text):
            return text_refusal("comment", text, rules.max_comment)
        case ResolveReturn(comment=text):
            return text_refusal("comment", text, rules.max_reason)
        case RejectReturn(reason=text):
            return text_refusal("reason", text, rules.max_reason)
    return None


def text_refusal(field: str, text: str | None, limit: int) -> Rejection | None:
    """`bad_frame` when `text` is longer than `limit` characters after trimming."""
    length = len(text.strip()) if text is not None else 0
    if length <= limit:
        return None
    return bad_frame(f"{field} is {length} characters long; at most {limit}")


def _kept(text: str | None) -> str | None:
    """A comment or reason as the event keeps it: trimmed; blanks alone are none at all."""
    if text is None:
        return None
    return text.strip() or None


def _check_actor(
    state: ChatState, actor: Actor, command_type: type[ReturnCommand]
) -> Rejection | None:
    # The role first; then a foreign buyer or shop, or a manager before any dispute, must
    # not learn the chat or the claim exists: the answer is the one for an id that names
    # nothing (the chat for a command whose frame names a chat, else the claim).
    return policy.check(actor, policy.COMMAND_ACTIONS[command_type], state)


def _read(
    state: ChatState, command: ReturnCommand, action: Action, now: datetime, rules: Rules
) -> Turn | Rejection:
    """Find the order and claim the command is about, as far as this chat may show them."""
    if isinstance(command, RequestReturn | InitiateReturn):
        order = command.order
        if order.buyer.id != state.buyer.id or order.seller.id != state.seller.id:
            return not_found("order")
        cid = claim_id(order.id)
        claim = state.claims.get(cid)
        amount = order.price
    else:
        found = state.claims.get(command.claim)
        if found is None:
            return not_found("claim")
        claim, cid, order, amount = found, found.id, found.order, found.amount
    return Turn(
        actor=command.actor,
        action=action,
        chat=state,
        claim=claim,
        claim_id=cid,
        order=order,
        amount=amount,
        now=now,
        rules=rules,
        offered=command.amount if isinstance(command, ApproveReturn) else None,
        defect=command.defect if isinstance(command, ReportLogistics) else False,
        comment=command.comment if isinstance(command, RequestReturn | ResolveReturn) else None,
        reason=command.reason if isinstance(command, RejectReturn) else None,
        attachments=command.attachments if isinstance(command, RequestReturn) else (),
    )


def _not_allowed(turn: Turn) -> Rejection:
    claim = turn.claim
    if claim is None:
        return conflict(f"order {turn.order.id} has no claim: {turn.action} is not allowed")
    where = claim_state_label(claim)
    if claim.mode is not None:
        where += f", mode {claim.mode}"
    if claim.refunded:
        where += ", refunded"
    if turn.action == "request" and claim.state == "closed":
        # The shop's offer ended unanswered: the buyer never asked, so this is no second
        # request, but the order's one claim through the chat is over.
        return conflict(
            f"the offer to return order {turn.order.id} has ended (claim {claim.id} is "
            "closed): it cannot be returned through the chat"
        )
    # A buyer asks through the chat once per order, whatever became of the first request.
    if turn.action == "request":
        return Rejection(
            ErrorCode.RETURN_ALREADY_REQUESTED,
            f"a return of order {turn.order.id} was already requested through the chat "
            f"(claim {claim.id} is {where})",
        )
    return conflict(f"claim {claim.id} is {where}: {turn.action} is not allowed in this state")


# ---- the events each kind makes -----------------------------------------------------------


def _system(turn: Turn, data: Struct, text: str, text_buyer: str | None = None) -> Draft:
    return Draft(
        data=data,
        author=system_author(turn.rules.marketplace),
        text=text,
        text_buyer=text_buyer,
    )


def _requested(turn: Turn) -> Draft:
    comment = _kept(turn.comment)
    data = ReturnRequested(
        claim=turn.claim_id,
        order=turn.order,
        amount=turn.amount,
        attachments=list(turn.attachments),
        comment=UNSET if comment is None else comment,
    )
    return Draft(
        data=data,
        author=author_of(turn.actor, turn.chat.buyer, turn.chat.seller),
        text=return_request_text(turn.order, turn.rules.timezone),
    )


def _initiated(turn: Turn) -> Draft:
    data = ReturnInitiated(claim=turn.claim_id, order=turn.order)
    return _system(turn, data, AWAITING_BUYER, text_buyer=offer_text(turn.order))


def _approved(turn: Turn) -> Draft:
    data = ReturnApproved(claim=turn.claim_id, mode=_MODE_OF[turn.action], amount=turn.amount)
    return _system(turn, data, APPROVED)


def _rejected(turn: Turn) -> Draft:
    return _system(turn, ReturnRejected(claim=turn.claim_id, reason=_kept(turn.reason)), REJECTED)


def _disputed(turn: Turn) -> Draft:
    return _system(turn, ReturnDisputed(claim=turn.claim_id), disputed_text(turn.rules.marketplace))


def _resolved(turn: Turn) -> Draft:
    mode = _MODE_OF.get(turn.action)
    decision: Decision = "reject" if mode is None else "approve"
    data = ReturnResolved(
        claim=turn.claim_id, decision=decision, mode=mode, comment=_kept(turn.comment)
    )
    marketplace = turn.rules.marketplace
    text = (
        resolved_rejected_text(marketplace) if mode is None else resolved_approved_text(marketplace)
    )
    return _system(turn, data, text)


def _handed_in(turn: Turn) -> Draft:
    return _system(turn, ReturnHandedIn(claim=turn.claim_id), HANDED_IN)


def _arrived(turn: Turn) -> Draft:
    return _system(turn, ReturnArrived(claim=turn.claim_id), ARRIVED)


def _refund(turn: Turn) -> Draft:
    return _system(turn, RefundIssued(claim=turn.claim_id, amount=turn.amount), REFUND_ISSUED)


def _inspected(turn: Turn) -> Draft:
    data = ReturnInspected(claim=turn.claim_id, defect=turn.defect)
    return _system(turn, data, inspected_text(turn.defect))


def _withdrawn(turn: Turn) -> Draft:
    return _system(turn, ReturnWithdrawn(claim=turn.claim_id), WITHDRAWN)


def _expired(turn: Turn) -> Draft:
    return _system(turn, ReturnExpired(claim=turn.claim_id), EXPIRED)


def _escalated(turn: Turn) -> Draft:
    data = ReturnEscalated(claim=turn.claim_id)
    return _system(turn, data, escalated_text(turn.rules.marketplace))


_DRAFTS: dict[str, Callable[[Turn], Draft]] = {
    Kind.RETURN_REQUESTED: _requested,
    Kind.RETURN_INITIATED: _initiated,
    Kind.RETURN_APPROVED: _approved,
    Kind.RETURN_REJECTED: _rejected,
    Kind.RETURN_DISPUTED: _disputed,
    Kind.RETURN_RESOLVED: _resolved,
    Kind.RETURN_HANDED_IN: _handed_in,
    Kind.RETURN_ARRIVED: _arrived,
    Kind.REFUND_ISSUED: _refund,
    Kind.RETURN_INSPECTED: _inspected,
    Kind.RETURN_WITHDRAWN: _withdrawn,
    Kind.RETURN_EXPIRED: _expired,
    Kind.RETURN_ESCALATED: _escalated,
}


# ---- folding events into claims -----------------------------------------------------------

# How one event changes its claim (None before the claim exists), given the event's data and
# time. The events are facts the table already allowed, so nothing is checked here.
Effect = Callable[[Claim | None, Any, datetime], Claim | None]


def _existing(change: Callable[[Claim, Any], Claim]) -> Effect:
    """An effect on a claim that must exist already; without one there is nothing to change."""

    def effect(claim: Claim | None, data: Any, at: datetime) -> Claim | None:
        return None if claim is None else change(claim, data)

    return effect


def _on_requested(claim: Claim | None, data: ReturnRequested, at: datetime) -> Claim:
    # The request's time starts the shop's deadline for its decision.
    comment = None if data.comment is UNSET else data.comment
    evidence = tuple(data.attachments)
    if claim is None:
        return Claim(
            id=data.claim,
            order=data.order,
            state="requested",
            amount=data.amount,
            requested_by_buyer=True,
            requested_at=at,
            comment=comment,
            attachments=evidence,
        )
    return replace(
        claim,
        state="requested",
        order=data.order,
        amount=data.amount,
        requested_by_buyer=True,
        requested_at=at,
        comment=comment,
        attachments=evidence,
    )


def _on_initiated(claim: Claim | None, data: ReturnInitiated, at: datetime) -> Claim:
    # The offer's time starts the buyer's deadline for taking it up.
    order = data.order
    return Claim(
        id=data.claim, order=order, state="awaiting_buyer", amount=order.price, offered_at=at
    )


@_existing
def _on_approved(claim: Claim, data: ReturnApproved) -> Claim:
    return replace(claim, state="approved", mode=data.mode)


@_existing
def _on_rejected(claim: Claim, data: ReturnRejected) -> Claim:
    return replace(claim, state="rejected", reason=data.reason)


@_existing
def _on_disputed(claim: Claim, data: ReturnDisputed) -> Claim:
    return replace(claim, state="disputed", disputed=True)


@_existing
def _on_escalated(claim: Claim, data: ReturnEscalated) -> Claim:
    # The managers decide, as on a dispute; the buyer has nothing left to dispute.
    return replace(claim, state="disputed", disputed=True)


@_existing
def _on_closed(claim: Claim, data: ReturnWithdrawn | ReturnExpired) -> Claim:
    return replace(claim, state="closed")


@_existing
def _on_resolved(claim: Claim, data: ReturnResolved) -> Claim:
    if data.decision == "approve":
        return replace(claim, state="resolved_approved", mode=data.mode)
    return replace(claim, state="resolved_rejected")


@_existing
def _on_handed_in(claim: Claim, data: ReturnHandedIn) -> Claim:
    return replace(claim, goods="handed_in")


@_existing
def _on_arrived(claim: Claim, data: ReturnArrived) -> Claim:
    return replace(claim, goods="arrived")


@_existing
def _on_refund(claim: Claim, data: RefundIssued) -> Claim:
    return replace(claim, refunded=True)


@_existing
def _on_inspected(claim: Claim, data: ReturnInspected) -> Claim:
    return replace(claim, goods="inspected")


_EFFECTS: dict[str, Effect] = {
    Kind.RETURN_REQUESTED: _on_requested,
    Kind.RETURN_INITIATED: _on_initiated,
    Kind.RETURN_APPROVED: _on_approved,
    Kind.RETURN_REJECTED: _on_rejected,
    Kind.RETURN_DISPUTED: _on_disputed,
    Kind.RETURN_RESOLVED: _on_resolved,
    Kind.RETURN_HANDED_IN: _on_handed_in,
    Kind.RETURN_ARRIVED: _on_arrived,
    Kind.REFUND_ISSUED: _on_refund,
    Kind.RETURN_INSPECTED: _on_inspected,
    Kind.RETURN_WITHDRAWN: _on_closed,
    Kind.RETURN_EXPIRED: _on_closed,
    Kind.RETURN_ESCALATED: _on_escalated,
}


def evolve_claims(state: ChatState, event: Event) -> ChatState:
    """The chat's claims after `event`; `state` itself for every other kind of event."""
    effect = _EFFECTS.get(event.kind)
    if effect is None:
        return state
    claim = effect(state.claims.get(event.data.claim), event.data, event.at)
    if claim is None:
        # An event about a claim this stream never opened: nothing to fold it into.
        return state
    claim = replace(claim, updated_at=event.at)
    return replace(state, claims={**state.claims, claim.id: claim})
