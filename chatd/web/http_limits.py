"""Rate limits over HTTP: a token bucket per user or API key (`chatd.web.ratelimit`), on every
request under `/api/`, with the budget told in every answer.

Who a request is comes from its credentials, read as the routes read them (`identify`): a
user is named by `chatd.service.user_key` (role, shop and id), so the budget is shared by all
of one user's requests and never by two users. A request without valid credentials is
counted against its client address instead: it is answered 401 anyway, and guessing
credentials must cost as much as any other request.

The marketplace's back end (`system`) has a budget of its own, larger by default: it is one
trusted client whose load is the marketplace's (orders and logistics), and it must not be
throttled like a shop's script, but a runaway loop of it must still not take the server.

Every answer carries `X-RateLimit-Limit` (the burst: the most requests that may be made at
once), `X-RateLimit-Remaining` (whole requests left now) and `X-RateLimit-Reset` (whole
seconds until the bucket is full again); a request past the budget is 429 `rate_limited`
with `Retry-After` (whole seconds, at least 1) and `details.retry_after` (seconds, to the
millisecond), and is not handled: it spends nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from chatd.domain.actors import Actor
from chatd.service import user_key
from chatd.web.http import error_response
from chatd.web.ratelimit import TokenBucket, admit
from protocol.codes import ErrorCode

# Buckets kept before the idle ones (full again: forgetting them changes nothing) are dropped.
_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class HttpLimitSettings:
    rate: float = 10.0
    burst: float = 20.0
    system_rate: float = 1000.0
    system_burst: float = 2000.0


Identify = Callable[[Request], Awaitable[Actor | None]]


class HttpLimits:
    """ASGI middleware around the app: outside starlette, so that every answer under `/api/`
    carries the headers, its own 500s included."""

    def __init__(
        self,
        app: Any,
        identify: Identify,
        settings: HttpLimitSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.identify = identify
        self.settings = settings
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._prune_at = _KEEP

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        bucket = self._bucket(await self._who(Request(scope)))
        wait = admit([bucket])
        headers = [
            (b"x-ratelimit-limit", b"%d" % math.floor(bucket.burst)),
            (b"x-ratelimit-remaining", b"%d" % math.floor(bucket.left())),
            (b"x-ratelimit-reset", b"%d" % math.ceil(bucket.full_in())),
        ]
        if wait > 0:
            await _refuse(send, wait, headers)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _who(self, request: Request) -> str:
        actor = await self.identify(request)
        if actor is not None:
            return user_key(actor)
        return "addr:" + (request.client.host if request.client else "")

    def _bucket(self, who: str) -> TokenBucket:
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune()
            settings = self.settings
            if who.startswith("sys:"):
                bucket = TokenBucket(settings.system_rate, settings.system_burst, self.clock)
            else:
                bucket = TokenBucket(settings.rate, settings.burst, self.clock)
            self._buckets[who] = bucket
        return bucket

    def _prune(self) -> None:
        """Forgets the buckets that are full again: a new one would be the same."""
        self._buckets = {
            who: bucket
            for who, bucket in self._buckets.items()
            if bucket.wait() > 0 or bucket.left() < bucket.burst
        }
        # Amortised: when most buckets are busy, the next pruning waits until there are
        # twice as many, so that a crowd of active users does not make every request O(n).
        self._prune_at = max(_KEEP, 2 * len(self._buckets))

    @property
    def tracked(self) -> int:
        """How many buckets are kept now."""
        return len(self._buckets)


async def _refuse(send: Any, wait: float, headers: list[tuple[bytes, bytes]]) -> None:
    retry = max(0.001, round(wait, 3))
    response = error_response(
        ErrorCode.RATE_LIMITED,
        f"too many requests: retry in {retry} s",
        {"retry_after": retry},
    )
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    raw += [*headers, (b"retry-after", b"%d" % max(1, math.ceil(wait)))]
    await send({"type": "http.response.start", "status": response.status_code, "headers": raw})
    await send({"type": "http.response.body", "body": response.body})
