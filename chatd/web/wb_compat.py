"""WB's Buyers Chat API shapes under `/api/v1/seller/` (docs/protocol.md, "WB-compatible
routes"), so that a bot written for them runs against chatd with another base URL and key.

A shell over the routes of `chatd.web.integrators` and `chatd.web.http`: the chat list is
the `chats` read, the events are the same gap-free feed as `/api/v1/events` (the `next` it
answers is that feed's cursor), a message is the `send` command with files uploaded as a
multipart message's are, a download is `download`. Who may do what is the role policy's
(`chatd.domain.policy`) and the key's scopes, asked by those same reads and commands; this
module only translates shapes and checks a reply's signature.

Only a shop's API key opens these routes, sent as `Authorization: <key>` or with `Bearer`.

`replySign` is `{chat in URL-safe base64}.{HMAC-SHA256 of the shop and the chat}`, keyed
with the server's secret: a shop can reply only with a sign the server made for that shop,
so a forged sign, or one another shop was given, names no chat (400), before the send
command's own check that the chat is the shop's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.render import view_of
from chatd.routing import buyer_key
from chatd.store.base import Stored
from chatd.web.http import Api, ApiError, error_response, from_rejection, json_response
from chatd.web.integrators import (
    FEED_LIMIT,
    FEED_MAX_LIMIT,
    Integrators,
    idempotency_key,
    int_param,
)
from chatd.web.key_auth import presented_key
from protocol.codes import ErrorCode
from protocol.events import (
    CHAT_KINDS,
    SHOP_ONLY_KINDS,
    Attachment,
    ChatOpened,
    Kind,
    MessagePosted,
    OrderCard,
    ReturnRequested,
)
from protocol.frames import ChatSummary

# Where the chats' pages are read from the views, one at a time: their largest page.
_CHATS_PAGE = 100
# How many events a first call from a time walks at a time, looking for where to start.
_SCAN = 1000
# The largest Unix time in milliseconds `next` may be (JavaScript's safe integers).
_MAX_MS = 2**53
# The sign's key is the server's secret, kept apart from its other uses by this prefix.
_SIGN_CONTEXT = b"chatd wb replySign\x00"
_FORM_FIELDS = ("replySign",)
WB_PREFIX = "/api/v1/seller/"
# The kinds WB's events have a word for. The shop's notes and assignments have none: a
# WB bot would read a note as a message of the shop's to the buyer, so they stay out (the
# cursor `next` passes them, as any kind left out).
_WB_KINDS = CHAT_KINDS - SHOP_ONLY_KINDS


# ---- the shapes ----------------------------------------------------------------------------


class GoodCard(msgspec.Struct, frozen=True, kw_only=True):
    """The chat's order: `nmID` is its article (a number when the article is one), `rid` its
    id, `price` in minor units, `size` empty when the card names none."""

    nm_id: int | str = msgspec.field(name="nmID")
    price: int
    price_currency: str = msgspec.field(name="priceCurrency")
    rid: str
    size: str


class LastMessage(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    add_timestamp: int = msgspec.field(name="addTimestamp")


class WbChat(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    chat_id: str = msgspec.field(name="chatID")
    reply_sign: str = msgspec.field(name="replySign")
    client_name: str = msgspec.field(name="clientName")
    good_card: GoodCard | None = msgspec.field(default=None, name="goodCard")
    last_message: LastMessage | None = msgspec.field(default=None, name="lastMessage")


class WbChatsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    result: list[WbChat]
    errors: list[str]


class WbFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file of a message: `GET url` (`/api/v1/seller/download/{downloadID}`) reads it."""

    download_id: str = msgspec.field(name="downloadID")
    name: str
    content_type: str = msgspec.field(name="contentType")
    size: int
    url: str


class WbAttachments(msgspec.Struct, frozen=True, kw_only=True):
    images: list[WbFile]
    files: list[WbFile]


class WbMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    text: str
    attachments: WbAttachments | None = None


Sender = Literal["client", "seller", "wb"]


class WbEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    chat_id: str = msgspec.field(name="chatID")
    event_id: str = msgspec.field(name="eventID")
    # Return events are `refund`; everything else WB has a word for is a `message`.
    event_type: Literal["message", "refund"] = msgspec.field(name="eventType")
    is_new_chat: bool = msgspec.field(name="isNewChat")
    add_timestamp: int = msgspec.field(name="addTimestamp")
    add_time: str = msgspec.field(name="addTime")
    client_name: str = msgspec.field(name="clientName")
    sender: Sender
    reply_sign: str | None = msgspec.field(default=None, name="replySign")
    message: WbMessage | None = None


class WbEvents(msgspec.Struct, frozen=True, kw_only=True):
    next: str
    newest_event_time: int | None = msgspec.field(name="newestEventTime")
    oldest_event_time: int | None = msgspec.field(name="oldestEventTime")
    total_events: int = msgspec.field(name="totalEvents")
    events: list[WbEvent]


class WbEventsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    result: WbEvents
    errors: list[str]


class WbSent(msgspec.Struct, frozen=True, kw_only=True):
    add_time: int = msgspec.field(name="addTime")
    chat_id: str = msgspec.field(name="chatID")
    sign: str


class WbSentAnswer(msgspec.Struct, frozen=True, kw_only=True):
    result: WbSent
    errors: list[str]


# ---- the signature of a reply ----------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, shop: str, chat: str) -> bytes:
    # Zero bytes between the parts: no id holds one, so no two (shop, chat) pairs sign alike.
    message = _SIGN_CONTEXT + shop.encode() + b"\x00" + chat.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def reply_sign(secret: str, shop: str, chat: str) -> str:
    """The sign with which `shop` replies in `chat`."""
    return f"{_b64(chat.encode())}.{_b64(_mac(secret, shop, chat))}"


def chat_of_sign(secret: str, shop: str, sign: str) -> str | None:
    """The chat `sign` was made for, when it was made for `shop`; None for anything else."""
    encoded, dot, mac = sign.partition(".")
    if not dot:
        return None
    try:
        chat = _unb64(encoded).decode()
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        return None
    return chat if hmac.compare_digest(given, _mac(secret, shop, chat)) else None


# ---- translation -------------------------------------------------------------------------------


def millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def good_card(card: OrderCard) -> GoodCard:
    article = card.article
    # WB's nmID is a number; an article that is not one (or too long to be exact in JSON)
    # is given as it is rather than invented.
    nm_id: int | str = int(article) if article.isascii() and article.isdigit() else article
    if isinstance(nm_id, int) and nm_id >= _MAX_MS:
        nm_id = article
    return GoodCard(
        nm_id=nm_id,
        price=card.price.value,
        price_currency=card.price.currency,
        rid=card.id,
        size=card.size or "",
    )


def _sender(role: str) -> Sender:
    if role == "buyer":
        return "client"
    if role == "seller":
        return "seller"
    return "wb"


