"""Who acts: the user behind a token, and how they appear as an event's author."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.events import Author, Operator, Party, Role


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated user. For a seller, `id` is the operator and `shop` the shop id."""

    role: Role
    id: str
    name: str
    shop: str | None = None
    shop_name: str | None = None

    @property
    def side(self) -> str:
        """The chat side the actor writes for: `buyer`, `seller`, or `system` for the rest."""
        if self.role in ("buyer", "seller"):
            return self.role
        return "system"


def author_of(actor: Actor, shop: Party | None = None) -> Author:
    """The event author for an actor; a shop's events name the shop and the operator."""
    if actor.role == "seller":
        shop_id = actor.shop or ""
        shop_name = shop.name if shop is not None else (actor.shop_name or shop_id)
        return Author(
            role="seller",
            id=shop_id,
            name=shop_name,
            operator=Operator(id=actor.id, name=actor.name),
        )
    return Author(role=actor.role, id=actor.id, name=actor.name)


def system_author(marketplace: str) -> Author:
    return Author(role="system", id="system", name=marketplace)
