"""The log lines and close counts of WebSocket connections (chatd.web.ws calls these).

Every socket the server accepts writes at most two lines: `ws open` once its `hello` is
accepted, and exactly one of `ws closed` or `ws refused` (its `hello` was refused, or never
came) when it ends. A handshake refused before the socket exists (an Origin not allowed,
the server stopping) writes `ws handshake refused`. The closing line carries everything
about the connection at once: who, how long, frames each way, the close code, and the
error frames it was sent counted by code. Error frames get no line of their own: a client
can be sent one per frame it sends, and a line each would let any client flood the log (the
first undecodable frame of a connection still gets a `bad frame` line, for the reason).

`session` is the connection's id: the `session` of its `welcome` and `details.session` of
every error frame it is sent, so a client's report leads to these lines.

Nothing here logs a token, an API key or a message's text: the fields are ids, roles,
codes, counts and times (`tests/e2e/test_operations.py` checks the log of a real session).

Each message names its session (and a refused handshake its peer): the process lets a line
that repeats word for word through once per 10 s (chatd.process.guard.RateLimitedLog), which
must hold back floods, not the lines of distinct connections.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from chatd.domain.actors import Actor
from chatd.observability.logs import fields
from chatd.web.metrics import Metrics

log = logging.getLogger("chatd.web.ws")

# What `by` says: chatd closed the connection, or the close came from the socket (the
# client's close frame, a connection that dropped, or the WebSocket layer failing it: 1009
# for a frame too large, 1007 for text that is not UTF-8).
SERVER = "server"
PEER = "peer"

_MAX_TEXT = 200


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= _MAX_TEXT:
        return text
    return text[: _MAX_TEXT - 1] + "…"


def _who(actor: Actor | None) -> dict[str, object]:
    if actor is None:
        return {}
    return {"user": actor.id, "role": actor.role, "shop": actor.shop}


def opened(
    *,
    session: str,
    actor: Actor,
    subprotocol: str | None,
    peer: str | None,
    resumed: bool,
    key: str | None,
) -> None:
    """The connection's `hello` was accepted. `key` is an API key's id (never the key)."""
    log.info(
        "ws open %s",
        session,
        extra=fields(
            event="ws_open",
            session=session,
            **_who(actor),
            key=key,
            subprotocol=subprotocol,
            peer=peer,
            resumed=resumed,
        ),
    )


@dataclass(frozen=True, slots=True)
class Ending:
    """How one accepted connection ended."""

    session: str
    actor: Actor | None
    subprotocol: str | None
    peer: str | None
    code: int | None
    by: str
    reason: str | None
    refused: str | None  # why its hello was refused, when it was
    frames_in: int
    frames_out: int
    seconds: float
    errors: Counter[str] | None


def ended(metrics: Metrics, end: Ending) -> None:
    """Counts the close (`chatd_ws_closes_total`) and writes its line."""
    metrics.closed(end.code, end.by)
    line = fields(
        event="ws_refused" if end.refused is not None else "ws_close",
        session=end.session,
        **_who(end.actor),
        subprotocol=end.subprotocol,
        peer=end.peer,
        code=end.code,
        by=end.by,
        reason=_short(end.reason) or None,
        refused=_short(end.refused),
        frames_in=end.frames_in,
        frames_out=end.frames_out,
        duration=round(end.seconds, 3),
        errors=dict(end.errors) if end.errors else None,
    )
    if end.refused is not None:
        log.info("ws refused %s: %s", end.session, _short(end.refused), extra=line)
    else:
        log.info("ws closed %s: %s by %s", end.session, end.code, end.by, extra=line)


def handshake_refused(metrics: Metrics, reason: str, peer: str | None, origin: str | None) -> None:
    """A handshake refused with HTTP 403 before the socket was accepted."""
    metrics.refused_handshakes[reason] += 1
    log.info(
        "ws handshake refused (%s) from %s",
        reason,
        peer,
        extra=fields(event="ws_handshake_refused", reason=reason, peer=peer, origin=_short(origin)),
    )
