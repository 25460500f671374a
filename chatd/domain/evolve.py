"""`evolve(state, event) -> state`: how each event changes a chat."""

from __future__ import annotations

from dataclasses import replace

from chatd.domain.model import ChatState
from chatd.domain.moderation import number_tail
from chatd.domain.returns import evolve_claims
from protocol.events import ChatAssigned, ChatOpened, Event, Kind

# Kinds with which the shop answers everything the buyer wrote before (docs/protocol.md 7).
# A note is none of them: the buyer never reads it, so it answers nothing.
_SHOP_ANSWERS = frozenset({Kind.RETURN_APPROVED, Kind.RETURN_REJECTED, Kind.RETURN_INITIATED})
# Kinds that hand a claim to the managers, who see the chat from the first of them on.
_TO_MANAGERS = frozenset({Kind.RETURN_DISPUTED, Kind.RETURN_ESCALATED})


def opened_state(event: Event) -> ChatState:
    data: ChatOpened = event.data
    return ChatState(chat=event.stream, buyer=data.buyer, seller=data.seller, seq=event.seq)


def evolve(state: ChatState | None, event: Event) -> ChatState:
    """The chat after `event`; the claims part is `chatd.domain.returns.evolve_claims`."""
    if state is None:
        return opened_state(event)
    waiting_since = state.waiting_since
    if event.kind == Kind.MESSAGE:
        if event.author.role == "buyer":
            waiting_since = waiting_since or event.at
        elif event.author.role == "seller":
            waiting_since = None
    elif event.kind == Kind.RETURN_REQUESTED:
        waiting_since = waiting_since or event.at
    elif event.kind in _SHOP_ANSWERS:
        waiting_since = None
    managers_from = state.managers_from
    if event.kind in _TO_MANAGERS and managers_from is None:
        managers_from = event.seq
    buyer_tail, seller_tail = state.buyer_tail, state.seller_tail
    if event.kind == Kind.MESSAGE and event.author.role == "buyer":
        buyer_tail = number_tail(buyer_tail, event.text or "")
    elif event.kind == Kind.MESSAGE and event.author.role == "seller":
        seller_tail = number_tail(seller_tail, event.text or "")
    # One `replace` per event: it is one of the dearer calls on a message's path.
    state = replace(
        state,
        seq=event.seq,
        waiting_since=waiting_since,
        managers_from=managers_from,
        buyer_tail=buyer_tail,
        seller_tail=seller_tail,
    )
    if event.kind == Kind.CHAT_ASSIGNED:
        # Rare beside messages: a second `replace` here costs the message path nothing.
        assigned: ChatAssigned = event.data
        state = replace(state, assignee=assigned.operator)
    return evolve_claims(state, event)


def fold(events: list[Event]) -> ChatState | None:
    state: ChatState | None = None
    for event in events:
        state = evolve(state, event)
    return state
