"""The app's entry: a WebSocket on the socket path goes straight to its handler.

Every ASGI layer a connection passes through stays suspended for as long as the connection
lasts: for an HTTP request a few milliseconds, for a socket its whole life. Through chatd's
HTTP middleware (ObserveHttp, SecurityHeaders, AnswerHttpInTime, ResolveKeys, HttpLimits) and
Starlette's own layers (its error and exception middleware, the router, the route's session
wrapper) an idle socket kept about fifteen coroutine frames, ~4-5 KiB of the ~31 KiB it
costs. None of them does anything for the socket: the HTTP middleware pass WebSockets
through untouched, and the socket's handler answers its failures itself (close codes,
`error` frames); one it does not foresee is logged by uvicorn, which closes the socket with
1011. So the entry hands the socket's scope to the handler directly, in a plain function
call that returns the handler's coroutine and keeps no frame of its own. Everything else
(HTTP, the lifespan, a WebSocket on any other path) goes through the whole stack; the
router has no route for the socket path.

uvicorn cannot tell the ASGI version of an app whose `__call__` is not a coroutine
function: it is told ASGI 3 (`chatd.process.server.uvicorn_config`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from chatd.web.wire import expose_wire

SocketHandler = Callable[[WebSocket], Awaitable[None]]


class Entry:
    """The ASGI app a server runs: `socket_path` to `serve_socket`, the rest to `http`."""

    __slots__ = ("_http", "_serve_socket", "_socket_path")

    def __init__(self, http: ASGIApp, socket_path: str, serve_socket: SocketHandler) -> None:
        self._http = http
        self._socket_path = socket_path
        self._serve_socket = serve_socket

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[Any]:
        if scope["type"] == "websocket" and scope["path"] == self._socket_path:
            expose_wire(scope, send)
            return self._serve_socket(WebSocket(scope, receive, send))
        return self._http(scope, receive, send)
