"""Routing keys: the names under which a chat's events reach the people who may see them.

`b:{buyer}` is a buyer, `s:{shop}` every operator of a shop, `m` the managers. The store keeps
a feed per key, and the hub delivers by key.
"""

from __future__ import annotations

from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from chatd.store.base import Audience


def keys_of(actor: Actor) -> tuple[str, ...]:
    """The routing keys whose events `actor` may see."""
    if actor.role == "buyer":
        return ("b:" + actor.id,)
    if actor.role == "seller":
        return ("s:" + (actor.shop or ""),)
    if actor.role == "manager":
        return ("m",)
    return ()


def audiences_of(state: ChatState) -> tuple[Audience, ...]:
    """Who receives the chat's events, managers only from the first dispute on."""
    audiences = [Audience("b:" + state.buyer.id), Audience("s:" + state.seller.id)]
    if state.managers_from is not None:
        audiences.append(Audience("m", state.managers_from))
    return tuple(audiences)
