"""Every client and server frame as a frozen, tagged msgspec Struct (docs/protocol.md sections 3-4).

The tag field is `type`. Unknown fields are ignored by the decoders. Field constraints here
are the contract's ranges: a frame outside them is `bad_frame` before any rule runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from protocol.events import Author, Money, Operator, Party, ReturnMode, Role, Side

RequestId = Annotated[str, Meta(max_length=64)]
Nonce = Annotated[str, Meta(min_length=1, max_length=64)]
Ref = Annotated[str, Meta(min_length=1, max_length=128)]
Seq = Annotated[int, Meta(ge=0, le=2**53)]
Limit = Annotated[int, Meta(ge=1, le=100)]
# The length rule of a message (1-1000 characters after trimming) is a domain rule with its
# own message; the frame bound only keeps absurd payloads out of the domain.
Text = Annotated[str, Meta(max_length=16_000)]
Query = Annotated[str, Meta(min_length=1, max_length=256)]
# The file ids a frame may carry (`send`, and `return.request` since version 1.1).
FileRefs = Annotated[list[Ref], Meta(max_length=10)]
# A request's comment, a refusal's reason, a manager's comment (version 1.1). Their lengths
# (1 000 and 500 characters after trimming) are domain rules with their own messages, as a
# message's is; this bound only keeps absurd payloads out of the domain.
Note = Annotated[str, Meta(max_length=16_000)]
# The longest token `hello` carries; `chatd.auth.verify` refuses longer ones too, so a token
# is accepted or refused alike on /ws and over HTTP.
MAX_TOKEN = 4096


class _Frame(Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    pass


class _Request(_Frame, frozen=True, kw_only=True):
    id: RequestId | None = None


# ---- client frames -------------------------------------------------------------------------


class Hello(_Request, frozen=True, kw_only=True, tag="hello"):
    token: Annotated[str, Meta(min_length=1, max_length=MAX_TOKEN)]
    since: Annotated[str, Meta(max_length=256)] | None = None


class Open(_Request, frozen=True, kw_only=True, tag="open"):
    seller: Ref
    order: Ref | None = None


class Send(_Request, frozen=True, kw_only=True, tag="send"):
    chat: Ref
    text: Text = ""
    attachments: FileRefs = []
    nonce: Nonce | None = None


class Read(_Request, frozen=True, kw_only=True, tag="read"):
    chat: Ref
    seq: Seq


class History(_Request, frozen=True, kw_only=True, tag="history"):
    chat: Ref
    before: Annotated[int, Meta(ge=1, le=2**53)] | None = None
    limit: Limit = 50


class Chats(_Request, frozen=True, kw_only=True, tag="chats"):
    before: Annotated[str, Meta(max_length=128)] | None = None
    limit: Limit = 50


class Search(_Request, frozen=True, kw_only=True, tag="search"):
    q: Query
    chat: Ref | None = None


class Attachments(_Request, frozen=True, kw_only=True, tag="attachments"):
    chat: Ref


class ReturnRequest(_Request, frozen=True, kw_only=True, tag="return.request"):
    chat: Ref
    order: Ref
    comment: Note | None = None
    attachments: FileRefs = []


class ReturnApprove(_Request, frozen=True, kw_only=True, tag="return.approve"):
    claim: Ref
    mode: ReturnMode
    amount: Money


class ReturnReject(_Request, frozen=True, kw_only=True, tag="return.reject"):
    claim: Ref
    reason: Note | None = None


class ReturnInitiate(_Request, frozen=True, kw_only=True, tag="return.initiate"):
    chat: Ref
    order: Ref


class ReturnDispute(_Request, frozen=True, kw_only=True, tag="return.dispute"):
    claim: Ref


class ReturnResolve(_Request, frozen=True, kw_only=True, tag="return.resolve"):
    claim: Ref
    decision: Literal["approve", "reject"]
    mode: ReturnMode | None = None
    comment: Note | None = None


class ReturnWithdraw(_Request, frozen=True, kw_only=True, tag="return.withdraw"):
    """The shop withdraws its offer while the buyer has not taken it up (version 1.1)."""

    claim: Ref


class Ping(_Request, frozen=True, kw_only=True, tag="ping"):
    pass


class Assign(_Request, frozen=True, kw_only=True, tag="assign"):
    """The shop gives the chat to one of its operators, or to nobody (`null`); "take" is
    assigning it to oneself (version 1.1). `operator` must be sent, `null` included."""

    chat: Ref
    operator: Ref | None


class PrivateNote(_Request, frozen=True, kw_only=True, tag="note"):
    """A note only the shop (and, in a disputed chat, the managers) will read (version 1.1).
    Its length (1-1000 characters after trimming) is the domain's rule, as a message's is."""

    chat: Ref
    text: Text
    nonce: Nonce | None = None


class Typing(_Request, frozen=True, kw_only=True, tag="typing"):
    """The user is typing in `chat` (version 1.1): relayed to the other side, never stored,
    never answered unless refused; at most one every 2 s per connection and chat is passed on."""

    chat: Ref


ClientFrame = (
    Hello
    | Open
    | Send
    | Read
    | History
    | Chats
    | Search
    | Attachments
    | ReturnRequest
    | ReturnApprove
    | ReturnReject
    | ReturnInitiate
    | ReturnDispute
    | ReturnResolve
    | ReturnWithdraw
    | Assign
    | PrivateNote
    | Ping
    | Typing
)

# ---- server frames -------------------------------------------------------------------------


class _Reply(_Frame, frozen=True, kw_only=True, omit_defaults=True):
    pass


class UserInfo(Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    role: Role
    name: str
    seller: str | None = None


class Welcome(_Reply, frozen=True, kw_only=True, tag="welcome"):
    session: str
    user: UserInfo
    server_time: datetime
    cursor: str
    protocol: int  # required, so it is always sent: PROTOCOL_VERSION
    # PROTOCOL_REVISION ("1.1"). Optional only so that a client still reads the welcome of
    # a server that predates it; chatd always sends it.
    version: str | None = None


class EventFrame(_Reply, frozen=True, kw_only=True, tag="event"):
    """An event as one viewer sees it. `data` is the kind's data (protocol.events.parse_data)."""

    chat: str
    seq: int
    cursor: str
    at: datetime
    kind: str
    author: Author
    data: Any
    text: str | None = None


