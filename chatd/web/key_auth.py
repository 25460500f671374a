"""API keys over HTTP: looked up before the route runs.

A key is found in the store, which takes an `await`, while a route asks who its caller is
with the plain call `Api.actor(request)`. So this middleware looks up the key a request
carries in its `Authorization` header (`Bearer <key>`, or the key alone) first and leaves
the answer in the request's scope, where `resolved_key` reads it. Requests without a key
pass untouched, and a token is never looked up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from chatd.auth import Identity, TokenError
from chatd.credentials import Credentials, is_key

log = logging.getLogger(__name__)

_SCOPE_KEY = "chatd.api_key"


class KeyUnavailable(Exception):
    """The key could not be looked up (the store failed or is closing): 503, not 401."""


@dataclass(frozen=True, slots=True)
class _Lookup:
    key: str
    identity: Identity | None
    error: TokenError | KeyUnavailable | None


def presented_key(authorization: str) -> str | None:
    """The API key in an `Authorization` header's value, if it carries one."""
    scheme, _, rest = authorization.strip().partition(" ")
    credential = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
    return credential if is_key(credential) else None


class ResolveKeys:
    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    key = presented_key(value.decode("latin-1"))
                    break
            if key is not None:
                scope[_SCOPE_KEY] = await self._look_up(key)
        await self.app(scope, receive, send)

    async def _look_up(self, key: str) -> _Lookup:
        try:
            return _Lookup(key, await self.credentials.key(key), None)
        except TokenError as exc:
            return _Lookup(key, None, exc)
        except Exception as exc:
            # Outside the app's error handlers: the route answers 503 for it instead.
            log.warning("cannot look up an API key: %s", exc)
            return _Lookup(key, None, KeyUnavailable("cannot check the API key now"))


def resolved_key(scope: Scope, key: str) -> Identity:
    """The identity of the API key `key` that `ResolveKeys` looked up for this request;
    TokenError for an unknown or revoked key, KeyUnavailable when it could not be checked."""
    found = scope.get(_SCOPE_KEY)
    if not isinstance(found, _Lookup) or found.key != key:
        # The app runs without the middleware, or the header named another key.
        raise KeyUnavailable("API keys are not checked here")
    if found.error is not None:
        raise found.error
    assert found.identity is not None
    return found.identity
