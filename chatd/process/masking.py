"""Hiding secrets in what chatd prints about its settings (`chatd config`, error messages).

Two kinds of secret: a setting that is one as a whole (named like a secret, a password, a
key or a token), and a password inside a URL (`postgresql://chatd:PASSWORD@db/chatd`,
`redis://:PASSWORD@cache:6379/0`, or `?password=...` in a DSN's query).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK: Final = "****"

# Words that make a setting's name a secret's; `jwt-public-key` is a file of public keys, so
# `public` takes a name out again.
_SECRET_WORDS: Final = frozenset(
    {"secret", "secrets", "password", "passwd", "pass", "key", "keys", "token", "credentials"}
)
_NOT_SECRET_WORDS: Final = frozenset({"public"})
# A query parameter whose name holds one of these (`password`, `sslpassword`, `token`).
_QUERY_SECRET: Final = re.compile(
    r"((?:^|[&;])[^=&;]*(?:password|passwd|secret|token)[^=&;]*=)[^&;]*", re.IGNORECASE
)


def is_secret_name(name: str) -> bool:
    """Whether a setting called `name` (`jwt_public_key`, `--db-password`, `CHATD_SECRET`)
    holds a secret as a whole."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    return bool(words & _SECRET_WORDS) and not words & _NOT_SECRET_WORDS


def mask_url(text: str) -> str:
    """`text` with the password of a URL in it replaced by `****`; other text unchanged."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # not a URL after all (an unclosed `[` of an IPv6 host, say)
        return MASK
    masked = _QUERY_SECRET.sub(lambda found: found.group(1) + MASK, parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        user_info, _, host = netloc.rpartition("@")
        user, colon, _password = user_info.partition(":")
        netloc = f"{user}{colon}{MASK if colon else ''}@{host}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, masked, parts.fragment))


def mask_value(name: str, text: str) -> str:
    """How the setting `name` whose value reads `text` may be shown."""
    if is_secret_name(name):
        return MASK if text else text
    return mask_url(text)
