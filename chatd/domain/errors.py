"""A rejected command: the wire error code, a human message, and optional details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.codes import ErrorCode


@dataclass(frozen=True, slots=True)
class Rejection:
    code: ErrorCode
    message: str
    details: dict[str, Any] | None = field(default=None)


def not_found(what: str) -> Rejection:
    # One message for "absent" and "not yours", so that nobody learns a foreign chat exists.
    return Rejection(ErrorCode.NOT_FOUND, f"no such {what}")


def conflict(message: str) -> Rejection:
    return Rejection(ErrorCode.CONFLICT, message)


def forbidden(message: str) -> Rejection:
    return Rejection(ErrorCode.FORBIDDEN, message)


def bad_frame(message: str) -> Rejection:
    return Rejection(ErrorCode.BAD_FRAME, message)
