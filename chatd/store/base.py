"""What a store promises, in two contracts.

`EventLog` is the narrow one: an append-only log of streams, a per-user feed, read marks. A
stream is one chat (or one order). Appends carry the stream's expected last `seq`; the
database's unique (stream, seq) key, not a lock in memory, decides races. Every event also
gets a global position `pos`, increasing in commit order, that orders the per-user feed.

`ReadModel` answers the queries of the projections (chat lists, search, claims, ledger,
files, orders). The service derives projection rows from events and hands them to the
append, so that a backend writes them in the same transaction as their events; a backend is
one class that keeps both (`EventStore`), and each contract has its own test suite
(`tests/store/`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from chatd.store.rows import Row
from protocol.events import Event


class StoreError(Exception):
    """The root of what a store raises on purpose."""


class Conflict(StoreError):
    """The stream's last seq is no longer the one the append expected."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream}: expected seq {expected}, found {actual}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class Refused(StoreError):
    """A constraint of the database refused the append (a second refund for a claim, say)."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"stream {stream}: {reason}")
        self.stream = stream


class StoreClosed(StoreError):
    """The store is closed or closing: nothing more is accepted."""


class SearchTooBroad(StoreError):
    """A search would cost more than a request may (its budget of work ran out); the query
    needs more or longer words, or a chat."""


@dataclass(frozen=True, slots=True)
class Stored:
    """An event with its global position in the log."""

    pos: int
    event: Event


@dataclass(frozen=True, slots=True)
class Audience:
    """A routing key that may see a stream from `from_seq` on (`b:{buyer}`, `s:{shop}`, `m`)."""

    key: str
    from_seq: int = 1


@dataclass(frozen=True, slots=True)
class AppendRequest:
    stream: str
    expected_seq: int
    events: list[Event]
    audiences: tuple[Audience, ...] = ()
    # The projection rows of these events, written in the same transaction.
    rows: Sequence[Row] = ()
    # (user id, nonce): a second append with the same pair appends nothing.
    nonce: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append wrote; for a repeated nonce, `duplicate` and the original first event."""

    events: list[Stored]
    duplicate: bool = False
    stream: str = ""
    seq: int = 0
    pos: int = 0


@dataclass(frozen=True, slots=True)
class ChatListEntry:
    chat: str
    buyer_id: str
    buyer_name: str
    seller_id: str
    seller_name: str
    last_pos: int
    last_seq: int
    waiting_since: datetime | None
    managers_from: int | None


@dataclass(frozen=True, slots=True)
class FileEntryRow:
    pos: int
    seq: int
    file: str
    name: str
    mime: str
    size: int
    at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    at: datetime
    order: str
    article: str
    name: str
    value: int
    currency: str
    reason: str


class EventLog(abc.ABC):
    """The log. One instance per process; methods are coroutine-safe."""

    @property
    @abc.abstractmethod
    def log_id(self) -> str:
        """Identifies this log: cursors from another log are refused."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Commits what was accepted, then closes."""

    # ---- the log ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def append(self, request: AppendRequest) -> Appended:
        """Durably appends the events (all or none) and returns once committed.

        Raises Conflict when the stream's last seq is not `request.expected_seq`.
        """

    @abc.abstractmethod
    async def read_stream(
        self, stream: str, *, after: int = 0, before: int | None = None, limit: int | None = None
    ) -> list[Stored]:
        """Events of one stream with after < seq < before, ascending; with `limit` and
        `before`, the newest `limit` of them (still ascending)."""

    @abc.abstractmethod
    async def last_position(self) -> int:
        """The position of the newest committed event (0 for an empty log)."""

    @abc.abstractmethod
    async def read_feed(self, keys: list[str], after: int, limit: int) -> list[Stored]:
        """Events after position `after` of streams that any of `keys` may see, ascending by
        position, each from its audience's `from_seq` on."""

    @abc.abstractmethod
    async def read_all(self, after: int, limit: int) -> list[Stored]:
        """Every event after `after`, ascending by position (export, rebuild)."""

    # ---- read marks (primary data, not a projection: a mark is no event of the chat) ---------

    @abc.abstractmethod
    async def set_read_mark(self, chat: str, side: str, seq: int) -> int:
        """Raises the side's mark to `seq` (never lowers it); returns the mark now in force."""

    @abc.abstractmethod
    async def read_marks(self, chat: str) -> dict[str, int]: ...


class ReadModel(abc.ABC):
    """The projections' queries. Rows reach them through `AppendRequest.rows`."""

    @abc.abstractmethod
    async def list_chats(self, key: str, before_pos: int | None, limit: int) -> list[ChatListEntry]:
        """The chats `key` may see, most recent activity first, below `before_pos`."""

    @abc.abstractmethod
    async def chat_entry(self, chat: str) -> ChatListEntry | None: ...

    @abc.abstractmethod
    async def count_unread(self, chat: str, side: str, after_seq: int) -> int:
        """Events with a text after `after_seq` written by the other side or the system."""

    @abc.abstractmethod
    async def claims_of_chat(self, chat: str) -> list[tuple[str, str, str]]:
        """(claim, order, state) of a chat's claims."""

    @abc.abstractmethod
    async def chat_of_claim(self, claim: str) -> str | None: ...

    @abc.abstractmethod
    async def waiting_claims(self) -> list[tuple[str, str]]:
        """(claim, chat) of every claim whose wait ends by itself: a request waiting for
        the shop's decision, an offer waiting for the buyer's answer."""

    @abc.abstractmethod
    async def order_card(self, order: str) -> bytes | None: ...

    @abc.abstractmethod
    async def orders_between(self, buyer: str, seller: str) -> list[bytes]:
        """Order cards of one buyer from one shop, newest first."""

    @abc.abstractmethod
    async def party_name(self, key: str) -> str | None:
        """The latest name an order gave `b:{buyer}` or `s:{shop}`."""

    @abc.abstractmethod
    async def search(
        self, key: str, words: list[str], chat: str | None, limit: int
    ) -> list[Stored]:
        """Events whose text has every one of `words` (normalised, see chatd.search_text) as
        a word prefix, in chats `key` may see, newest first."""

    @abc.abstractmethod
    async def files_of_chat(self, chat: str) -> list[FileEntryRow]: ...

    @abc.abstractmethod
    async def chats_with_file(self, file: str) -> list[str]:
        """The chats in which a file was sent."""

    @abc.abstractmethod
    async def balances(self, key: str) -> dict[str, int]:
        """Currency -> minor units, for `b:{buyer}` or `s:{shop}`."""

    @abc.abstractmethod
    async def sales_report(self, seller: str) -> list[LedgerEntry]: ...

    @abc.abstractmethod
    async def rebuild(self, project: Callable[[Stored], list[Row]]) -> None:
        """Drops every projection and writes what `project` derives from each event of the
        log, in position order, instead."""


class EventStore(EventLog, ReadModel):
    """A backend: the log, and the read model it writes in the same transactions."""
