"""Who may see a chat, from which event on, which of its events, and which side an actor
writes for.

All of it follows from the actor's relation to the chat (`chatd.domain.policy.relation_of`)
and the role policy's cells.
"""

from __future__ import annotations

from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from chatd.domain.policy import PARTY_SIDE, Allow, Relation, relation_of
from protocol.events import SHOP_ONLY_KINDS, Role, Side

# How a role stands to every chat its routing key reaches (chatd.routing.keys_of): its own
# chats, for a buyer or a shop; the disputed ones, for the managers. A read over all of a
# user's chats at once (a search without `chat`) asks the policy with this relation.
_KEY_RELATION: dict[Role, Relation] = {
    "buyer": "participant",
    "seller": "participant",
    "manager": "arbiter",
    "system": "marketplace",
}
_NOTHING_HIDDEN: frozenset[str] = frozenset()


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


def sees_shop_events(actor: Actor, state: ChatState | None = None) -> bool:
    """Whether `actor` may see the shop's own events (notes, assignments) of the chat in
    `state`; without a state, of every chat the actor's routing key reaches."""
    relation = relation_of(state, actor) if state is not None else _KEY_RELATION[actor.role]
    if not isinstance(policy.verdict(actor.role, "shop_events", relation), Allow):
        return False
    return policy.key_refusal(actor, "shop_events") is None


def hidden_kinds(actor: Actor, state: ChatState | None = None) -> frozenset[str]:
    """The event kinds a read must leave out for `actor` (`sees_shop_events`): the reader
    then sees gaps in `seq` where they stand."""
    return _NOTHING_HIDDEN if sees_shop_events(actor, state) else SHOP_ONLY_KINDS
