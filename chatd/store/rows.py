"""Rows of the projections, as the projector derives them from events.

Every backend writes these with its own SQL in the same transaction as the events they come
from, so a read after an ack sees them. `chatd rebuild` derives them again from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ChatRow:
    chat: str
    buyer_id: str
    buyer_name: str
    seller_id: str
    seller_name: str


@dataclass(frozen=True, slots=True)
class ChatActivityRow:
    """The chat's latest event, and the oldest buyer message the shop has not answered."""

    chat: str
    last_pos: int
    last_seq: int
    waiting_since: datetime | None
    managers_from: int | None


@dataclass(frozen=True, slots=True)
class SearchRow:
    pos: int
    chat: str
    text: str  # normalised for search (see chatd.search_text)


@dataclass(frozen=True, slots=True)
class ClaimRow:
    claim: str
    chat: str
    order: str
    state: str


@dataclass(frozen=True, slots=True)
class OrderRow:
    order: str
    buyer_id: str
    buyer_name: str
    seller_id: str
    seller_name: str
    pos: int
    card: bytes  # the OrderCard as MessagePack, exactly as registered


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One refund: the buyer's balance gains `value`, the shop's loses it."""

    claim: str
    order: str
    buyer_id: str
    seller_id: str
    value: int
    currency: str
    at: datetime
    article: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileRow:
    chat: str
    pos: int
    seq: int
    file: str
    name: str
    mime: str
    size: int
    at: datetime


Row = ChatRow | ChatActivityRow | SearchRow | ClaimRow | OrderRow | LedgerRow | FileRow
