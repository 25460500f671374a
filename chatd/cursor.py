"""Cursors: an opaque mark of a point in the log, carrying the log's identity.

A cursor is `{log_id}.{pos in hex}`. Clients must treat it as opaque; the log id lets the
server refuse a cursor from another log (a database restored from a backup, say).
"""

from __future__ import annotations


def make(log_id: str, pos: int) -> str:
    return f"{log_id}.{pos:x}"


def parse(log_id: str, cursor: str) -> int | None:
    """The position a cursor of this log marks, or None when it is not one."""
    owner, sep, hex_pos = cursor.partition(".")
    if not sep or owner != log_id or not hex_pos or len(hex_pos) > 16:
        return None
    try:
        pos = int(hex_pos, 16)
    except ValueError:
        return None
    # Positions are 64-bit signed integers in every store.
    return pos if 0 <= pos < 2**63 else None
