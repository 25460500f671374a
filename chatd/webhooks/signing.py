"""The Standard Webhooks signature scheme: secrets, message ids and signatures.

A secret is `whsec_` and the base64 of random bytes; the HMAC key is those bytes, not the
text. A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature`: `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
# 32 random bytes: the scheme asks for at least 24, and HMAC-SHA256 takes 32 at no cost.
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret: its decoded bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def message_id(endpoint: str, pos: int) -> str:
    """The `webhook-id` of the event at log position `pos` for one endpoint: the same for
    every attempt, so that a receiver drops repeats by it, and different per endpoint."""
    return f"{endpoint}_{pos}"


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
