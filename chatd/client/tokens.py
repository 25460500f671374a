"""Tokens for bots and scripts: `mint` one (protocol.tokens), or a `minter` that mints a
fresh one whenever the connection needs it."""

from __future__ import annotations

from collections.abc import Callable

from protocol.events import Role
from protocol.tokens import mint

__all__ = ["mint", "minter"]


def minter(
    secret: str,
    *,
    role: Role,
    sub: str,
    name: str,
    seller: str | None = None,
    shop_name: str | None = None,
    ttl: float = 3600.0,
) -> Callable[[], str]:
    """A `token_provider` for `connect`: every call mints a fresh token for the same user.

    >>> fresh = minter("a-secret-of-at-least-32-bytes-long", role="buyer", sub="b1", name="Люда")
    >>> isinstance(fresh(), str)
    True
    """

    def provide() -> str:
        return mint(
            secret, role=role, sub=sub, name=name, seller=seller, shop_name=shop_name, ttl=ttl
        )

    return provide
