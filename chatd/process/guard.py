"""Connections that never make a request must not exhaust the server.

uvicorn closes a keep-alive connection that stays idle after a response, but a connection
that never sends a request, or sends part of its headers and stops, is kept forever: about
21 000 of them used up the process's file limit, after which every accept failed, `/healthz`
and new WebSockets timed out, and asyncio logged each failed accept. Three guards:

- `guarded_protocol`: uvicorn's httptools protocol with a deadline for a request's headers
  (from the connection's start, and again from the first byte of each later request on a
  kept-alive connection); a connection past it is closed. A WebSocket has its headers once it
  upgrades; from then on the `hello` deadline applies.
- the same protocol holds a request's body to a pace: once its headers are in, the body has
  the same deadline to start arriving, and each `BODY_MIN_RATE` bytes that arrive buy one
  more second. A body that trickles in (a byte a second to a route that reads it, or to one
  that answered early and discards it) no longer keeps its connection for ever; a client
  sending at any real speed never meets the deadline. Time in which the server itself holds
  the body back (flow control, or a `100 Continue` not yet sent) does not count;
- the same protocol refuses a connection past `max_connections` open ones at once, with a
  503 and a JSON error, before it can hold anything;
- `raise_file_limit` lifts the soft limit of open files to the hard one, and
  `connection_cap` keeps the cap below it, so accepting never fails for want of files;
- `RateLimitedLog` lets a message that repeats through a log (a failing accept, say) through
  once per interval, with a count of what it held back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Files the process keeps for itself beyond its connections: the database and its WAL,
# uploads being written, the log, the loop's own.
RESERVED_FILES = 256
# Distinct log lines `RateLimitedLog` remembers at most.
_MAX_REMEMBERED = 10_000
# The slowest pace a request body may keep, in bytes a second, after its first deadline.
BODY_MIN_RATE = 500


def raise_file_limit() -> int:
    """Raises the soft limit of open files to the hard limit; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int | None, file_limit: int) -> int:
    """`wanted` connections, or as many as the file limit leaves room for."""
    room = max(1, file_limit - RESERVED_FILES)
    return room if wanted is None else max(1, min(wanted, room))


def _refusal() -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "unavailable",
                "message": "the server has as many connections open as it takes; try again",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


_REFUSAL = _refusal()


def guarded_protocol(*, header_timeout: float, max_connections: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the two connection guards (see the module)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None
        _body_deadline: asyncio.TimerHandle | None = None
        _body_since = 0.0
        _body_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # `connections` holds every open connection of the server, WebSockets included,
            # this one too.
            if len(self.connections) > max_connections:
                self.connections.discard(self)
                transport.write(_REFUSAL)
                transport.close()
                return
            self._await_headers()

        def _await_headers(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(header_timeout, self._too_slow)

        def _headers_arrived(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._await_headers()

        def on_headers_complete(self) -> None:
            self._headers_arrived()
            super().on_headers_complete()
            # A WebSocket has no body: its `hello` deadline takes over once it upgrades.
            if not self.parser.should_upgrade():
                self._await_body()

        def handle_websocket_upgrade(self) -> None:
            super().handle_websocket_upgrade()
            # The transport belongs to the WebSocket protocol now. The parser holds this
            # object's callbacks and this object the parser: a reference cycle that would
            # leave the connection's objects for the garbage collector to find.
            self.parser = None  # type: ignore[assignment]

        def _await_body(self) -> None:
            self._body_arrived()
            self._body_since = self.loop.time()
            self._body_bytes = 0
            self._body_deadline = self.loop.call_later(header_timeout, self._body_too_slow)

        def _body_arrived(self) -> None:
            if self._body_deadline is not None:
                self._body_deadline.cancel()
                self._body_deadline = None

        def _body_too_slow(self) -> None:
            self._body_deadline = None
            transport = self.transport
            if transport.is_closing() or transport.get_protocol() is not self:
                return
            now = self.loop.time()
            cycle = self.cycle
            held_back = self.flow.read_paused or (
                cycle is not None and cycle.waiting_for_100_continue and not cycle.response_complete
            )
            if held_back:
                # The server, not the client, stops the body now: a new first deadline.
                self._body_since, self._body_bytes = now, 0
            allowed = self._body_since + header_timeout + self._body_bytes / BODY_MIN_RATE
            if now < allowed:
                self._body_deadline = self.loop.call_later(allowed - now, self._body_too_slow)
                return
            transport.close()

        def on_body(self, body: bytes) -> None:
            self._body_bytes += len(body)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._body_arrived()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_arrived()
            self._body_arrived()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


class RateLimitedLog(logging.Filter):
    """Passes each message (by logger and text) at most once per `interval` seconds; the
    next one that passes says how many were held back. Messages that differ (one line per
    connection, say) all pass; the same line over and over does not."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        now = time.monotonic()
        if len(self._last) > _MAX_REMEMBERED:
            self._last.clear()  # forget old lines rather than grow without bound
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more in the last {self.interval:g} s)"
            record.args = None
        return True


def limit_repeated_logs(*names: str, interval: float = 10.0) -> None:
    """Installs one `RateLimitedLog` on every handler of the named loggers ("" is the root):
    a logger's own filters would miss what its children log."""
    limit = RateLimitedLog(interval)
    for name in names:
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(limit)
