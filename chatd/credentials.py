"""Who presents a credential: a token (chatd.auth) or a shop's API key.

An API key is `chatd_` and 43 characters of URL-safe base64: 32 random bytes. The server
keeps only its SHA-256 (`digest`) and finds the key by it, so a copy of the database, a
backup or a log line of a query holds nothing that acts as the shop.

Why a plain SHA-256 and no salt or slow hash: a slow, salted hash (bcrypt, scrypt, argon2)
protects secrets people choose, which an attacker holding the hashes can guess a few
million at a time. A key is 256 random bits chosen by the server; nothing guesses one,
however fast the hash, and the hash's only work is to be one-way. A slow hash would cost
every request with a key tens of milliseconds of CPU and buy nothing; a salt would forbid
the look-up by digest, which is what makes finding a key one indexed read. (A keyed hash,
HMAC with the server's secret, would add nothing either, and would tie every key to the
secret: rotating it would void them all.)

Keys are looked up in the store on every request and every `hello`, never cached: the
store is what every node shares, so a key revoked on one node is refused by the next request
on any other, at the price of one primary-key read (a cache would need its invalidation to
reach every node before the revocation answers, which no message bus promises).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from chatd.auth import Identity, PublicKey, TokenError, verify
from chatd.domain.actors import Actor
from chatd.domain.policy import SCOPES, Scope
from chatd.store.base import ApiKeyRecord, KeyStore

PREFIX: Final = "chatd_"
_KEY_BYTES: Final = 32
_KEY = re.compile(r"^chatd_[A-Za-z0-9_-]{43}$")
# What a key's name may be: what an operator's name in `author.operator` may be.
MAX_NAME: Final = 100


def new_key() -> str:
    """A new key: `chatd_` and 32 random bytes in URL-safe base64, without padding."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).rstrip(b"=").decode()
    return PREFIX + raw


def new_key_id() -> str:
    """A key's public id: what lists show, what DELETE names, what `author.operator` says."""
    return "key_" + secrets.token_hex(8)


def is_key(credential: str) -> bool:
    """Whether `credential` is meant as an API key (a JWT never starts with `chatd_`)."""
    return credential.startswith(PREFIX)


def well_formed(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def digest(key: str) -> bytes:
    """What the store keeps of a key (see the module's docstring for why SHA-256)."""
    return hashlib.sha256(key.encode()).digest()


def parse_scopes(scopes: Sequence[str]) -> tuple[Scope, ...]:
    """The scopes in their canonical order; ValueError for an unknown, a repeated or none."""
    if not scopes:
        raise ValueError(f"scopes must name at least one of {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; the scopes are {', '.join(SCOPES)}")
    if len(set(scopes)) != len(scopes):
        raise ValueError("a scope is named twice")
    return tuple(s for s in SCOPES if s in scopes)


def clean_name(name: str) -> str:
    """A key's name, trimmed; ValueError for one that is empty or too long."""
    trimmed = name.strip()
    if not trimmed:
        raise ValueError("a key needs a name")
    if len(trimmed) > MAX_NAME:
        raise ValueError(f"a key's name is at most {MAX_NAME} characters")
    return trimmed


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as created: the record the store keeps, and the key itself, shown this once."""

    record: ApiKeyRecord
    key: str


def issue_key(shop: str, name: str, scopes: tuple[Scope, ...], at: datetime) -> IssuedKey:
    key = new_key()
    record = ApiKeyRecord(
        id=new_key_id(), shop=shop, name=name, scopes=scopes, digest=digest(key), created_at=at
    )
    return IssuedKey(record=record, key=key)


def key_actor(record: ApiKeyRecord) -> Actor:
    """The shop, acting through a key: `author.operator` is the key's id and name."""
    return Actor(
        role="seller",
        id=record.id,
        name=record.name,
        shop=record.shop,
        scopes=frozenset(record.scopes),
    )


class Credentials:
    """Verifies what a client presents, on HTTP and on `/ws` alike."""

    def __init__(self, secret: str, keys: KeyStore, public_keys: Sequence[PublicKey] = ()) -> None:
        self.secret = secret
        self.keys = keys
        self.public_keys = tuple(public_keys)

    def token(self, token: str) -> Identity:
        """A JWT's identity; TokenError for anything else."""
        return verify(self.secret, token, public_keys=self.public_keys)

    async def key(self, key: str) -> Identity:
        """A live API key's identity; TokenError for a malformed, unknown or revoked one.
        A malformed key is refused before the store is asked."""
        if not well_formed(key):
            raise TokenError("not a valid API key")
        record = await self.keys.key_by_digest(digest(key))
        if record is None:
            raise TokenError("the API key is unknown or revoked")
        # A key does not expire; it ends when it is revoked (chatd.web.key_sockets).
        return Identity(actor=key_actor(record), expires_at=math.inf, key=record.id)

    async def identify(self, credential: str) -> Identity:
        if is_key(credential):
            return await self.key(credential)
        return self.token(credential)
