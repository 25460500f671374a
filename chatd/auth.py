"""Tokens: JWTs signed HS256 with the server secret (PROTOCOL.md section 2).

The server verifies them here; they are minted by `chatd.client.tokens.mint` (`issue`), the
same function bots and the marketplace back end use.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from chatd.client.tokens import mint as issue
from chatd.domain.actors import Actor
from protocol.events import Role

__all__ = ["ROLES", "Identity", "TokenError", "issue", "verify"]

ROLES: tuple[Role, ...] = ("buyer", "seller", "manager", "system")


class TokenError(Exception):
    """The token is malformed, forged, expired or lacks a claim; the message says which."""


@dataclass(frozen=True, slots=True)
class Identity:
    actor: Actor
    expires_at: float  # seconds since the epoch


def verify(secret: str, token: str) -> Identity:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"the token is not valid: {exc}") from exc
    role = claims.get("role")
    sub = claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise TokenError("the token's role or sub is not valid")
    seller = claims.get("seller")
    if role == "seller" and (not isinstance(seller, str) or not seller):
        raise TokenError("a seller token must name its shop in the `seller` claim")
    name = claims.get("name")
    shop_name = claims.get("shop_name")
    actor = Actor(
        role=role,
        id=sub,
        name=name if isinstance(name, str) and name else sub,
        shop=seller if role == "seller" else None,
        shop_name=shop_name if isinstance(shop_name, str) and shop_name else None,
    )
    return Identity(actor=actor, expires_at=float(claims["exp"]))
