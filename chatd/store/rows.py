"""Rows of the projections, as the projector derives them from events.

The service derives them before it appends (`chatd.projection`), and every backend writes
them with its own SQL in the same transaction as the events they come from, so a read after
an ack sees them; the store runs no domain code. A row names an event of its append by its
`seq` in the append's stream: only the store knows the event's log position, and it puts it
in. `chatd rebuild` derives the rows again from the log.
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
    """The chat's latest event that everyone who sees the chat sees (not a note of the shop's:
    chatd.projection), and the oldest buyer message the shop has not answered."""

    chat: str
    last_seq: int  # the store writes the log position of this event too
    waiting_since: datetime | None
    managers_from: int | None


@dataclass(frozen=True, slots=True)
class SearchRow:
    seq: int  # the event whose text this is
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
    seq: int  # the event that registered it
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
    """A file the log names: sent in a chat, or an order's photo. `chat` is the stream that
    names it: a chat's, or an order's (`order:{id}`), which no chat's listing ever reads."""

    chat: str
    seq: int
    file: str
    name: str
    mime: str
    size: int
    at: datetime


Row = ChatRow | ChatActivityRow | SearchRow | ClaimRow | OrderRow | LedgerRow | FileRow
