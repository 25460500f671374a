"""Routing keys: the names under which a chat's events reach the people who may see them.

`b:{buyer}` is a buyer, `s:{shop}` every operator of a shop, `m` the managers. The store keeps
a feed per key, and the hub delivers by key; both keep keys as plain strings. Only this
module spells them: `buyer_key`, `shop_key` and `MANAGERS` make them, `parse_key` reads them.
An upload's owner is named the same way (`uploader_key`), with `MARKETPLACE` for the
marketplace's own uploads, which no feed is kept for.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, NewType

from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from chatd.domain.policy import Allow, Relation
from chatd.store.base import Audience
from protocol.events import SHOP_ONLY_KINDS, Event, Role

RoutingKey = NewType("RoutingKey", str)

# `b` a buyer, `s` a shop, `m` the managers.
KeyKind = Literal["b", "s", "m"]

MANAGERS = RoutingKey("m")
# The owner of what the marketplace uploads (an order's product photo). Never a feed's key:
# the marketplace reads no chat over a socket, so `keys_of` never gives it.
MARKETPLACE = RoutingKey("system")


class KeyParts(NamedTuple):
    kind: KeyKind
    ident: str  # the buyer's or the shop's id; "" for the managers


def buyer_key(buyer: str) -> RoutingKey:
    return RoutingKey("b:" + buyer)


def shop_key(shop: str) -> RoutingKey:
    return RoutingKey("s:" + shop)


def parse_key(key: str) -> KeyParts:
    """A routing key's kind and id; ValueError for a string that is not a routing key."""
    kind, sep, ident = key.partition(":")
    if sep and ident:
        if kind == "b":
            return KeyParts("b", ident)
        if kind == "s":
            return KeyParts("s", ident)
    if key == MANAGERS:
        return KeyParts("m", "")
    raise ValueError(f"not a routing key: {key!r}")


def keys_of(actor: Actor) -> tuple[RoutingKey, ...]:
    """The routing keys whose events `actor` may see."""
    if actor.role == "buyer":
        return (buyer_key(actor.id),)
    if actor.role == "seller":
        return (shop_key(actor.shop or ""),)
    if actor.role == "manager":
        return (MANAGERS,)
    return ()


def uploader_key(actor: Actor) -> RoutingKey:
    """Whose an upload of `actor` is: a buyer's own, a shop's (any of its operators may send
    it), or the marketplace's. The quota counts uploads by this key, and a buyer or a shop
    reads its own back by it (`keys_of`); the marketplace, which has no such key, does not."""
    if actor.role == "system":
        return MARKETPLACE
    return keys_of(actor)[0]


def audiences_of(state: ChatState) -> tuple[Audience, ...]:
    """Who receives the chat's events, managers only from the first dispute on, and which
    kinds each key is not given: the shop's own events (`shop_events` in the role policy)
    go to no key whose role may not see them, so the feed, the replay after a cursor, the
    long-poll, the webhooks and live delivery all leave them out alike."""
    audiences = [
        Audience(buyer_key(state.buyer.id), hidden=_hidden("buyer", "participant")),
        Audience(shop_key(state.seller.id), hidden=_hidden("seller", "participant")),
    ]
    if state.managers_from is not None:
        audiences.append(
            Audience(MANAGERS, state.managers_from, hidden=_hidden("manager", "arbiter"))
        )
    return tuple(audiences)


def receivers(audiences: tuple[Audience, ...], event: Event) -> tuple[str, ...]:
    """The keys of `audiences` that receive `event`: live, exactly those the store's feed
    gives it to (chatd.store.group_commit.plan_appends)."""
    return tuple(a.key for a in audiences if a.receives(event.seq, event.kind))


def _hidden(role: Role, relation: Relation) -> frozenset[str]:
    allowed = isinstance(policy.verdict(role, "shop_events", relation), Allow)
    return frozenset() if allowed else SHOP_ONLY_KINDS
