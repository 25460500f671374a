"""Error codes and WebSocket close codes of the wire contract (docs/protocol.md section 9)."""

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    BAD_FRAME = "bad_frame"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    BAD_CURSOR = "bad_cursor"
    RETURN_TOO_EARLY = "return_too_early"
    RETURN_ALREADY_REQUESTED = "return_already_requested"
    AMOUNT_MISMATCH = "amount_mismatch"
    CONTACTS_FORBIDDEN = "contacts_forbidden"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


# The HTTP status that fits each code when it answers an HTTP request.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.BAD_CURSOR: 400,
    ErrorCode.RETURN_TOO_EARLY: 409,
    ErrorCode.RETURN_ALREADY_REQUESTED: 409,
    ErrorCode.AMOUNT_MISMATCH: 422,
    ErrorCode.CONTACTS_FORBIDDEN: 422,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4001
