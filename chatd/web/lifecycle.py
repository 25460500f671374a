"""The life of one WebSocket connection, without I/O.

A connection awaits `hello`, replays what its cursor missed, lives, and closes. What it may do
in each phase, what a received frame becomes (a `hello` to check, a request for the service,
an answer to send at once, a refusal that closes), its rate limits and its close code are
decided here, by plain method calls, and tested without sockets or an event loop
(`tests/web/test_lifecycle.py`). `chatd.web.ws` is the shell that reads the socket, calls
the service and writes what this decides; `chatd.web.connection` writes the frames.

Every transition is in `TRANSITIONS`, in one place:

    awaiting_hello --accept--> replaying --synced--> live
          |                        |                   |
          +--------------------- close ----------------+--> closing

A transition the table does not have is a bug in the shell, and raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from chatd.web.ratelimit import TokenBucket, admit
from protocol import frames as f
from protocol.codec import Codec, DecodeError
from protocol.codes import CloseCode, ErrorCode


class Phase(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    REPLAYING = "replaying"
    LIVE = "live"
    CLOSING = "closing"


TRANSITIONS: Final[dict[tuple[Phase, str], Phase]] = {
    (Phase.AWAITING_HELLO, "accept"): Phase.REPLAYING,
    (Phase.REPLAYING, "synced"): Phase.LIVE,
    (Phase.AWAITING_HELLO, "close"): Phase.CLOSING,
    (Phase.REPLAYING, "close"): Phase.CLOSING,
    (Phase.LIVE, "close"): Phase.CLOSING,
}


class TransitionError(RuntimeError):
    """The shell asked for a transition the table does not allow."""


# ---- what a received frame becomes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckHello:
    """The first frame was `hello`: the shell verifies its token, then calls `accept` or
    `refuse`."""

    hello: f.Hello


@dataclass(frozen=True, slots=True)
class Request:
    """A request for the service; its answer goes out through `Connection.reply`."""

    frame: f.ClientFrame


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to send at once; nothing is dispatched (rate limited, bad frame)."""

    frame: f.Error
    first_bad_frame: bool = False  # the shell logs the first bad frame of a connection


@dataclass(frozen=True, slots=True)
class Refusal:
    """Send `frame`, then close with `code`: the connection ends here."""

    frame: f.Error
    code: int
    reason: str


Received = CheckHello | Request | Answer | Refusal | None


def error(
    code: ErrorCode, message: str, request_id: str | None = None, **details: object
) -> f.Error:
    return f.Error(code=code.value, message=message, id=request_id, details=details or None)


class Lifecycle:
    """One connection's phase, limits and close code."""

    def __init__(
        self,
        codec: Codec,
        own_bucket: TokenBucket,
        session: str | None = None,
    ) -> None:
        self.codec = codec
        # The connection's id (`welcome.session`), in the details of every error frame it is
        # sent, so that what a client reports can be found in the server's log.
        self.session = session
        self.phase = Phase.AWAITING_HELLO
        self._buckets: tuple[TokenBucket, ...] = (own_bucket,)
        self.close_code: int | None = None
        self.close_reason = ""
        # Events at or below this log position were sent by the replay after `hello.since`.
        self.replayed_upto = 0
        self.bad_frames = 0

    def _move(self, event: str) -> None:
        after = TRANSITIONS.get((self.phase, event))
        if after is None:
            raise TransitionError(f"{event} while {self.phase.value}")
        self.phase = after

    # ---- phases ------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.phase is Phase.LIVE

    @property
    def closing(self) -> bool:
        return self.phase is Phase.CLOSING

    def accept(self, user_bucket: TokenBucket) -> None:
        """`hello` was good: the user's shared budget joins the connection's own."""
        self._move("accept")
        self._buckets = (*self._buckets, user_bucket)

    def synced(self, replayed_upto: int) -> None:
        """The replay is sent; live events after `replayed_upto` follow."""
        self._move("synced")
        self.replayed_upto = replayed_upto

    def close(self, code: int, reason: str = "") -> bool:
        """Starts closing with `code`; False when it was already closing (the first code
        stands)."""
        if self.phase is Phase.CLOSING:
            return False
        self._move("close")
        self.close_code = code
        self.close_reason = reason
        return True

    def error(
        self, code: ErrorCode, message: str, request_id: str | None = None, **details: object
    ) -> f.Error:
        """An error frame for this connection: `details.session` names it."""
        if self.session is not None:
            details["session"] = self.session
        return error(code, message, request_id, **details)

    # ---- what the peer sent ------------------------------------------------------------------

    def receive(self, data: bytes | str) -> Received:
        """What one received frame becomes in this phase."""
        if self.phase is Phase.AWAITING_HELLO:
            return self._first(data)
        if self.phase is Phase.CLOSING:
            return None
        if self.phase is Phase.REPLAYING:
            raise TransitionError("frames are read only once the replay is sent")
        wait = admit(self._buckets)
        if wait > 0:
            return Answer(
                self.error(
                    ErrorCode.RATE_LIMITED,
                    "too many frames: slow down",
                    self.codec.request_id(data),
                    retry_after=max(0.001, round(wait, 3)),
                )
            )
        frame = self.codec.decode_client(data)
        if isinstance(frame, DecodeError):
            self.bad_frames += 1
            return Answer(
                self.error(ErrorCode.BAD_FRAME, frame.message, frame.id),
                first_bad_frame=self.bad_frames == 1,
            )
        if isinstance(frame, f.Hello):
            return Answer(self.error(ErrorCode.BAD_FRAME, "already authenticated", frame.id))
        return Request(frame)

    def _first(self, data: bytes | str) -> CheckHello | Refusal:
        frame = self.codec.decode_client(data)
        if not isinstance(frame, f.Hello):
            return self.refuse("the first frame must be hello with a valid token", frame.id)
        return CheckHello(frame)

    # ---- endings -----------------------------------------------------------------------------

    def refuse(self, message: str, request_id: str | None = None) -> Refusal:
        """No hello in time, or a bad one: `unauthorized`, then 4001."""
        self.close(CloseCode.UNAUTHORIZED, "unauthorized")
        return Refusal(
            self.error(ErrorCode.UNAUTHORIZED, message, request_id),
            CloseCode.UNAUTHORIZED,
            "unauthorized",
        )

    def too_many(self, limit: int, request_id: str | None) -> Refusal:
        """The user has `limit` connections open already: `rate_limited`, then 1008."""
        self.close(CloseCode.POLICY, "too many connections")
        return Refusal(
            self.error(ErrorCode.RATE_LIMITED, f"at most {limit} connections per user", request_id),
            CloseCode.POLICY,
            "too many connections",
        )

    def sent_already(self, pos: int | None) -> bool:
        """An event at `pos` went out with the replay and is skipped live."""
        return pos is not None and pos <= self.replayed_upto
