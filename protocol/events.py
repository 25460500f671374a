"""Event kinds, their `data`, money and the order card (docs/protocol.md sections 4, 6 and 8).

An event is what the log keeps; the wire `event` frame is built from it for one viewer
(see `protocol.frames.EventFrame`). `data` is a Struct of the kind's own type; on the wire
it is a plain object with no tag, so storage keeps the kind beside it and decodes `data`
with the kind's decoder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Role = Literal["buyer", "seller", "manager", "system"]
Side = Literal["buyer", "seller"]
ReturnMode = Literal["pvz", "no_return"]
Decision = Literal["approve", "reject"]
ClaimState = Literal[
    "awaiting_buyer",
    "requested",
    "approved",
    "rejected",
    "disputed",
    "resolved_approved",
    "resolved_rejected",
    # The shop's offer ended unanswered: withdrawn by the shop, or expired (version 1.1).
    "closed",
]
GoodsState = Literal["handed_in", "arrived", "inspected"]

Id = Annotated[str, Meta(min_length=1, max_length=128)]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$")]


class Money(Struct, frozen=True, kw_only=True):
    """An amount in integer minor units: 1 186 руб is Money(value=118600, currency="RUB")."""

    value: int
    currency: Currency


class Party(Struct, frozen=True, kw_only=True):
    id: Id
    name: Annotated[str, Meta(max_length=256)]


class Operator(Struct, frozen=True, kw_only=True):
    id: str
    name: str


class Author(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who wrote an event. A shop's event names the shop, and the operator who acted for it."""

    role: Role
    id: str
    name: str
    operator: Operator | None = None


