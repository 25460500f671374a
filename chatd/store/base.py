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

`KeyStore` keeps the shops' API keys beside them (primary data, no projection of the log:
a key is no event of any chat); its contract is `KeyStoreContract` in the same suite.
`WebhookStore` keeps the shops' webhook endpoints and their progress through the log the
same way (`WebhookStoreContract`), `TemplateStore` the shops' canned replies
(`TemplateStoreContract`), and `OperatorStore` the operators each shop is known to have
(`OperatorStoreContract`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
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


class StoreUnavailable(StoreError):
    """The database did not answer in time, or the connection to it failed: a write may
    or may not have been carried out (a nonce makes its resend harmless)."""


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
    """A routing key that may see a stream from `from_seq` on (`b:{buyer}`, `s:{shop}`, `m`),
    but for its events of the kinds in `hidden` (the shop's notes, for the buyer): those
    are never in the key's feed, and the key's reader sees a gap in `seq` where they are."""

    key: str
    from_seq: int = 1
    hidden: frozenset[str] = frozenset()

    def receives(self, seq: int, kind: str) -> bool:
        return seq >= self.from_seq and kind not in self.hidden


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
        self,
        stream: str,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int | None = None,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        """Events of one stream with after < seq < before, ascending; with `limit` and
        `before`, the newest `limit` of them (still ascending). Events of the kinds in
        `hide_kinds` are left out, and `limit` counts only the others."""

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
    async def count_unread(
        self, chat: str, side: str, after_seq: int, hide_kinds: Collection[str] = ()
    ) -> int:
        """Events with a text after `after_seq` written by the other side or the system,
        but for those of the kinds in `hide_kinds`."""

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
    async def claims_seen_by(
        self, key: str, state: str | None = None, order: str | None = None
    ) -> list[tuple[str, str]]:
        """(claim, chat) of the claims in the chats `key` may see (`s:{shop}`, `b:{buyer}`;
        for the managers, the chats with a disputed claim), ascending by claim; only those in
        `state` (a claim or goods state) and of `order` when given."""

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
        self,
        key: str,
        words: list[str],
        chat: str | None,
        limit: int,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        """Events whose text has every one of `words` (normalised, see chatd.search_text) as
        a word prefix, in chats `key` may see, newest first; none of the kinds in
        `hide_kinds`, and `limit` counts only the others."""

    @abc.abstractmethod
    async def files_of_chat(self, chat: str) -> list[FileEntryRow]: ...

    @abc.abstractmethod
    async def chats_with_file(self, file: str) -> list[str]:
        """The chats in which a file was sent (an order naming it as its photo is none)."""

    @abc.abstractmethod
    async def orders_with_file(self, file: str) -> list[str]:
        """The ids of the registered orders whose card names a file as its photo, ascending."""

    @abc.abstractmethod
    async def balances(self, key: str) -> dict[str, int]:
        """Currency -> minor units, for `b:{buyer}` or `s:{shop}`."""

    @abc.abstractmethod
    async def sales_report(self, seller: str) -> list[LedgerEntry]: ...

    @abc.abstractmethod
    async def rebuild(self, project: Callable[[Stored], list[Row]]) -> None:
        """Drops every projection and writes what `project` derives from each event of the
        log, in position order, instead."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A shop's API key as the store keeps it: never the key, only its SHA-256 (`digest`;
    chatd.credentials says why that is enough)."""

    id: str
    shop: str
    name: str
    scopes: tuple[str, ...]
    digest: bytes
    created_at: datetime


class KeyStore(abc.ABC):
    """The shops' API keys. Writes are durable when they return, and every node reads what
    any node wrote: revoking is at once everywhere because each request reads the store."""

    @abc.abstractmethod
    async def create_key(self, record: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    async def key_by_digest(self, digest: bytes) -> ApiKeyRecord | None:
        """The live (not revoked) key with this digest."""

    @abc.abstractmethod
    async def keys_of_shop(self, shop: str) -> list[ApiKeyRecord]:
        """The shop's live keys, oldest first."""

    @abc.abstractmethod
    async def revoke_key(self, shop: str, key: str, at: datetime) -> bool:
        """Revokes the shop's live key `key`; False when the shop has no such live key."""

    @abc.abstractmethod
    async def live_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` (ids) that are live."""


# How many delivery attempts the store keeps per webhook endpoint: the newest, for
# `GET /api/v1/webhooks/{id}/deliveries`; older ones are dropped as new ones are written.
DELIVERIES_KEPT = 200


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A shop's webhook endpoint. `events` are the kinds it asked for, or `("*",)`; the
    secret is kept as it was issued (`whsec_...`), since every delivery is signed with it."""

    id: str
    shop: str
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookProgress:
    """Where an endpoint's deliveries stand: every event of the shop's feed up to log
    position `cursor` was delivered or given up; the next one owed has had `attempts`
    failed attempts, and the next attempt is due at `retry_at` (None: at once)."""

    cursor: int
    attempts: int = 0
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One attempt to deliver one event to one endpoint. `outcome` is `delivered`,
    `retrying` (it failed and will be tried again) or `failed` (the last try failed);
    `status` is the endpoint's HTTP status when it answered."""

    endpoint: str
    message: str  # the `webhook-id` header
    pos: int
    chat: str
    seq: int
    kind: str
    attempt: int
    at: datetime
    outcome: str
    status: int | None = None
    error: str | None = None


class WebhookStore(abc.ABC):
    """The shops' webhook endpoints, each with its progress through the shop's feed and a
    lease that lets one node at a time deliver to it (chatd.webhooks.delivery), and the
    log of delivery attempts. Primary data beside the log, like the keys: no projection.

    Every write that moves an endpoint's progress names the lease's `owner` and does nothing
    (answering False) unless that owner holds the lease of an endpoint not deleted: a node
    that lost its lease, or an endpoint deleted meanwhile, can no longer move anything."""

    @abc.abstractmethod
    async def create_webhook(self, record: WebhookRecord, cursor: int) -> None:
        """A new endpoint, owed the shop's events after log position `cursor`."""

    @abc.abstractmethod
    async def webhooks_of_shop(self, shop: str) -> list[WebhookRecord]:
        """The shop's endpoints not deleted, oldest first."""

    @abc.abstractmethod
    async def live_webhooks(self) -> list[WebhookRecord]:
        """Every endpoint not deleted, of every shop, by id."""

    @abc.abstractmethod
    async def delete_webhook(self, shop: str, endpoint: str, at: datetime) -> bool:
        """Deletes the shop's endpoint (its lease with it); False when the shop has no such
        endpoint. Its deliveries are kept."""

    @abc.abstractmethod
    async def lease_webhook(
        self, endpoint: str, owner: str, now: datetime, until: datetime
    ) -> WebhookProgress | None:
        """Takes the endpoint's lease for `owner` until `until`, when it is free, expired
        (at `now`) or already `owner`'s; the endpoint's progress then, else None (held by
        another, deleted, or no such endpoint)."""

    @abc.abstractmethod
    async def renew_webhook_leases(self, owner: str, until: datetime) -> set[str]:
        """Extends every lease `owner` holds on an endpoint not deleted to `until`; their
        ids."""

    @abc.abstractmethod
    async def release_webhook(self, endpoint: str, owner: str) -> None:
        """Gives up `owner`'s lease of the endpoint, if it holds it."""

    @abc.abstractmethod
    async def advance_webhook(
        self,
        endpoint: str,
        owner: str,
        progress: WebhookProgress,
        delivery: DeliveryRecord | None = None,
    ) -> bool:
        """Sets the endpoint's progress and records `delivery` in its log, in one
        transaction, if `owner` holds its lease and `progress.cursor` is not behind the
        stored one; False, with nothing written, otherwise."""

    @abc.abstractmethod
    async def webhook_deliveries(self, endpoint: str, limit: int) -> list[DeliveryRecord]:
        """The endpoint's latest attempts, newest first, at most `limit` (the store keeps
        `DELIVERIES_KEPT`)."""


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """A shop's canned reply (chatd.domain.templates says what its fields may hold)."""

    id: str
    shop: str
    shortcut: str
    title: str
    text: str
    created_at: datetime
    updated_at: datetime


class ShortcutTaken(StoreError):
    """Another template of the shop has this shortcut (unique per shop)."""


class TooManyTemplates(StoreError):
    """The shop keeps as many templates as it may already."""


class TemplateStore(abc.ABC):
    """The shops' canned replies: primary data beside the log, like the keys. Each write is
    durable when it returns and every node reads it at once (no cache anywhere).

    A shop is "seen" from its first listing or its first write on; `seed_templates` gives
    the defaults only to a shop never seen, so a shop that deleted every template does not
    get them back."""

    @abc.abstractmethod
    async def templates_of_shop(self, shop: str) -> list[TemplateRecord]:
        """The shop's templates, by shortcut."""

    @abc.abstractmethod
    async def seed_templates(
        self, shop: str, at: datetime, records: Sequence[TemplateRecord]
    ) -> bool:
        """Marks the shop seen (at `at`) and, if it was not, keeps `records` (the defaults)
        with it, in one transaction; False, with nothing written, for a shop seen before.
        Nodes seeding one shop at once write the defaults once."""

    @abc.abstractmethod
    async def create_template(self, record: TemplateRecord, limit: int) -> None:
        """Keeps a new template and marks its shop seen; ShortcutTaken when the shop has one
        with that shortcut, TooManyTemplates when it has `limit` already (nothing written)."""

    @abc.abstractmethod
    async def update_template(self, record: TemplateRecord) -> TemplateRecord | None:
        """Replaces the shortcut, title, text and `updated_at` of the shop's template
        `record.id`; the template as kept (its `created_at` unchanged), None when the shop
        has no such template; ShortcutTaken as for `create_template`."""

    @abc.abstractmethod
    async def delete_template(self, shop: str, template: str) -> bool:
        """Deletes the shop's template; False when the shop has no such template."""


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """An operator a shop is known to have: seen signed in with a token of that shop
    (chatd.operators). `seen_at` is when the name was last recorded."""

    shop: str
    id: str
    name: str
    seen_at: datetime


class OperatorStore(abc.ABC):
    """The operators each shop is known to have, whom its chats may be assigned to. Primary
    data beside the log, like the keys: a sign-in is no event of any chat, and `chatd
    rebuild` leaves them alone."""

    @abc.abstractmethod
    async def remember_operator(self, record: OperatorRecord) -> None:
        """Keeps the operator, or its new name and `seen_at` when it is already kept."""

    @abc.abstractmethod
    async def operator_of(self, shop: str, operator: str) -> OperatorRecord | None: ...

    @abc.abstractmethod
    async def operators_of(self, shop: str) -> list[OperatorRecord]:
        """The shop's operators, by name, then by id."""


class EventStore(EventLog, ReadModel, KeyStore, WebhookStore, TemplateStore, OperatorStore):
    """A backend: the log, the read model it writes in the same transactions, the keys, the
    webhooks, the canned replies and the shops' operators."""
