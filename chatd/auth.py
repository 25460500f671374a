"""Tokens: JWTs signed HS256 with the server secret (PROTOCOL.md section 2).

The server verifies them here; they are minted by `chatd.client.tokens.mint` (`issue`), the
same function bots and the marketplace back end use.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import jwt

from chatd.client.tokens import mint as issue
from chatd.domain.actors import Actor
from protocol.events import Role
from protocol.frames import MAX_TOKEN

__all__ = ["MAX_LIFETIME", "MAX_TOKEN", "ROLES", "Identity", "TokenError", "issue", "verify"]

ROLES: tuple[Role, ...] = ("buyer", "seller", "manager", "system")

# The furthest `exp` may lie past the server's now: a stolen token must run out some day, and
# an `exp` of 1e308 never would.
MAX_LIFETIME: Final = 30 * 24 * 3600.0


class TokenError(Exception):
    """The token is malformed, forged, expired or lacks a claim; the message says which."""


@dataclass(frozen=True, slots=True)
class Identity:
    actor: Actor
    expires_at: float  # seconds since the epoch


def verify(secret: str, token: str, now: float | None = None) -> Identity:
    if len(token) > MAX_TOKEN:
        # /ws refuses such a hello by its frame bound; HTTP must answer the same.
        raise TokenError(f"the token is longer than {MAX_TOKEN} characters")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"the token is not valid: {exc}") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyJWT lets these through for a signed claim it cannot read (an `exp`, `iat` or `nbf`
        # of 1e400, which JSON reads as infinity; nesting past the parser's depth): the
        # token's fault, so `unauthorized`, never a server error.
        raise TokenError("the token is not valid: a claim cannot be read") from exc
    expires_at = _expiry(claims.get("exp"))
    if expires_at - (time.time() if now is None else now) > MAX_LIFETIME:
        raise TokenError(f"the token lives longer than {int(MAX_LIFETIME // 86400)} days")
    role = claims.get("role")
    sub = claims.get("sub")
    if role not in ROLES or not _text(sub) or not sub:
        raise TokenError("the token's role or sub is not valid")
    seller = claims.get("seller")
    if role == "seller" and (not _text(seller) or not seller):
        raise TokenError("a seller token must name its shop in the `seller` claim")
    name = claims.get("name")
    shop_name = claims.get("shop_name")
    for claim, value in (("name", name), ("shop_name", shop_name)):
        if isinstance(value, str) and not _text(value):
            raise TokenError(f"the token's `{claim}` is not valid text")
    actor = Actor(
        role=role,
        id=sub,
        name=name if isinstance(name, str) and name else sub,
        shop=seller if role == "seller" else None,
        shop_name=shop_name if isinstance(shop_name, str) and shop_name else None,
    )
    return Identity(actor=actor, expires_at=expires_at)


def _expiry(exp: Any) -> float:
    """`exp` as seconds since the epoch; TokenError for what names no time (10^400 has no
    float, infinity and NaN are no instant)."""
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("the token's exp is not a number")
    try:
        expires_at = float(exp)
    except OverflowError as exc:
        raise TokenError("the token's exp is out of range") from exc
    if not math.isfinite(expires_at):
        raise TokenError("the token's exp is out of range")
    return expires_at


def _text(value: Any) -> TypeGuard[str]:
    """A string that can be sent: JSON lets a claim carry a lone surrogate (`"\\ud800"`),
    which no UTF-8 encoder can write, so the welcome frame or an event naming it would fail
    after the socket was accepted."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
