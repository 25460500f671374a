"""Tokens for bots and scripts: JWTs signed HS256 with the server's secret (docs/protocol.md 2).

The server mints tokens with `chatd token`; a program that holds the secret (a test, the
scenario runner, the marketplace back end) mints its own:

>>> import jwt
>>> secret = "a-secret-of-at-least-32-bytes-long"
>>> token = mint(secret, role="seller", sub="op-anna", name="Анна", seller="shop-1")
>>> claims = jwt.decode(token, secret, algorithms=["HS256"])
>>> claims["role"], claims["sub"], claims["seller"]
('seller', 'op-anna', 'shop-1')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from protocol.events import Role


def mint(
    secret: str,
    *,
    role: Role,
    sub: str,
    name: str,
    seller: str | None = None,
    shop_name: str | None = None,
    ttl: float = 3600.0,
    now: float | None = None,
) -> str:
    """A token with the claims `sub`, `role`, `name`, `exp` and, for a seller, `seller`."""
    if role == "seller" and not seller:
        raise ValueError("a seller token needs the shop id (seller=...)")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {"sub": sub, "role": role, "name": name, "exp": int(issued + ttl)}
    if seller:
        claims["seller"] = seller
    if shop_name:
        claims["shop_name"] = shop_name
    return jwt.encode(claims, secret, algorithm="HS256")


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
