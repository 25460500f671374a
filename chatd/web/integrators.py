"""HTTP without a socket (docs/protocol.md, "HTTP without a socket"): the chat list, a chat's
history, sending (JSON or multipart, `Idempotency-Key`), the feed of events with long-poll,
and the claims with the actions a user may take on them.

A shell, as `chatd.web.ws` is for the socket: each route reads its request, asks the same
service commands (`chatd.service`), views (`chatd.views`, `chatd.claim_views`) and role
policy (`chatd.domain.policy`) as the frames do, and writes the answer. No rule lives here.

The feed's long-poll does not poll the database: a request with nothing new subscribes to
the hub under the user's routing keys, as a socket does, and reads the feed again only when
the hub delivers an event to this user (or its wait ends, or the server shuts down).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from chatd import cursor
from chatd.claim_views import DEFAULT_LIMIT, MAX_LIMIT, ClaimViews
from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.claim_actions import ClaimAction, ClaimCommand, command_for
from chatd.domain.commands import ApproveReturn, RejectReturn, ResolveReturn, WithdrawReturn
from chatd.domain.errors import Rejection
from chatd.files import BadUpload, FileRefused, TooLarge
from chatd.hub.base import Outgoing
from chatd.render import view_of
from chatd.routing import keys_of
from chatd.service import Outcome
from chatd.store.base import Stored
from chatd.web.http import (
    MAX_API_BODY,
    Api,
    ApiError,
    _file_refused,
    _small_body,
    answer_of_done,
    error_response,
    from_rejection,
    json_response,
)
from chatd.web.http_deadline import waits_until
from chatd.web.message_form import MAX_FORM_BODY, read_message_form
from protocol.codes import ErrorCode
from protocol.events import Money
from protocol.frames import FileRefs, Nonce, Note, Text

FEED_LIMIT = 100
FEED_MAX_LIMIT = 1000
MAX_WAIT = 30.0
_nonce_decoder = msgspec.json.Decoder(Nonce)


class SendBody(msgspec.Struct, frozen=True, kw_only=True):
    """A message as JSON: the `send` frame's fields and bounds, without `chat` and `nonce`
    (the path and `Idempotency-Key` carry them)."""

    text: Text = ""
    attachments: FileRefs = []


class ActionBody(msgspec.Struct, frozen=True, kw_only=True):
    action: ClaimAction
    amount: Money | None = None
    reason: Note | None = None
    comment: Note | None = None


_send_decoder = msgspec.json.Decoder(SendBody)
_action_decoder = msgspec.json.Decoder(ActionBody)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """A page of the feed: its events, the position the next page starts after, and whether
    the page was full."""

    events: list[Stored]
    end: int
    more: bool


class _Wake:
    """A hub subscriber that only notes that an event reached this user."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def push(self, item: Outgoing) -> None:
        # Read marks (no position) are no events of the feed.
        if item.pos is not None:
            self.event.set()


