"""Who may see a chat, from which event on, and which side an actor writes for."""

from __future__ import annotations

from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from protocol.events import Side


def side_of(state: ChatState, actor: Actor) -> Side | None:
    """`buyer` or `seller` for the chat's participants; None for everyone else."""
    if actor.role == "buyer" and actor.id == state.buyer.id:
        return "buyer"
    if actor.role == "seller" and actor.shop == state.seller.id:
        return "seller"
    return None


def first_visible_seq(state: ChatState, actor: Actor) -> int | None:
    """The first seq `actor` may see, or None when the chat is not theirs to see.

    Managers see a chat from its first dispute on; the system sees every chat.
    """
    if side_of(state, actor) is not None or actor.role == "system":
        return 1
    if actor.role == "manager":
        return state.managers_from
    return None


def can_see(state: ChatState, actor: Actor) -> bool:
    return first_visible_seq(state, actor) is not None
