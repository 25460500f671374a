"""When things become due: the day a return through the chat opens, the deadline of a claim
waiting for someone, and a chat's reply deadline (docs/protocol.md, version 1.1).

Pure functions of the folded state and the settings. The rules (`chatd.domain.returns`) use
them to refuse what is early; the chat list shows them; the server's scheduler of deadlines
reads `timers` to know what to fire and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from chatd.domain.model import ChatState, Claim
from chatd.domain.rules import Rules
from protocol.events import OrderCard
from protocol.texts import as_utc

# What a passed deadline does to its claim: a request goes to the managers, an offer ends.
TimerAction = Literal["escalate", "expire"]


@dataclass(frozen=True, slots=True)
class Timer:
    """A claim's wait that ends by itself at `due`, unless someone acts first."""

    chat: str
    claim: str
    action: TimerAction
    due: datetime


def return_opens_at(order: OrderCard, rules: Rules) -> datetime:
    """The first moment a return of `order` may be requested through the chat, in UTC.

    Calendar days in the marketplace's time zone: bought on 01.08.2023 at any hour there,
    the return opens on 15.08.2023 at 00:00 there. The day of purchase is the local one, so
    a purchase at 01:30 Moscow time (22:30 UTC the day before) counts from the later day.
    """
    zone = rules.timezone
    bought_on = as_utc(order.purchased_at).astimezone(zone).date()
    opens_on = bought_on + timedelta(days=rules.return_opens_days)
    # A midnight that a clock change skips resolves to the first instant of that day.
    return datetime.combine(opens_on, time(0), tzinfo=zone).astimezone(UTC)


def claim_due(claim: Claim, rules: Rules) -> datetime | None:
    """When the claim's wait ends by itself: a request's deadline for the shop's decision,
    an offer's for the buyer's answer; None for a claim that waits for neither."""
    if claim.goods is not None:
        return None
    if claim.state == "requested" and claim.requested_at is not None:
        return as_utc(claim.requested_at) + rules.claim_deadline
    if claim.state == "awaiting_buyer" and claim.offered_at is not None:
        return as_utc(claim.offered_at) + rules.offer_deadline
    return None


def reply_due(
    waiting_since: datetime | None, claims: Iterable[Claim], rules: Rules
) -> datetime | None:
    """A chat's reply deadline: the oldest unanswered buyer message or request plus the
    reply window, and at most the deadline of any request that waits for the shop's
    decision, whatever the shop wrote meanwhile; None when nothing waits."""
    due = as_utc(waiting_since) + rules.reply_window if waiting_since is not None else None
    for claim in claims:
        if claim.state != "requested":
            continue
        deadline = claim_due(claim, rules)
        if deadline is not None and (due is None or deadline < due):
            due = deadline
    return due


def timers(state: ChatState, rules: Rules) -> list[Timer]:
    """Every claim of the chat whose wait ends by itself, earliest first."""
    found: list[Timer] = []
    for claim in state.claims.values():
        due = claim_due(claim, rules)
        if due is None:
            continue
        action: TimerAction = "escalate" if claim.state == "requested" else "expire"
        found.append(Timer(chat=state.chat, claim=claim.id, action=action, due=due))
    found.sort(key=lambda timer: (timer.due, timer.claim))
    return found
