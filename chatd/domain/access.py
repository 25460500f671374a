"""Who may see a chat, from which event on, and which side an actor writes for.

All three follow from the actor's relation to the chat (`chatd.domain.policy.relation_of`).
"""

from __future__ import annotations

from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from chatd.domain.policy import PARTY_SIDE, relation_of
from protocol.events import Side


def side_of(state: ChatState, actor: Actor) -> Side | None:
    """`buyer` or `seller` for the chat's participants; None for everyone else."""
    if relation_of(state, actor) != "participant":
        return None
    return PARTY_SIDE.get(actor.role)


def first_visible_seq(state: ChatState, actor: Actor) -> int | None:
    """The first seq `actor` may see, or None when the chat is not theirs to see.

    Managers see a chat from its first dispute on; the system sees every chat.
    """
    relation = relation_of(state, actor)
    if relation == "foreign":
        return None
    if relation == "arbiter":
        return state.managers_from
    return 1


def can_see(state: ChatState, actor: Actor) -> bool:
    return first_visible_seq(state, actor) is not None
