"""The claims a shop or the managers work on, outside the chat (`GET /api/v1/claims`): each
with where it stands and the actions this user may take on it now.

A read, like `chatd.views`: the store names the claims in the chats a user may see, each
chat's folded state (`chatd.states`) describes them, and the domain answers which actions
would pass (`chatd.domain.claim_actions`). Nothing here writes or decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import msgspec

from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.claim_actions import ClaimAction, available
from chatd.domain.deadlines import claim_due
from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.model import ChatState, Claim
from chatd.domain.returns import claim_state_label
from chatd.domain.rules import Rules
from chatd.routing import keys_of
from chatd.states import ChatStates
from chatd.store.base import EventStore
from protocol.events import Attachment, ClaimState, GoodsState, Money, OrderCard

# What `state=` may name: a claim state, or where the goods are once they moved.
CLAIM_LABELS: frozenset[str] = frozenset(get_args(ClaimState)) | frozenset(get_args(GoodsState))
MAX_LIMIT = 100
DEFAULT_LIMIT = 50


class ClaimCard(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One claim as an HTTP client sees it; the optional fields are left out when empty."""

    claim: str
    chat: str
    order: OrderCard
    state: str
    amount: Money
    updated_at: datetime
    attachments: list[Attachment]
    actions: list[ClaimAction]
    requested_at: datetime | None = None
    due: datetime | None = None
    comment: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimsPage:
    claims: list[ClaimCard]
    total: int


def _made_at(claim: Claim) -> datetime:
    """When the claim came to be: the shop's offer, or else the buyer's request."""
    made = claim.offered_at or claim.requested_at or claim.updated_at
    assert made is not None, "a claim is folded from at least one event"
    return made


class ClaimViews:
    def __init__(
        self,
        store: EventStore,
        states: ChatStates,
        rules: Rules,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.states = states
        self.rules = rules
        self.clock = clock

    async def claims(
        self,
        actor: Actor,
        *,
        state: str | None = None,
        order: str | None = None,
        article: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> ClaimsPage | Rejection:
        """The claims `actor` works on, newest first: a shop's in its chats, the managers'
        those disputed or escalated to them; filtered by claim state, order and article."""
        refused = policy.check(actor, "claims")
        if refused is not None:
            return refused
        if state is not None and state not in CLAIM_LABELS:
            return bad_frame(f"`state` is one of {', '.join(sorted(CLAIM_LABELS))}")
        if not 1 <= limit <= MAX_LIMIT:
            return bad_frame(f"`limit` is from 1 to {MAX_LIMIT}")
        if offset < 0:
            return bad_frame("`offset` is 0 or more")
        named = await self.store.claims_seen_by(keys_of(actor)[0], state, order)
        found: list[tuple[ChatState, Claim]] = []
        for claim_id, chat in named:
            chat_state = await self.states.visible(actor, chat, "claims")
            if isinstance(chat_state, Rejection):
                continue
            claim = chat_state.claims.get(claim_id)
            if claim is None or not self._listed(actor, claim):
                continue
            if article is not None and claim.order.article != article:
                continue
            found.append((chat_state, claim))
        found.sort(key=lambda pair: (_made_at(pair[1]), pair[1].id), reverse=True)
        now = self.clock()
        page = [self._card(actor, s, c, now) for s, c in found[offset : offset + limit]]
        return ClaimsPage(claims=page, total=len(found))

    @staticmethod
    def _listed(actor: Actor, claim: Claim) -> bool:
        # A chat with one disputed claim shows managers all of it (its history); the list of
        # claims is of their work: the claims that were disputed or escalated.
        return actor.role != "manager" or claim.disputed

    def _card(self, actor: Actor, state: ChatState, claim: Claim, now: datetime) -> ClaimCard:
        updated = claim.updated_at
        assert updated is not None, "a claim is folded from at least one event"
        return ClaimCard(
            claim=claim.id,
            chat=state.chat,
            order=claim.order,
            state=claim_state_label(claim),
            amount=claim.amount,
            requested_at=claim.requested_at,
            updated_at=updated,
            due=claim_due(claim, self.rules),
            comment=claim.comment,
            attachments=list(claim.attachments),
            reason=claim.reason,
            actions=available(actor, state, claim, now, self.rules),
        )
