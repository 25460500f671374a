"""Every HTTP request counted by method, route and status, timed by route; every error
answer counted by its wire code; every bad request (4xx) logged.

The route is the template of the route that took the request (`/api/v1/chats/{chat}/history`),
never the path itself: paths carry ids, and a label per id would grow without bound. A path
no route takes is `unmatched`, the browser app's files `/*`.

A bad request's line has the method, route, path (without its query string), status, the
error's code and message, the peer's address and the time taken; never a header or a body
(a token travels in `Authorization`, a message's text in the body). 429 `rate_limited` is
counted and not logged: a client over its rate would otherwise write a line per request,
the very flood the limit is there to stop. 5xx answers are counted; their causes are logged
where they happen, with their tracebacks.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence

import msgspec
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.observability.logs import fields
from chatd.web.metrics import Metrics

log = logging.getLogger("chatd.web.http")

# An error body is read for its code up to this size; chatd's are far smaller.
_MAX_ERROR_BODY = 8 * 1024
_MAX_TEXT = 200


class _ErrorBody(msgspec.Struct):
    code: str = ""
    message: str = ""


class _ErrorAnswer(msgspec.Struct):
    error: _ErrorBody


_error_decoder = msgspec.json.Decoder(_ErrorAnswer)


# `{chat:str}` reads `{chat}`, as the OpenAPI document writes it.
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def route_label(route: BaseRoute) -> str:
    if isinstance(route, Route):
        return _CONVERTER.sub(r"{\1}", route.path)
    if isinstance(route, Mount):
        return (route.path or "") + "/*"
    return "unmatched"


class ObserveHttp:
    """ASGI middleware around the whole app (HTTP only; WebSockets are counted by
    chatd.web.socket_log)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], metrics: Metrics) -> None:
        self.app = app
        # The app's own list: routes added to it later (the browser app's files) count too.
        self._routes = routes
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Matched before the app runs: starlette's router rewrites the scope as it routes.
        route = self._route(scope)
        status = 0
        error_body: bytearray | None = None

        async def observed(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status >= 400:
                    error_body = bytearray()
            elif error_body is not None and len(error_body) < _MAX_ERROR_BODY:
                error_body += message.get("body", b"")[: _MAX_ERROR_BODY - len(error_body)]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            # No answer started: the app raised, and uvicorn answers 500 for it.
            self._observe(scope, route, status or 500, time.perf_counter() - started, error_body)

    def _route(self, scope: Scope) -> str:
        partial: BaseRoute | None = None
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route_label(route)
            if match is Match.PARTIAL and partial is None:
                partial = route  # the path is the route's, the method is not (405)
        return route_label(partial) if partial is not None else "unmatched"

    def _observe(
        self, scope: Scope, route: str, status: int, seconds: float, error_body: bytearray | None
    ) -> None:
        method = str(scope.get("method", ""))
        self._metrics.observe_http(method, route, status, seconds)
        if error_body is None:
            return
        code, message = _error_of(bytes(error_body))
        if code:
            self._metrics.errors[("http", code)] += 1
        if 400 <= status < 500 and status != 429:
            client = scope.get("client")
            peer = client[0] if client else None
            # The peer and the path in the message itself: a line repeated word for word is
            # let through once per 10 s (chatd.process.guard.RateLimitedLog), so one client
            # repeating one bad request is held back and counted, and others are not.
            log.info(
                "bad request %s %s %d from %s",
                method,
                _short(str(scope.get("path", ""))),
                status,
                peer,
                extra=fields(
                    event="http_bad_request",
                    method=method,
                    route=route,
                    path=_short(str(scope.get("path", ""))),
                    status=status,
                    code=code or None,
                    message=_short(message) or None,
                    peer=peer,
                    duration=round(seconds, 4),
                ),
            )


def _error_of(body: bytes) -> tuple[str, str]:
    """The code and message of chatd's `{"error": {code, message}}`, else empty strings."""
    try:
        answer = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "", ""
    return answer.error.code, answer.error.message


def _short(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
