"""A marketplace that signs its own tokens: key pairs of each algorithm chatd takes, their
public halves as PEM and as a JWKS document, tokens signed with them, and the forgeries an
attacker would try (`alg: none`, HS256 keyed with a public key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

ALGORITHMS = ("RS256", "ES256", "EdDSA")


def private_key(algorithm: str) -> PrivateKeyTypes:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(algorithm)


def public_pem(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def jwk(key: PrivateKeyTypes, algorithm: str, kid: str | None = None) -> dict[str, Any]:
    """The public JWK of `key`, with `alg`, `use` and (when given) `kid`."""
    found = jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key(), as_dict=True)
    found.update({"alg": algorithm, "use": "sig"})
    if kid is not None:
        found["kid"] = kid
    return found


@dataclass
class Signer:
    """One of the marketplace's keys."""

    algorithm: str
    key: PrivateKeyTypes
    kid: str | None = None

    @classmethod
    def new(cls, algorithm: str, kid: str | None = None) -> Signer:
        return cls(algorithm, private_key(algorithm), kid)

    def pem(self) -> str:
        return public_pem(self.key)

    def jwk(self) -> dict[str, Any]:
        return jwk(self.key, self.algorithm, self.kid)

    def token(self, **claims: Any) -> str:
        headers = {"kid": self.kid} if self.kid is not None else None
        return jwt.encode(claims_of(**claims), self.key, algorithm=self.algorithm, headers=headers)  # type: ignore[arg-type]


def jwks(*signers: Signer) -> str:
    return json.dumps({"keys": [s.jwk() for s in signers]})


def claims_of(**overrides: Any) -> dict[str, Any]:
    """A buyer's claims living an hour, with `overrides` (None removes a claim)."""
    claims: dict[str, Any] = {
        "sub": "buyer-marketplace",
        "role": "buyer",
        "name": "Покупатель",
        "exp": int(time.time()) + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def hs256_keyed_with(secret: bytes, **claims: Any) -> str:
    """An HS256 token whose HMAC key is `secret`: the algorithm-confusion forgery when
    `secret` is a public key's PEM, which anyone may read."""
    signing = _unsigned({"alg": "HS256", "typ": "JWT"}, claims_of(**claims))
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + _b64(mac)


def unsigned_token(**claims: Any) -> str:
    """`alg: none`: no signature at all."""
    return _unsigned({"alg": "none", "typ": "JWT"}, claims_of(**claims)) + "."
