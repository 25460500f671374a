"""What the SDK raises. `ClientError` is the root; every error the server answered carries its
wire code (`ChatError.code`, one of `protocol.codes.ErrorCode`)."""

from __future__ import annotations

from typing import Any

from protocol.codes import ErrorCode
from protocol.frames import Error


class ClientError(Exception):
    """The root of every error the SDK raises."""


class ChatError(ClientError):
    """The server refused a request: `code` is the wire code, `details` its details.

    >>> error = ChatError("return_too_early", "too early", {"opens_at": "2030-01-01T00:00:00Z"})
    >>> error.code == ErrorCode.RETURN_TOO_EARLY, error.details["opens_at"]
    (True, '2030-01-01T00:00:00Z')
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        known = code in ErrorCode._value2member_map_
        self.code: ErrorCode | str = ErrorCode(code) if known else code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.status = status  # the HTTP status, for errors of the HTTP API

    @classmethod
    def from_frame(cls, frame: Error) -> ChatError:
        kind = _BY_CODE.get(frame.code, ChatError)
        return kind(frame.code, frame.message, frame.details)

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again (`rate_limited`)."""
        value = self.details.get("retry_after")
        return float(value) if isinstance(value, int | float) else None


class Unauthorized(ChatError):
    """The token was refused or expired (close code 4001) and no fresh one was to be had."""


class CursorLost(ChatError):
    """The server did not know the cursor (`bad_cursor`): events before the connection may
    have been missed, so reload the chats. Live events go on; iterate again to get them."""


class ConnectionLost(ClientError):
    """The connection is gone for good, or dropped while a request that is not safe to
    repeat was in flight (`maybe_applied`: the server may have carried it out)."""

    def __init__(
        self, message: str, *, close_code: int | None = None, maybe_applied: bool = False
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.maybe_applied = maybe_applied


class ProtocolViolation(ClientError):
    """The server answered with a frame the contract does not allow here."""


_BY_CODE: dict[str, type[ChatError]] = {
    ErrorCode.UNAUTHORIZED.value: Unauthorized,
    ErrorCode.BAD_CURSOR.value: CursorLost,
}