class WbCompat:
    def __init__(self, api: Api, http: Integrators) -> None:
        self.api = api
        self.http = http
        self.service = api.service

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/seller/chats", self.chats),
            Route("/api/v1/seller/events", self.events),
            Route("/api/v1/seller/message", self.message, methods=["POST"]),
            Route("/api/v1/seller/download/{id:str}", self.download),
        ]

    def actor(self, request: Request) -> Actor:
        """The shop of the API key in `Authorization`, with or without `Bearer`."""
        key = presented_key(request.headers.get("authorization", ""))
        if key is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                "a shop's API key is required: `Authorization: <key>`, with or without Bearer",
            )
        return self.api.key_actor(request, key)

    def _sign(self, actor: Actor, chat: str) -> str:
        assert actor.shop is not None, "an API key always acts for its shop"
        return reply_sign(self.api.secret, actor.shop, chat)

    # ---- the chats ---------------------------------------------------------------------------

    async def chats(self, request: Request) -> Response:
        actor = self.actor(request)
        views = self.service.views
        found: list[WbChat] = []
        before: str | None = None
        # WB's list has no pages: every page of the shop's chats, latest activity first.
        while True:
            page = await views.chats(actor, before, _CHATS_PAGE)
            if isinstance(page, Rejection):
                return from_rejection(page)
            for summary in page.chats:
                found.append(await self._chat(actor, summary))
            if page.before is None:
                break
            before = page.before
        return json_response(WbChatsAnswer(result=found, errors=[]))

    async def _chat(self, actor: Actor, summary: ChatSummary) -> WbChat:
        last = summary.last
        card = await self._order_of(summary)
        return WbChat(
            chat_id=summary.chat,
            reply_sign=self._sign(actor, summary.chat),
            client_name=summary.buyer.name,
            good_card=good_card(card) if card is not None else None,
            last_message=(
                LastMessage(text=last.text, add_timestamp=millis(last.at))
                if last is not None and last.text is not None
                else None
            ),
        )

    async def _order_of(self, summary: ChatSummary) -> OrderCard | None:
        """The order the chat was opened about, else the order of its latest claim."""
        first = await self.service.store.read_stream(summary.chat, after=0, before=2)
        if first and isinstance(first[0].event.data, ChatOpened) and first[0].event.data.order:
            return first[0].event.data.order
        if summary.claims:
            return await self.service.views.order(summary.claims[-1].order)
        return None

    # ---- the events ---------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        actor = self.actor(request)
        refused = policy.check(actor, "events")
        if refused is not None:
            return from_rejection(refused)
        query = request.query_params
        limit = int_param(query, "limit", FEED_LIMIT, 1, FEED_MAX_LIMIT)
        given = query.get("next") or None
        if given is not None and given.isascii() and given.isdigit():
            if int(given) > _MAX_MS:
                raise ApiError(
                    ErrorCode.BAD_FRAME, "`next` is a cursor or a Unix time in milliseconds"
                )
            since = await self._position_at(actor, int(given))
        else:
            since = await self.http.position_of(given)
        page = await self.http.feed_page(actor, since, limit, 0.0)
        names: dict[str, str] = {}
        events: list[WbEvent] = []
        for stored in page.events:
            event = await self._event(actor, stored, names, request)
            if event is not None:
                events.append(event)
        times = [e.add_timestamp for e in events]
        result = WbEvents(
            next=self.service.cursor(page.end),
            newest_event_time=max(times) if times else None,
            oldest_event_time=min(times) if times else None,
            total_events=len(events),
            events=events,
        )
        return json_response(WbEventsAnswer(result=result, errors=[]))

    async def _position_at(self, actor: Actor, ms: int) -> int:
        """Where the feed starts for a first call from a time: just before the first event,
        in log order, of those this shop may see, that was appended at `ms` or later."""
        since = 0
        views = self.service.views
        while True:
            page = await views.feed(actor, since, _SCAN)
            for stored in page:
                if millis(stored.event.at) >= ms:
                    return stored.pos - 1
            if len(page) < _SCAN:
                # Nothing at or after the time yet: the next page starts past what was read.
                return page[-1].pos if page else since
            since = page[-1].pos

    async def _client_name(self, chat: str, names: dict[str, str]) -> str:
        if chat not in names:
            state = await self.service.states.get(chat)
            if state is None:
                names[chat] = ""
            else:
                current = await self.service.store.party_name(buyer_key(state.buyer.id))
                names[chat] = current or state.buyer.name
        return names[chat]

    async def _event(
        self, actor: Actor, stored: Stored, names: dict[str, str], request: Request
    ) -> WbEvent | None:
        """The event in WB's shape; None for a kind WB has no word for."""
        event = stored.event
        if event.kind not in _WB_KINDS:
            return None
        frame = self.service.views.frame_of(stored, view_of(actor.role))
        data = event.data
        attachments: list[Attachment] = []
        if isinstance(data, MessagePosted | ReturnRequested):
            attachments = list(data.attachments)
        message: WbMessage | None = None
        if frame.text is not None or attachments:
            message = WbMessage(
                text=frame.text or "",
                attachments=self._attachments(attachments, request) if attachments else None,
            )
        return WbEvent(
            chat_id=event.stream,
            event_id=frame.cursor,
            event_type="message" if event.kind in (Kind.MESSAGE, Kind.CHAT_OPENED) else "refund",
            is_new_chat=event.kind == Kind.CHAT_OPENED,
            add_timestamp=millis(event.at),
            add_time=_rfc3339(event.at),
            client_name=await self._client_name(event.stream, names),
            sender=_sender(event.author.role),
            reply_sign=self._sign(actor, event.stream),
            message=message,
        )

    @staticmethod
    def _attachments(files: list[Attachment], request: Request) -> WbAttachments:
        base = str(request.base_url).rstrip("/")
        shown = [
            WbFile(
                download_id=f.id,
                name=f.name,
                content_type=f.mime,
                size=f.size,
                url=f"{base}/api/v1/seller/download/{f.id}",
            )
            for f in files
        ]
        return WbAttachments(
            images=[f for f in shown if f.content_type.startswith("image/")],
            files=[f for f in shown if not f.content_type.startswith("image/")],
        )

    # ---- sending and files ---------------------------------------------------------------------

    async def message(self, request: Request) -> Response:
        actor = self.actor(request)
        # The route's role and scope, before a body is read (the send command asks again).
        Api._require(actor, "send")
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "multipart/form-data":
            return error_response(
                ErrorCode.BAD_FRAME,
                "send the message as multipart/form-data: `replySign`, `message`, `file`",
                status=415,
            )
        nonce = idempotency_key(request)
        sent = await self.http.message_form(actor, request, "message", _FORM_FIELDS)
        if isinstance(sent, Response):
            return sent
        text, ids, fields = sent
        sign = fields.get("replySign", "")
        assert actor.shop is not None, "an API key always acts for its shop"
        chat = chat_of_sign(self.api.secret, actor.shop, sign)
        if chat is None:
            # Forged, damaged, or made for another shop: the same answer for each, and it
            # names no chat, so nothing is learnt about chats that are not the shop's.
            raise ApiError(ErrorCode.BAD_FRAME, "`replySign` is not a sign of this shop's chats")
        outcome = await self.service.send(actor, chat, text, ids, nonce)
        if isinstance(outcome, Rejection):
            return from_rejection(outcome)
        written = await self.service.store.read_stream(
            chat, after=outcome.seq - 1, before=outcome.seq + 1
        )
        at = written[0].event.at if written else self.service.now()
        answer = WbSent(add_time=millis(at), chat_id=chat, sign=sign)
        return json_response(WbSentAnswer(result=answer, errors=[]))

    async def download(self, request: Request) -> Response:
        return await self.api.file_answer(self.actor(request), request.path_params["id"])
