"""Tokens: JWTs signed HS256 with the server secret (docs/protocol.md section 2), and, with
`chatd serve --jwt-public-key`, RS256, ES256 and EdDSA tokens signed by the marketplace.

The server verifies them here; HS256 tokens are minted by `chatd.client.tokens.mint`
(`issue`), the same function bots and the marketplace back end use.

Which key verifies a token follows from its header's `alg`, and each algorithm has its own
keys: HS256 only ever the secret, the others only the public keys of their own type. So a
token cannot choose how it is checked: `alg: none` is refused, and an HS256 token signed with
a public key's bytes as its secret (algorithm confusion) is checked against the secret and
fails.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeGuard

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from chatd.client.tokens import mint as issue
from chatd.domain.actors import Actor
from protocol.events import Role
from protocol.frames import MAX_TOKEN

__all__ = [
    "ASYMMETRIC",
    "MAX_LIFETIME",
    "MAX_TOKEN",
    "ROLES",
    "Identity",
    "PublicKey",
    "PublicKeyError",
    "TokenError",
    "issue",
    "load_public_keys",
    "parse_public_keys",
    "verify",
]

ROLES: tuple[Role, ...] = ("buyer", "seller", "manager", "system")

# The furthest `exp` may lie past the server's now: a stolen token must run out some day, and
# an `exp` of 1e308 never would.
MAX_LIFETIME: Final = 30 * 24 * 3600.0


class TokenError(Exception):
    """The token is malformed, forged, expired or lacks a claim; the message says which."""


@dataclass(frozen=True, slots=True)
class Identity:
    actor: Actor
    expires_at: float  # seconds since the epoch; infinity for an API key
    key: str | None = None  # the API key's id, for an identity that is one


# ---- the marketplace's public keys --------------------------------------------------------

# The algorithms of tokens signed by the marketplace, besides HS256 with the secret.
ASYMMETRIC: Final = ("RS256", "ES256", "EdDSA")
# Below this an RSA key can be factored by a determined attacker.
MIN_RSA_BITS: Final = 2048

VerifyingKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


class PublicKeyError(ValueError):
    """A `--jwt-public-key` file that chatd cannot verify tokens with; the message says why."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One key of the marketplace: the one algorithm it verifies, and its JWK `kid` if any."""

    algorithm: str
    key: VerifyingKey
    kid: str | None = None


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def load_public_keys(path: Path) -> tuple[PublicKey, ...]:
    """The keys in a PEM file (public keys or certificates, one or more) or a JWKS document."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PublicKeyError(f"cannot read {path}: {exc}") from exc
    return parse_public_keys(text)


def parse_public_keys(text: str) -> tuple[PublicKey, ...]:
    stripped = text.strip()
    keys = _jwks(stripped) if stripped.startswith("{") else _pem(stripped)
    if not keys:
        raise PublicKeyError("no public key found: expected PEM or a JWKS document")
    return keys


def _pem(text: str) -> tuple[PublicKey, ...]:
    keys: list[PublicKey] = []
    for block in _PEM_BLOCK.finditer(text):
        label, data = block.group(1), block.group(0).encode()
        try:
            if label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
                key: Any = load_pem_public_key(data)
            elif label == "CERTIFICATE":
                key = x509.load_pem_x509_certificate(data).public_key()
            else:
                # A private key in the server's files is a key the marketplace has lost.
                raise PublicKeyError(f"a PEM block of {label}: give public keys only")
        except ValueError as exc:
            if isinstance(exc, PublicKeyError):
                raise
            raise PublicKeyError(f"a PEM block of {label} cannot be read: {exc}") from exc
        keys.append(PublicKey(_algorithm_of(key), key))
    return tuple(keys)


def _jwks(text: str) -> tuple[PublicKey, ...]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PublicKeyError(f"not a JWKS document: {exc}") from exc
    # A JWKS document; a single JWK is taken as a set of one.
    found = document.get("keys", [document]) if isinstance(document, dict) else None
    if not isinstance(found, list):
        raise PublicKeyError("not a JWKS document: expected an object with `keys`")
    keys: list[PublicKey] = []
    for jwk in found:
        if not isinstance(jwk, dict):
            raise PublicKeyError("a JWKS entry is not an object")
        if jwk.get("use", "sig") != "sig":
            continue  # an encryption key: never one that signs tokens
        if "d" in jwk or jwk.get("kty") == "oct":
            raise PublicKeyError("a JWK holds a private or shared secret: give public keys only")
        try:
            # The key's type decides its algorithm (`_algorithm_of`); its `alg`, if any, must
            # agree, which is checked below with a message that says so.
            key = jwt.PyJWK({name: value for name, value in jwk.items() if name != "alg"}).key
        except jwt.PyJWTError as exc:
            raise PublicKeyError(f"a JWK cannot be read: {exc}") from exc
        algorithm = _algorithm_of(key)
        if jwk.get("alg", algorithm) != algorithm:
            raise PublicKeyError(f"a JWK says `alg` {jwk['alg']!r}; chatd takes {algorithm}")
        kid = jwk.get("kid")
        keys.append(PublicKey(algorithm, key, kid if isinstance(kid, str) else None))
    return tuple(keys)


def _algorithm_of(key: Any) -> str:
    """The one algorithm a key verifies, or PublicKeyError for a key chatd does not take."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PublicKeyError(f"an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise PublicKeyError(f"an EC key on {key.curve.name}; ES256 needs P-256")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    raise PublicKeyError(f"a {type(key).__name__}: chatd takes RSA, P-256 and Ed25519 keys")


def _verifying_keys(
    secret: str, header: dict[str, Any], public_keys: Sequence[PublicKey]
) -> tuple[str, list[str | VerifyingKey]]:
    """The token's algorithm and the keys that may verify it, decided by the server: the
    secret for HS256 alone, the public keys of the token's algorithm (and `kid`) for the
    rest, and nothing else."""
    alg = header.get("alg")
    if alg == "HS256":
        return alg, [secret]
    if isinstance(alg, str) and alg in ASYMMETRIC:
        kid = header.get("kid")
        keys: list[str | VerifyingKey] = [
            k.key
            for k in public_keys
            if k.algorithm == alg and (k.kid is None or kid is None or k.kid == kid)
        ]
        if keys:
            return alg, keys
        raise TokenError(f"no key of this server verifies {alg} tokens")
    raise TokenError(f"tokens signed with {alg!r} are not accepted")


# ---- verifying ------------------------------------------------------------------------------


def verify(
    secret: str,
    token: str,
    now: float | None = None,
    *,
    public_keys: Sequence[PublicKey] = (),
) -> Identity:
    if len(token) > MAX_TOKEN:
        # /ws refuses such a hello by its frame bound; HTTP must answer the same.
        raise TokenError(f"the token is longer than {MAX_TOKEN} characters")
    try:
        alg, keys = _verifying_keys(secret, jwt.get_unverified_header(token), public_keys)
        claims = _decode(token, alg, keys)
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


def _decode(token: str, alg: str, keys: list[str | VerifyingKey]) -> dict[str, Any]:
    """The claims, verified by the first of `keys` whose signature matches (a JWKS without
    `kid`s may hold several keys of one algorithm while the marketplace rotates them)."""
    options: Any = {"require": ["exp", "sub", "role"]}
    for key in keys[:-1]:
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=options)
        except jwt.InvalidSignatureError:
            continue
        return claims
    last: dict[str, Any] = jwt.decode(token, keys[-1], algorithms=[alg], options=options)
    return last


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
