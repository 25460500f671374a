"""Who acts: the user behind a token, and how they appear as an event's author."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.events import Author, Operator, Party, Role


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated user. For a seller, `id` is the operator and `shop` the shop id.

    A shop's API key acts as a seller whose `id` and `name` are the key's, with the key's
    `scopes`; a token carries none (`None`): it may do all its role may
    (`chatd.domain.policy.KEY_SCOPES`).
    """

    role: Role
    id: str
    name: str
    shop: str | None = None
    shop_name: str | None = None
    scopes: frozenset[str] | None = None

    @property
    def side(self) -> str:
        """The chat side the actor writes for: `buyer`, `seller`, or `system` for the rest."""
        if self.role in ("buyer", "seller"):
            return self.role
        return "system"


def author_of(actor: Actor, buyer: Party, shop: Party) -> Author:
    """The event author for a participant of the chat between `buyer` and `shop`.

    Display names come from the marketplace (the chat's parties, named by their orders),
    not from the token; a shop's events also name the operator who acted for it. A token's
    `shop_name` stands in while no order has named the shop.
    """
    if actor.role == "seller":
        name = shop.name
        if name == shop.id and actor.shop_name:
            name = actor.shop_name
        return Author(
            role="seller", id=shop.id, name=name, operator=Operator(id=actor.id, name=actor.name)
        )
    if actor.role == "buyer":
        return Author(role="buyer", id=buyer.id, name=buyer.name)
    return Author(role=actor.role, id=actor.id, name=actor.name)


def system_author(marketplace: str) -> Author:
    return Author(role="system", id="system", name=marketplace)