class Integrators:
    """The routes; `close` answers every long-poll at once (the server is stopping)."""

    def __init__(self, api: Api, claims: ClaimViews) -> None:
        self.api = api
        self.service = api.service
        self.claim_views = claims
        self.closing = False
        self._waiting: set[_Wake] = set()

    def close(self) -> None:
        self.closing = True
        for wake in self._waiting:
            wake.event.set()

    # ---- reading -----------------------------------------------------------------------------

    async def chats(self, request: Request) -> Response:
        actor = self.api.actor(request)
        query = request.query_params
        limit = int_param(query, "limit", 50, 1, 100)
        page = await self.service.views.chats(actor, query.get("before"), limit)
        if isinstance(page, Rejection):
            return from_rejection(page)
        return json_response({"chats": page.chats, "before": page.before})

    async def history(self, request: Request) -> Response:
        actor = self.api.actor(request)
        query = request.query_params
        limit = int_param(query, "limit", 50, 1, 100)
        before = _maybe_int(query, "before", 1, 2**53)
        chat = request.path_params["chat"]
        page = await self.service.views.history(actor, chat, before, limit)
        if isinstance(page, Rejection):
            return from_rejection(page)
        return json_response({"chat": page.chat, "events": page.events, "more": page.more})

    async def events(self, request: Request) -> Response:
        actor = self.api.actor(request)
        refused = policy.check(actor, "events")
        if refused is not None:
            return from_rejection(refused)
        query = request.query_params
        limit = int_param(query, "limit", FEED_LIMIT, 1, FEED_MAX_LIMIT)
        wait = _float(query, "wait", 0.0, 0.0, MAX_WAIT)
        since = await self.position_of(query.get("cursor"))
        # Waiting for events is what a long-poll asks for: not late for it.
        waits_until(request.scope, asyncio.get_running_loop().time() + wait)
        page = await self.feed_page(actor, since, limit, wait)
        views = self.service.views
        view = view_of(actor.role)
        return json_response(
            {
                "events": [views.frame_of(stored, view) for stored in page.events],
                "cursor": self.service.cursor(page.end),
                "more": page.more,
            }
        )

    async def position_of(self, given: str | None) -> int:
        """The log position a feed cursor marks (0 without one); `bad_cursor` for a cursor of
        another log or past this one's end."""
        if not given:
            return 0
        store = self.service.store
        parsed = cursor.parse(store.log_id, given)
        if parsed is None or parsed > await store.last_position():
            raise ApiError(ErrorCode.BAD_CURSOR, "unknown cursor: start again without one")
        return parsed

    async def feed_page(self, actor: Actor, since: int, limit: int, wait: float) -> FeedPage:
        """The events `actor` may see after position `since`, at most `limit`, waiting up to
        `wait` seconds for a first one; the caller has checked the `events` policy."""
        store = self.service.store
        views = self.service.views
        hub = self.service.hub
        keys = keys_of(actor)
        wake = _Wake()
        # Subscribed before the first read, as a socket is before its replay: an event
        # committed after a read wakes the request, one committed before is in the read.
        hub.subscribe(keys, wake)
        self._waiting.add(wake)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            while True:
                wake.event.clear()
                head = await store.last_position()
                page = await views.feed(actor, since, limit + 1)
                remaining = deadline - loop.time()
                if page or self.closing or remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await wake.event.wait()
                except TimeoutError:
                    # One more read: a wake-up and the deadline may have come together.
                    deadline = loop.time()
        finally:
            hub.unsubscribe(keys, wake)
            self._waiting.discard(wake)
        more = len(page) > limit
        page = page[:limit]
        # Every event this user may see up to `head` was in the read unless the page was
        # full; so, as `synced.cursor`, the cursor may pass the events of other users.
        end = page[-1].pos if page else since
        if not more:
            end = max(end, head)
        return FeedPage(page, end, more)

    async def claims(self, request: Request) -> Response:
        actor = self.api.actor(request)
        query = request.query_params
        page = await self.claim_views.claims(
            actor,
            state=query.get("state") or None,
            order=query.get("order") or None,
            article=query.get("article") or None,
            limit=int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=int_param(query, "offset", 0, 0, 2**31),
        )
        if isinstance(page, Rejection):
            return from_rejection(page)
        return json_response({"claims": page.claims, "total": page.total})

    # ---- writing -----------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        actor = self.api.actor(request)
        # The route's role, before a body is read or a file kept (the service asks again).
        Api._require(actor, "send")
        nonce = idempotency_key(request)
        chat = request.path_params["chat"]
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind == "application/json":
            try:
                body = _send_decoder.decode(await _small_body(request))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise ApiError(ErrorCode.BAD_FRAME, f"not a valid message: {exc}") from exc
            text, ids = body.text, list(body.attachments)
        elif kind == "multipart/form-data":
            sent = await self.message_form(actor, request)
            if isinstance(sent, Response):
                return sent
            text, ids, _ = sent
        else:
            return error_response(
                ErrorCode.BAD_FRAME,
                "send the message as application/json or multipart/form-data",
                status=415,
            )
        outcome = await self.service.send(actor, chat, text, ids, nonce)
        if isinstance(outcome, Rejection):
            return from_rejection(outcome)
        body_out = {"chat": outcome.chat, "seq": outcome.seq, "cursor": outcome.cursor}
        # The same key again writes nothing and gets the first answer (as a repeated nonce).
        return json_response(body_out, 200 if outcome.repeated else 201)

    async def message_form(
        self,
        actor: Actor,
        request: Request,
        text_part: str = "text",
        fields: tuple[str, ...] = (),
    ) -> tuple[str, list[str], dict[str, str]] | Response:
        """A multipart message's text (the part `text_part`), the short `fields` it has, and
        its files uploaded as `POST /api/v1/files` does (the same roles, quota, sizes and
        types)."""
        Api._require(actor, "upload")
        files = self.service.files
        if files is None:
            raise ApiError(ErrorCode.UNAVAILABLE, "this server keeps no files")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BODY:
            raise ApiError(ErrorCode.TOO_LARGE, f"the body may be at most {MAX_FORM_BODY} bytes")
        owner = keys_of(actor)[0]
        full = await files.admit(owner)
        if full is not None:
            return _file_refused(full)
        try:
            form = await read_message_form(
                request.headers.get("content-type"),
                request.stream(),
                files.incoming,
                text_part,
                fields,
            )
        except TooLarge as exc:
            return error_response(ErrorCode.TOO_LARGE, str(exc))
        except BadUpload as exc:
            return error_response(ErrorCode.BAD_FRAME, str(exc))
        ids: list[str] = []
        for index, (incoming, name) in enumerate(form.files):
            saved = await files.store(incoming, name, owner)
            if isinstance(saved, FileRefused):
                for rest, _ in form.files[index + 1 :]:
                    rest.discard()
                return _file_refused(saved)
            ids.append(saved.id)
        return form.text, ids, form.fields

    async def claim_action(self, request: Request) -> Response:
        actor = self.api.actor(request)
        Api._require(actor, "claim_action")
        try:
            body = _action_decoder.decode(await _small_body(request, MAX_API_BODY))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid action: {exc}") from exc
        claim = request.path_params["claim"]
        command = command_for(actor, claim, body.action, body.amount, body.reason, body.comment)
        if isinstance(command, Rejection):
            return from_rejection(command)
        outcome = await self._carry_out(command)
        if isinstance(outcome, Rejection):
            return from_rejection(outcome)
        return json_response(answer_of_done(outcome))

    async def _carry_out(self, command: ClaimCommand) -> Outcome:
        service = self.service
        match command:
            case ApproveReturn():
                return await service.approve_return(command)
            case RejectReturn():
                return await service.reject_return(command)
            case ResolveReturn():
                return await service.resolve_return(command)
            case WithdrawReturn():
                return await service.withdraw_return(command)


def idempotency_key(request: Request) -> str | None:
    """`Idempotency-Key`, which plays `send.nonce` and has its bounds (1-64 characters)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    try:
        return _nonce_decoder.decode(msgspec.json.encode(key))
    except msgspec.ValidationError as exc:
        raise ApiError(ErrorCode.BAD_FRAME, f"Idempotency-Key: {exc}") from exc


def int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    value = _maybe_int(query, name, low, high)
    return default if value is None else value


def _maybe_int(query: Any, name: str, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(ErrorCode.BAD_FRAME, f"`{name}` is a whole number from {low} to {high}")
    return int(raw)


def _float(query: Any, name: str, default: float, low: float, high: float) -> float:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    # NaN fails both comparisons, so "nan", "inf" and words are refused alike.
    if not low <= value <= high:
        raise ApiError(ErrorCode.BAD_FRAME, f"`{name}` is a number of seconds from {low} to {high}")
    return value
