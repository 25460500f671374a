"""The HTTP side of chatd (docs/protocol.md 8): what the marketplace back end (`system`) posts,
and what buyers and shops read besides the chat; the chat itself without a socket (the
feed of events with long-poll, sending, downloads, claims and their actions: docs/protocol.md,
"HTTP without a socket"); a shop's API keys and webhooks (docs/protocol.md, "Credentials"
and "Webhooks"); and a shop's canned replies (docs/protocol.md, "Canned replies").

>>> import asyncio
>>> async def refund_arrives(base: str, system_token: str, order: OrderCard) -> None:
...     async with HttpApi(base, system_token) as api:
...         await api.register_order(order)
...         await api.logistics(order.id, "handed_in")
...         await api.logistics(order.id, "arrived")

>>> async def answer_everything(base: str, shop_token: str, cursor: str | None) -> None:
...     async with HttpApi(base, shop_token) as api:
...         async for event in api.follow(cursor):
...             if event.kind == "message" and event.author.role == "buyer":
...                 await api.send(event.chat, "Здравствуйте! Уже смотрим.")
...             cursor = event.cursor  # store it: passing it back loses and repeats nothing
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import msgspec

from chatd.client.errors import ChatError
from protocol.events import Attachment, GoodsState, Money, Operator, OrderCard
from protocol.frames import ChatSummary, EventFrame

T = TypeVar("T")


class LogisticsDone(msgspec.Struct, frozen=True, kw_only=True):
    """The event a logistics report appended (`refund.issued` may follow `arrived`)."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None