class Synced(_Reply, frozen=True, kw_only=True, tag="synced"):
    cursor: str


class Ack(_Reply, frozen=True, kw_only=True, tag="ack"):
    chat: str
    seq: int
    cursor: str
    id: str | None = None
    claim: str | None = None


class ReadMark(_Reply, frozen=True, kw_only=True, tag="read"):
    chat: str
    side: Side
    seq: int


class HistoryPage(_Reply, frozen=True, kw_only=True, tag="history"):
    chat: str
    events: list[EventFrame]
    more: bool
    id: str | None = None


class ClaimSummary(Struct, frozen=True, kw_only=True):
    claim: str
    order: str
    state: str
    # When the claim's wait ends by itself (version 1.1): a request's deadline for the shop's
    # decision, an offer's for the buyer's answer; null for every other state. Always sent
    # (no omit_defaults here); the default only lets older answers decode.
    due: datetime | None = None


class Online(Struct, frozen=True, kw_only=True):
    """Whether each side of a chat is connected now (version 1.1): the buyer on any device, the
    shop through any of its operators."""

    buyer: bool
    seller: bool


OFFLINE = Online(buyer=False, seller=False)


class ChatSummary(Struct, frozen=True, kw_only=True):
    chat: str
    buyer: Party
    seller: Party
    last: EventFrame | None
    unread: int
    reply_due: datetime | None
    claims: list[ClaimSummary]
    # Version 1.1; always sent by chatd (no omit_defaults here), the default only lets the
    # answers of an older server decode.
    online: Online = OFFLINE
    # The operator who has the chat, `null` for nobody (version 1.1): in the views of those
    # who may see the shop's own events (its operators, and managers in a disputed chat);
    # left out (UNSET) for the buyer, who is not shown who of the shop answers.
    assignee: Operator | UnsetType | None = UNSET


class ChatsPage(_Reply, frozen=True, kw_only=True, tag="chats"):
    chats: list[ChatSummary]
    before: str | None
    id: str | None = None


class Results(_Reply, frozen=True, kw_only=True, tag="results"):
    events: list[EventFrame]
    id: str | None = None


class OrderEntry(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An order card in the `attachments` answer, with its claim if the order has one."""

    order: Any
    claim: str | None = None
    state: str | None = None


class FileEntry(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int
    seq: int
    at: datetime


class AttachmentsPage(_Reply, frozen=True, kw_only=True, tag="attachments"):
    chat: str
    orders: list[OrderEntry]
    photos: list[FileEntry]
    files: list[FileEntry]
    id: str | None = None


class Error(_Reply, frozen=True, kw_only=True, tag="error"):
    code: str
    message: str
    id: str | None = None
    details: dict[str, Any] | None = None


class Pong(_Reply, frozen=True, kw_only=True, tag="pong"):
    id: str | None = None


class TypingNotice(_Reply, frozen=True, kw_only=True, tag="typing"):
    """Someone on the other side of `chat` is typing (version 1.1): the buyer (by the chat's
    name for them) or an operator of the shop (by the operator's own name)."""

    chat: str
    side: Side
    name: str


class PresenceChange(_Reply, frozen=True, kw_only=True, tag="presence"):
    """One side of `chat` came online or went offline (version 1.1)."""

    chat: str
    side: Side
    online: bool


ServerFrame = (
    Welcome
    | EventFrame
    | Synced
    | Ack
    | ReadMark
    | HistoryPage
    | ChatsPage
    | Results
    | AttachmentsPage
    | Error
    | Pong
    | TypingNotice
    | PresenceChange
)
