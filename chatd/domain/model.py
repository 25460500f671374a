"""The state of one chat stream and its claims (folded from events by `chatd.domain.evolve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from protocol.events import (
    Attachment,
    ClaimState,
    GoodsState,
    Money,
    Operator,
    OrderCard,
    Party,
    ReturnMode,
)


@dataclass(frozen=True, slots=True)
class Claim:
    """A return claim on one order. One per order, ever: its id derives from the order's."""

    id: str
    order: OrderCard
    state: ClaimState
    amount: Money
    mode: ReturnMode | None = None
    goods: GoodsState | None = None
    refunded: bool = False
    requested_by_buyer: bool = False
    disputed: bool = False
    # When the shop offered the return, and when the buyer asked for it: the starts of the
    # offer's and the request's deadlines (`chatd.domain.deadlines`).
    offered_at: datetime | None = None
    requested_at: datetime | None = None
    # What a claim shows outside the chat (its listing over HTTP): the time of its latest
    # event, the buyer's evidence with the request, and the shop's reason for a refusal.
    updated_at: datetime | None = None
    comment: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChatState:
    chat: str
    buyer: Party
    seller: Party
    seq: int
    # The time of the oldest buyer message or return request the shop has not answered.
    waiting_since: datetime | None = None
    # Set once a claim of this chat is disputed: managers see the chat from this seq on.
    managers_from: int | None = None
    claims: dict[str, Claim] = field(default_factory=dict)
    # The end of each side's last messages while they end in a number, so that a number
    # split over several messages ("8916", then "1234567") is read whole:
    # `chatd.domain.moderation.number_tail`.
    buyer_tail: str = ""
    seller_tail: str = ""
    # The operator of the shop who has the chat (`chat.assigned`); None: nobody.
    assignee: Operator | None = None

    def claim_for_order(self, order_id: str) -> Claim | None:
        for claim in self.claims.values():
            if claim.order.id == order_id:
                return claim
        return None