class SalesRow(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    order: str
    article: str
    name: str
    amount: Money
    reason: str


class FileInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int
    sha256: str


class Acked(msgspec.Struct, frozen=True, kw_only=True):
    """A command was carried out over HTTP: the frame's `ack`, without `id`. For a message,
    `repeated` says that its `Idempotency-Key` was seen before and nothing was written."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None
    repeated: bool = False


class ChatList(msgspec.Struct, frozen=True, kw_only=True):
    chats: list[ChatSummary]
    before: str | None


class ChatHistory(msgspec.Struct, frozen=True, kw_only=True):
    chat: str
    events: list[EventFrame]
    more: bool


class EventsPage(msgspec.Struct, frozen=True, kw_only=True):
    """Events after a cursor, in order; `cursor` is where the next page starts."""

    events: list[EventFrame]
    cursor: str
    more: bool


ClaimAction = Literal[
    "approve_pvz",
    "approve_no_return",
    "reject",
    "withdraw",
    "resolve_approve_pvz",
    "resolve_approve_no_return",
    "resolve_reject",
]


class ClaimInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A claim as a shop or a manager works on it; `actions` are what this user may do now."""

    claim: str
    chat: str
    order: OrderCard
    state: str
    amount: Money
    updated_at: datetime
    attachments: list[Attachment] = []
    actions: list[ClaimAction] = []
    requested_at: datetime | None = None
    due: datetime | None = None
    comment: str | None = None
    reason: str | None = None


class ClaimList(msgspec.Struct, frozen=True, kw_only=True):
    claims: list[ClaimInfo]
    total: int


class Download(msgspec.Struct, frozen=True, kw_only=True):
    """A downloaded file: its bytes, and the type and name the server sniffed for it."""

    content: bytes
    mime: str
    name: str | None


KeyScope = Literal["chat:read", "chat:write", "returns:write"]


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A shop's live API key as listed: never the key itself."""

    id: str
    name: str
    scopes: list[KeyScope]
    created_at: datetime


class NewApiKey(ApiKey, frozen=True, kw_only=True):
    """A key just created: `key` is in this answer only (the server keeps its hash)."""

    key: str


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """A shop's webhook endpoint as listed: never its secret."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    description: str | None = None


class NewWebhook(Webhook, frozen=True, kw_only=True):
    """An endpoint just created: `secret` (`whsec_...`) signs its deliveries and is in this
    answer only."""

    secret: str


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery attempt: `status` is what became of it (`failed`: given up),
    `response_status` the endpoint's own HTTP status."""

    webhook_id: str
    event: str
    chat: str
    seq: int
    attempt: int
    status: Literal["delivered", "retrying", "failed"]
    time: datetime
    response_status: int | None
    error: str | None


class _Operators(msgspec.Struct, frozen=True):
    operators: list[Operator]


class Template(msgspec.Struct, frozen=True, kw_only=True):
    """A canned reply of the shop, shared by its operators."""

    id: str
    shortcut: str
    title: str
    text: str


class _Keys(msgspec.Struct, frozen=True):
    keys: list[ApiKey]


class _Templates(msgspec.Struct, frozen=True):
    templates: list[Template]


class _Webhooks(msgspec.Struct, frozen=True):
    webhooks: list[Webhook]


class _Deliveries(msgspec.Struct, frozen=True):
    deliveries: list[Delivery]


class _Balances(msgspec.Struct, frozen=True):
    balances: list[Money]


class _Rows(msgspec.Struct, frozen=True):
    rows: list[SalesRow]


class _ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str = ""
    details: dict[str, Any] | None = None


class _ErrorReply(msgspec.Struct, frozen=True):
    error: _ErrorBody


def http_base(ws_url: str) -> str:
    """The HTTP base of a WebSocket URL: ws://host:port/ws -> http://host:port.

    >>> http_base("wss://chat.example/ws")
    'https://chat.example'
    """
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path[: -len("/ws")] if parts.path.endswith("/ws") else parts.path
    return urlunsplit((scheme, parts.netloc, path.rstrip("/"), "", ""))


class HttpApi:
    """The HTTP API with one user's Bearer token. Refusals raise `ChatError` with the wire
    code and `status`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    async def __aenter__(self) -> HttpApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register_order(self, order: OrderCard) -> OrderCard:
        """Registers an order (system). The same body again is fine; another body under the
        same id is `conflict`."""
        response = await self._http.post(
            "/api/v1/orders",
            content=msgspec.json.encode(order),
            headers={"Content-Type": "application/json"},
        )
        return _decode(response, OrderCard)

    async def logistics(
        self, order: str, event: GoodsState, defect: bool | None = None
    ) -> LogisticsDone:
        """Reports the returned goods: `handed_in`, `arrived` (refunds), `inspected`."""
        body: dict[str, Any] = {"event": event}
        if defect is not None:
            body["defect"] = defect
        path = f"/api/v1/orders/{quote(order, safe='')}/logistics"
        response = await self._http.post(path, json=body)
        return _decode(response, LogisticsDone)

    async def balance(self) -> list[Money]:
        """The user's balances, one per currency (buyer, seller)."""
        return _decode(await self._http.get("/api/v1/balance"), _Balances).balances

    async def sales_report(self) -> list[SalesRow]:
        """The shop's ledger rows; a refund's reason is «Возврат» (seller)."""
        return _decode(await self._http.get("/api/v1/reports/sales"), _Rows).rows

    async def upload(self, name: str, content: bytes, mime: str) -> FileInfo:
        """Uploads a JPEG, PNG or PDF to send as an attachment (buyer, seller)."""
        response = await self._http.post("/api/v1/files", files={"file": (name, content, mime)})
        return _decode(response, FileInfo)

    # ---- the chat without a socket -------------------------------------------------------------

    async def chats(self, before: str | None = None, limit: int = 50) -> ChatList:
        """The user's chats, most recent activity first (`before`: the previous page's)."""
        params = _params(before=before, limit=limit)
        return _decode(await self._call("GET", "/api/v1/chats", params=params), ChatList)

    async def history(self, chat: str, before: int | None = None, limit: int = 50) -> ChatHistory:
        """A chat's events before seq `before` (the newest without it), ascending."""
        path = f"/api/v1/chats/{quote(chat, safe='')}/history"
        params = _params(before=before, limit=limit)
        return _decode(await self._call("GET", path, params=params), ChatHistory)

    async def send(
        self,
        chat: str,
        text: str = "",
        attachments: Sequence[str] = (),
        *,
        files: Sequence[tuple[str, bytes, str]] = (),
        idempotency_key: str | None = None,
        retries: int = 3,
    ) -> Acked:
        """Sends a message (buyer, seller): `attachments` are ids of files uploaded before;
        `files` (name, content, mime) are uploaded with it, as multipart.

        The request carries an `Idempotency-Key` (a new one unless given) and is sent again
        with it, up to `retries` times, when the connection fails before an answer: the
        message is written once however often it arrives."""
        key = idempotency_key or uuid.uuid4().hex
        path = f"/api/v1/chats/{quote(chat, safe='')}/messages"
        headers = {"Idempotency-Key": key}
        for attempt in range(retries + 1):
            try:
                if files:
                    form = {"text": text}
                    parts = [("file", file) for file in files]
                    response = await self._call(
                        "POST", path, data=form, files=parts, headers=headers
                    )
                else:
                    body = {"text": text, "attachments": list(attachments)}
                    response = await self._call("POST", path, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == retries:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            acked = _decode(response, Acked)
            return msgspec.structs.replace(acked, repeated=response.status_code == 200)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def events(
        self, cursor: str | None = None, limit: int = 100, wait: float = 0.0
    ) -> EventsPage:
        """The events this user may see after `cursor` (from the beginning without one), at
        most `limit` (1-1000); with none yet, the server waits up to `wait` seconds (0-30)
        for the first one. `bad_cursor` for a cursor of another log."""
        params = _params(cursor=cursor, limit=limit, wait=wait)
        # The server holds the answer up to `wait`: the client waits that much longer.
        timeout = self._http.timeout.read or 10.0
        response = await self._call("GET", "/api/v1/events", params=params, timeout=wait + timeout)
        return _decode(response, EventsPage)

    async def follow(
        self, cursor: str | None = None, *, wait: float = 25.0, retry_delay: float = 0.5
    ) -> AsyncIterator[EventFrame]:
        """Every event after `cursor`, in order, for as long as it is iterated, by long-poll.

        A failed connection (a server restarting, say) is tried again after `retry_delay`
        from the same cursor, so nothing is lost or repeated. Store the `cursor` of the
        last event handled and pass it back to go on where it stopped."""
        while True:
            try:
                page = await self.events(cursor, limit=1000, wait=wait)
            except httpx.TransportError:
                await asyncio.sleep(retry_delay)
                continue
            except ChatError as exc:
                # A server stopping answers 503 until it is gone; one starting the same.
                if exc.status != 503:
                    raise
                await asyncio.sleep(retry_delay)
                continue
            for event in page.events:
                yield event
            cursor = page.cursor

    async def claims(
        self,
        *,
        state: str | None = None,
        order: str | None = None,
        article: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ClaimList:
        """The claims a shop (its own) or a manager (disputed and escalated) works on,
        newest first, each with the actions this user may take on it now."""
        params = _params(state=state, order=order, article=article, limit=limit, offset=offset)
        return _decode(await self._call("GET", "/api/v1/claims", params=params), ClaimList)

    async def claim_action(
        self,
        claim: str,
        action: ClaimAction,
        *,
        amount: Money | None = None,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Acked:
        """Carries out one of a claim's `actions`; refused as the matching frame would be.
        An approval names the amount it refunds (the claim's `amount`)."""
        body: dict[str, Any] = {"action": action}
        if amount is not None:
            body["amount"] = msgspec.to_builtins(amount)
        if reason is not None:
            body["reason"] = reason
        if comment is not None:
            body["comment"] = comment
        path = f"/api/v1/claims/{quote(claim, safe='')}/actions"
        return _decode(await self._call("POST", path, json=body), Acked)

    async def download(self, file: str) -> Download:
        """A file's content (an attachment, an order's photo) as this user may see it;
        `not_found` for one they may not."""
        response = await self._call("GET", f"/api/v1/files/{quote(file, safe='')}")
        _raise_for_error(response)
        mime = response.headers.get("content-type", "application/octet-stream")
        return Download(
            content=response.content,
            mime=mime.split(";")[0].strip(),
            name=_filename(response.headers.get("content-disposition", "")),
        )

    # ---- a shop's API keys and webhooks ---------------------------------------------------------

    async def create_key(self, name: str, scopes: Sequence[KeyScope]) -> NewApiKey:
        """Creates an API key for the operator's shop (a seller token; a key cannot). Keep
        `key` from the answer: it is never shown again."""
        body = {"name": name, "scopes": list(scopes)}
        return _decode(await self._call("POST", "/api/v1/keys", json=body), NewApiKey)

    async def keys(self) -> list[ApiKey]:
        """The shop's live keys, oldest first."""
        return _decode(await self._call("GET", "/api/v1/keys"), _Keys).keys

    async def revoke_key(self, key: str) -> None:
        """Revokes a key by its `id`: refused at once on every node, its sockets closed.
        `not_found` for another shop's key or one revoked before."""
        response = await self._call("DELETE", f"/api/v1/keys/{quote(key, safe='')}")
        _raise_for_error(response)

    async def create_webhook(
        self, url: str, events: Sequence[str] = ("*",), description: str | None = None
    ) -> NewWebhook:
        """Adds an endpoint that receives the shop's events of the kinds in `events` (`*`:
        every kind) from now on. Keep `secret`: it verifies the signatures and is never
        shown again."""
        body: dict[str, Any] = {"url": url, "events": list(events)}
        if description is not None:
            body["description"] = description
        return _decode(await self._call("POST", "/api/v1/webhooks", json=body), NewWebhook)

    async def webhooks(self) -> list[Webhook]:
        """The shop's endpoints, oldest first."""
        return _decode(await self._call("GET", "/api/v1/webhooks"), _Webhooks).webhooks

    async def delete_webhook(self, webhook: str) -> None:
        """Deletes an endpoint: nothing more is delivered to it."""
        response = await self._call("DELETE", f"/api/v1/webhooks/{quote(webhook, safe='')}")
        _raise_for_error(response)

    async def operators(self) -> list[Operator]:
        """The operators the shop is known to have, whom an `assign` may name (by name)."""
        return _decode(await self._call("GET", "/api/v1/operators"), _Operators).operators

    async def deliveries(self, webhook: str, limit: int = 50) -> list[Delivery]:
        """An endpoint's latest delivery attempts, newest first (`limit` 1-200)."""
        path = f"/api/v1/webhooks/{quote(webhook, safe='')}/deliveries"
        response = await self._call("GET", path, params=_params(limit=limit))
        return _decode(response, _Deliveries).deliveries

    # ---- a shop's canned replies -----------------------------------------------------------------

    async def templates(self) -> list[Template]:
        """The shop's canned replies, by shortcut. A shop's first listing finds a few
        defaults there."""
        return _decode(await self._call("GET", "/api/v1/templates"), _Templates).templates

    async def create_template(self, shortcut: str, title: str, text: str) -> Template:
        """A new canned reply. `conflict` for a shortcut the shop has already,
        `contacts_forbidden` (with `details.spans` in `text`) for contacts in the text."""
        body = {"shortcut": shortcut, "title": title, "text": text}
        return _decode(await self._call("POST", "/api/v1/templates", json=body), Template)

    async def update_template(
        self, template: str, shortcut: str, title: str, text: str
    ) -> Template:
        """Replaces a canned reply's three fields (checked as for `create_template`)."""
        body = {"shortcut": shortcut, "title": title, "text": text}
        path = f"/api/v1/templates/{quote(template, safe='')}"
        return _decode(await self._call("PUT", path, json=body), Template)

    async def delete_template(self, template: str) -> None:
        """Deletes a canned reply; `not_found` for one of another shop or deleted before."""
        response = await self._call("DELETE", f"/api/v1/templates/{quote(template, safe='')}")
        _raise_for_error(response)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; past the rate limit (429), waits as told and tries again, a few
        times, so that a script that runs ahead is slowed rather than failed."""
        for _ in range(_RATE_RETRIES):
            response = await self._http.request(method, path, **kwargs)
            if response.status_code != 429:
                return response
            await asyncio.sleep(_retry_after(response))
        return response

    async def get_json(self, path: str) -> Any:
        """Any GET of the API, as plain JSON."""
        response = await self._http.get(path)
        _raise_for_error(response)
        return msgspec.json.decode(response.content)

    async def healthy(self) -> bool:
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False


_RATE_RETRIES = 4


def _retry_after(response: httpx.Response) -> float:
    """The wait a 429 asks for: `details.retry_after` (to the millisecond), else
    `Retry-After` (whole seconds)."""
    try:
        details = msgspec.json.decode(response.content, type=_ErrorReply).error.details
        return float((details or {})["retry_after"])
    except (msgspec.MsgspecError, KeyError, TypeError, ValueError):
        return float(response.headers.get("retry-after", "1"))


def _filename(disposition: str) -> str | None:
    """The name in a `Content-Disposition`: RFC 5987's `filename*` (UTF-8, how a Cyrillic
    name arrives) before the plain `filename`."""
    plain: str | None = None
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        key = key.strip().lower()
        if key == "filename*" and value.lower().startswith("utf-8''"):
            return unquote(value[len("utf-8''") :])
        if key == "filename":
            plain = value.strip().strip('"')
    return plain


def _params(**values: object) -> dict[str, str]:
    """Query parameters, without those left None."""
    return {name: str(value) for name, value in values.items() if value is not None}


def _decode(response: httpx.Response, kind: type[T]) -> T:
    _raise_for_error(response)
    return msgspec.json.decode(response.content, type=kind)


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            error = msgspec.json.decode(response.content, type=_ErrorReply).error
        except msgspec.MsgspecError:
            raise ChatError(
                "internal",
                f"HTTP {response.status_code}: {response.text[:200]}",
                status=response.status_code,
            ) from None
        raise ChatError(error.code, error.message, error.details, status=response.status_code)