class OrderCard(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An order as the marketplace registers it; the same fields travel in events."""

    id: Id
    buyer: Party
    seller: Party
    article: Annotated[str, Meta(min_length=1, max_length=64)]
    name: Annotated[str, Meta(min_length=1, max_length=512)]
    brand: Annotated[str, Meta(max_length=256)]
    price: Money
    purchased_at: datetime
    # Required, so that it is always sent (the contract lists it without `?`).
    non_returnable: bool
    size: Annotated[str, Meta(max_length=64)] | None = None
    color: Annotated[str, Meta(max_length=64)] | None = None
    received_at: datetime | None = None
    # The product's photo: the id of an image the marketplace uploaded (`POST
    # /api/v1/files`). Left out when there is none, so cards logged before it read the same.
    photo: Id | None = None


class Attachment(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int


# ---- the data of each event kind ----------------------------------------------------------


class ChatOpened(Struct, frozen=True, kw_only=True, omit_defaults=True):
    buyer: Party
    seller: Party
    order: OrderCard | None = None


class MessagePosted(Struct, frozen=True, kw_only=True):
    attachments: list[Attachment] = []


class ReturnRequested(Struct, frozen=True, kw_only=True):
    """The buyer's request, with its evidence (version 1.1): `attachments` is always sent,
    possibly empty (requests logged before 1.1 read as empty), and `comment` only when the
    buyer wrote one. UNSET, unlike a default, leaves out that one field and no other."""

    claim: str
    order: OrderCard
    amount: Money
    attachments: list[Attachment] = []
    comment: str | UnsetType = UNSET


class ReturnInitiated(Struct, frozen=True, kw_only=True):
    claim: str
    order: OrderCard


class ReturnApproved(Struct, frozen=True, kw_only=True):
    claim: str
    mode: ReturnMode
    amount: Money


class ReturnRejected(Struct, frozen=True, kw_only=True, omit_defaults=True):
    claim: str
    reason: str | None = None


class ReturnDisputed(Struct, frozen=True, kw_only=True):
    claim: str


class ReturnResolved(Struct, frozen=True, kw_only=True, omit_defaults=True):
    claim: str
    decision: Decision
    mode: ReturnMode | None = None
    comment: str | None = None


class ReturnHandedIn(Struct, frozen=True, kw_only=True):
    claim: str


class ReturnArrived(Struct, frozen=True, kw_only=True):
    claim: str


class RefundIssued(Struct, frozen=True, kw_only=True):
    claim: str
    amount: Money


class ReturnInspected(Struct, frozen=True, kw_only=True):
    claim: str
    defect: bool


class ReturnWithdrawn(Struct, frozen=True, kw_only=True):
    """The shop withdrew its offer before the buyer took it up (version 1.1)."""

    claim: str


class ReturnExpired(Struct, frozen=True, kw_only=True):
    """The shop's offer was not taken up before its deadline (version 1.1)."""

    claim: str


class ReturnEscalated(Struct, frozen=True, kw_only=True):
    """The shop did not decide on a request before its deadline: the managers decide
    (version 1.1)."""

    claim: str


class ChatAssigned(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who of the shop's operators has the chat now (version 1.1): `operator` is always
    sent, `null` when the chat was given back to nobody. `by` is the operator who assigned
    it (chatd's addition; left out when an API key did)."""

    operator: Operator | None
    by: Operator | None = None


class NotePosted(Struct, frozen=True, kw_only=True):
    """A private note of the shop's (version 1.1): its words are the event's `text`, its
    author the shop and the operator who wrote it, as for a message."""


class OrderRegistered(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Not a chat event: the marketplace registered an order (stream `order:{id}`).

    `photo` is the file the card's `photo` names, as it was when the order was registered
    (the server fills it in, never the marketplace): the files projection lists it under
    the order's stream, so that the file is known as kept and who may read it is known,
    also after a rebuild from the log."""

    order: OrderCard
    photo: Attachment | None = None


EventData = (
    ChatOpened
    | MessagePosted
    | ReturnRequested
    | ReturnInitiated
    | ReturnApproved
    | ReturnRejected
    | ReturnDisputed
    | ReturnResolved
    | ReturnHandedIn
    | ReturnArrived
    | RefundIssued
    | ReturnInspected
    | ReturnWithdrawn
    | ReturnExpired
    | ReturnEscalated
    | ChatAssigned
    | NotePosted
    | OrderRegistered
)


class Kind:
    """The event kinds, as the log and the wire spell them: nothing else spells them."""

    # The chat event kinds of docs/protocol.md section 6.
    CHAT_OPENED: Final = "chat.opened"
    MESSAGE: Final = "message"
    RETURN_REQUESTED: Final = "return.requested"
    RETURN_INITIATED: Final = "return.initiated"
    RETURN_APPROVED: Final = "return.approved"
    RETURN_REJECTED: Final = "return.rejected"
    RETURN_DISPUTED: Final = "return.disputed"
    RETURN_RESOLVED: Final = "return.resolved"
    RETURN_HANDED_IN: Final = "return.handed_in"
    RETURN_ARRIVED: Final = "return.arrived"
    REFUND_ISSUED: Final = "refund.issued"
    RETURN_INSPECTED: Final = "return.inspected"
    # Version 1.1: offers that end, and requests the shop left unanswered.
    RETURN_WITHDRAWN: Final = "return.withdrawn"
    RETURN_EXPIRED: Final = "return.expired"
    RETURN_ESCALATED: Final = "return.escalated"
    # Version 1.1, the operator's day: the shop's own work in a chat (`SHOP_ONLY_KINDS`).
    CHAT_ASSIGNED: Final = "chat.assigned"
    NOTE: Final = "note"
    # Not a chat event: the stream `order:{id}` of a registered order.
    ORDER_REGISTERED: Final = "order.registered"


# kind -> the type of its data.
DATA_TYPES: dict[str, type[Struct]] = {
    Kind.CHAT_OPENED: ChatOpened,
    Kind.MESSAGE: MessagePosted,
    Kind.RETURN_REQUESTED: ReturnRequested,
    Kind.RETURN_INITIATED: ReturnInitiated,
    Kind.RETURN_APPROVED: ReturnApproved,
    Kind.RETURN_REJECTED: ReturnRejected,
    Kind.RETURN_DISPUTED: ReturnDisputed,
    Kind.RETURN_RESOLVED: ReturnResolved,
    Kind.RETURN_HANDED_IN: ReturnHandedIn,
    Kind.RETURN_ARRIVED: ReturnArrived,
    Kind.REFUND_ISSUED: RefundIssued,
    Kind.RETURN_INSPECTED: ReturnInspected,
    Kind.RETURN_WITHDRAWN: ReturnWithdrawn,
    Kind.RETURN_EXPIRED: ReturnExpired,
    Kind.RETURN_ESCALATED: ReturnEscalated,
    Kind.CHAT_ASSIGNED: ChatAssigned,
    Kind.NOTE: NotePosted,
    Kind.ORDER_REGISTERED: OrderRegistered,
}
KIND_OF: dict[type[Struct], str] = {t: k for k, t in DATA_TYPES.items()}
CHAT_KINDS = frozenset(k for k in DATA_TYPES if k != Kind.ORDER_REGISTERED)
# The shop's alone (version 1.1): the buyer never receives them by any path, a manager only
# in a disputed chat, and they never count as unread. Who may see them is the role policy's
# `shop_events` (chatd.domain.policy); a viewer who may not sees gaps in `seq` where they are.
SHOP_ONLY_KINDS = frozenset({Kind.CHAT_ASSIGNED, Kind.NOTE})


class Event(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of a stream's log. `text` is the shop's (and the manager's) wording;
    `text_buyer` is the buyer's where it differs (only `return.initiated`)."""

    stream: str
    seq: int
    at: datetime
    kind: str
    author: Author
    data: Any
    text: str | None = None
    text_buyer: str | None = None

    def text_for(self, role: Role) -> str | None:
        if role == "buyer" and self.text_buyer is not None:
            return self.text_buyer
        return self.text


def kind_of(data: Struct) -> str:
    return KIND_OF[type(data)]


class _StoredEvent(Struct, frozen=True, kw_only=True):
    stream: str
    seq: int
    at: datetime
    kind: str
    author: Author
    data: msgspec.Raw
    text: str | None = None
    text_buyer: str | None = None


_event_encoder = msgspec.msgpack.Encoder()
_stored_decoder = msgspec.msgpack.Decoder(_StoredEvent)
_data_decoders = {kind: msgspec.msgpack.Decoder(t) for kind, t in DATA_TYPES.items()}


def encode_event(event: Event) -> bytes:
    """The event as the log stores it (MessagePack)."""
    return _event_encoder.encode(event)


def decode_event(body: bytes) -> Event:
    stored = _stored_decoder.decode(body)
    data = _data_decoders[stored.kind].decode(stored.data)
    return Event(
        stream=stored.stream,
        seq=stored.seq,
        at=stored.at,
        kind=stored.kind,
        author=stored.author,
        data=data,
        text=stored.text,
        text_buyer=stored.text_buyer,
    )


def parse_data(kind: str, data: Any) -> Struct:
    """Typed `data` of a received event frame (for clients that decoded it as a dict)."""
    return msgspec.convert(data, DATA_TYPES[kind])
