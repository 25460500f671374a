"""The HTTP API (docs/protocol.md section 8): orders and logistics from the marketplace back end,
balances and the sales report; /healthz and /metrics."""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from chatd.auth import TokenError
from chatd.credentials import Credentials, is_key
from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.orders import order_problem
from chatd.files import (
    MAX_BODY,
    MAX_FILE,
    BadUpload,
    FileRefused,
    TooLarge,
    download_name,
    read_multipart,
)
from chatd.routing import uploader_key
from chatd.service import ChatService, Done, OrderMismatch, OrderRefused
from chatd.web.headers import FILE_SECURITY_POLICY
from chatd.web.key_auth import KeyUnavailable, resolved_key
from chatd.web.metrics import Metrics
from protocol.codes import HTTP_STATUS, ErrorCode
from protocol.events import OrderCard

_json = msgspec.json.Encoder()
_order_decoder = msgspec.json.Decoder(OrderCard)


class Logistics(msgspec.Struct, frozen=True, kw_only=True):
    event: Literal["handed_in", "arrived", "inspected"]
    defect: bool = False


_logistics_decoder = msgspec.json.Decoder(Logistics)
# The largest body of an order or a logistics event. A card's longest strings, every
# character escaped, come to under 16 KiB; a larger body is refused as it arrives, so a
# client cannot make the server hold hundreds of megabytes it will refuse anyway.
MAX_API_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_json.encode(body), status_code=status, media_type="application/json")


def error_response(
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
    status: int | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code.value, "message": message}
    if details:
        error["details"] = details
    return json_response({"error": error}, status or HTTP_STATUS[code])


def from_rejection(rejection: Rejection) -> Response:
    return error_response(rejection.code, rejection.message, rejection.details)


class Api:
    def __init__(
        self,
        service: ChatService,
        secret: str,
        metrics: Metrics,
        metrics_allow: tuple[str, ...],
        credentials: Credentials | None = None,
    ) -> None:
        self.service = service
        self.secret = secret
        self.credentials = credentials or Credentials(secret, service.store)
        self.metrics = metrics
        self.metrics_allow = tuple(ip_network(n, strict=False) for n in metrics_allow)
        self.ready = False

    def actor(self, request: Request) -> Actor:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(ErrorCode.UNAUTHORIZED, "a Bearer token is required")
        token = token.strip()
        if is_key(token):
            return self.key_actor(request, token)
        try:
            return self.credentials.token(token).actor
        except TokenError as exc:
            raise ApiError(ErrorCode.UNAUTHORIZED, str(exc)) from exc

    @staticmethod
    def key_actor(request: Request, key: str) -> Actor:
        """The shop behind the API key `key` of this request: 401 for an unknown or revoked
        key, 503 when it could not be checked."""
        try:
            # Looked up in the store before the route ran (chatd.web.key_auth).
            return resolved_key(request.scope, key).actor
        except TokenError as exc:
            raise ApiError(ErrorCode.UNAUTHORIZED, str(exc)) from exc
        except KeyUnavailable as exc:
            raise ApiError(ErrorCode.UNAVAILABLE, str(exc)) from exc

    @staticmethod
    def _require(actor: Actor, action: policy.Action) -> None:
        """`forbidden` for a role that may never do `action`, and for an API key whose
        scopes do not open it (`chatd.domain.policy`)."""
        if not policy.may(actor.role, action):
            roles = " or ".join(policy.roles_for(action))
            raise ApiError(ErrorCode.FORBIDDEN, f"this needs the role {roles}")
        scoped = policy.key_refusal(actor, action)
        if scoped is not None:
            raise ApiError(scoped.code, scoped.message, scoped.details)

    async def healthz(self, request: Request) -> Response:
        if not self.ready:
            return error_response(ErrorCode.UNAVAILABLE, "the store is not open yet")
        return json_response({"status": "ok"})

    async def metrics_page(self, request: Request) -> Response:
        host = request.client.host if request.client else ""
        try:
            address = ip_address(host)
        except ValueError:
            allowed = False
        else:
            # A server listening on `::` sees IPv4 peers as ::ffff:a.b.c.d.
            if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            allowed = any(address in net for net in self.metrics_allow)
        if not allowed:
            return error_response(ErrorCode.FORBIDDEN, "metrics are not served to this address")
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def register_order(self, request: Request) -> Response:
        actor = self.actor(request)
        self._require(actor, "register_order")
        try:
            card = _order_decoder.decode(await _small_body(request))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid order: {exc}") from exc
        # Past its types, at the door: a price or date a later rule cannot compute with must
        # never reach the log, where it would fail the approval or the refund built on it.
        problem = order_problem(card, self.service.now())
        if problem is not None:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid order: {problem}")
        try:
            # The photo is looked up there, in the files the marketplace uploaded.
            status, stored = await self.service.register_order(actor, card)
        except OrderMismatch as exc:
            raise ApiError(ErrorCode.CONFLICT, str(exc), {"order": exc.order}) from exc
        except OrderRefused as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid order: {exc}") from exc
        return json_response(stored, status)

    async def logistics(self, request: Request) -> Response:
        actor = self.actor(request)
        self._require(actor, "logistics")
        try:
            body = _logistics_decoder.decode(await _small_body(request))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid logistics event: {exc}") from exc
        order = request.path_params["order"]
        outcome = await self.service.report_logistics(actor, order, body.event, body.defect)
        if isinstance(outcome, Rejection):
            return from_rejection(outcome)
        return json_response(answer_of_done(outcome))

    async def upload(self, request: Request) -> Response:
        actor = self.actor(request)
        self._require(actor, "upload")
        files = self.service.files
        if files is None:
            raise ApiError(ErrorCode.UNAVAILABLE, "this server keeps no files")
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            raise ApiError(ErrorCode.BAD_FRAME, "Content-Length is required for uploads")
        if int(declared) > MAX_BODY:
            raise ApiError(ErrorCode.TOO_LARGE, f"a file may be at most {MAX_FILE >> 20} MiB")
        owner = uploader_key(actor)
        full = await files.admit(owner)
        if full is not None:
            return _file_refused(full)
        # The body is counted as it arrives, whatever Content-Length said (a chunked body
        # may run past it): nothing past the limit is written or kept (chatd.files).
        incoming = files.incoming()
        try:
            name = await read_multipart(
                request.headers.get("content-type"), request.stream(), incoming
            )
        except TooLarge as exc:
            incoming.discard()
            return error_response(ErrorCode.TOO_LARGE, str(exc))
        except BadUpload as exc:
            incoming.discard()
            return error_response(ErrorCode.BAD_FRAME, str(exc))
        except BaseException:
            incoming.discard()
            raise
        saved = await files.store(incoming, name, owner)
        if isinstance(saved, FileRefused):
            return _file_refused(saved)
        body = {
            "id": saved.id,
            "name": saved.name,
            "mime": saved.mime,
            "size": saved.size,
            "sha256": saved.sha256,
        }
        return json_response(body, 201)

    async def download(self, request: Request) -> Response:
        return await self.file_answer(self.actor(request), request.path_params["file"])

    async def file_answer(self, actor: Actor, file_id: str) -> Response:
        """The file `file_id` for `actor`, or the error that says why not."""
        # The relation decides, in chatd.views (policy's `download` row): a role that may
        # read no file it did not upload (the system) is answered as a stranger, 404.
        found = await self.service.views.download(actor, file_id)
        if isinstance(found, Rejection):
            return from_rejection(found)
        upload, path = found
        disposition = "inline" if upload.mime.startswith("image/") else "attachment"
        # Type and name come from the sniffed content, never from what the uploader said.
        return FileResponse(
            path,
            media_type=upload.mime,
            filename=download_name(upload),
            content_disposition_type=disposition,
            headers={
                "Cache-Control": "private, max-age=86400",
                "X-Content-Type-Options": "nosniff",
                # Stricter than the app's policy: a file runs nothing, even shown as a page.
                "Content-Security-Policy": FILE_SECURITY_POLICY,
            },
        )

    async def balance(self, request: Request) -> Response:
        actor = self.actor(request)
        self._require(actor, "balance")
        balances = await self.service.views.balance(actor)
        if isinstance(balances, Rejection):
            return from_rejection(balances)
        money = [{"value": v, "currency": c} for c, v in sorted(balances.items())]
        return json_response({"balances": money})

    async def sales_report(self, request: Request) -> Response:
        actor = self.actor(request)
        self._require(actor, "sales_report")
        rows = await self.service.store.sales_report(actor.shop or "")
        return json_response(
            {
                "rows": [
                    {
                        "at": r.at,
                        "order": r.order,
                        "article": r.article,
                        "name": r.name,
                        "amount": {"value": r.value, "currency": r.currency},
                        "reason": r.reason,
                    }
                    for r in rows
                ]
            }
        )


async def _small_body(request: Request, limit: int = MAX_API_BODY) -> bytes:
    """The body, or `too_large` (413) as soon as it is known to pass `limit`: by its
    Content-Length before anything is read, else by counting the chunks as they arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(ErrorCode.TOO_LARGE, f"the body may be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(ErrorCode.TOO_LARGE, f"the body may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _file_refused(refused: FileRefused) -> Response:
    if refused.too_large:
        return error_response(ErrorCode.TOO_LARGE, refused.message, refused.details)
    return error_response(ErrorCode.BAD_FRAME, refused.message, status=415)


def answer_of_done(done: Done) -> dict[str, Any]:
    """A write's answer over HTTP: what it appended first, as the socket's `ack`."""
    body: dict[str, Any] = {"chat": done.chat, "seq": done.seq, "cursor": done.cursor}
    if done.claim is not None:
        body["claim"] = done.claim
    return body


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.code, exc.message, exc.details)


async def not_found_handler(request: Request, exc: Exception) -> Response:
    return error_response(ErrorCode.NOT_FOUND, "no such resource")


# What a request whose client went away is counted and logged as (nginx's "client closed
# request"): no answer reaches anyone, and it is nothing the server did wrong.
CLIENT_GONE = 499


async def client_gone_handler(request: Request, exc: Exception) -> Response:
    """A client that left while its body was still arriving (it closed the connection, or
    the server closed it for a body that fell behind, chatd.process.guard). Without this the
    disconnect was a 500: an error line with a traceback and a server error in /metrics."""
    return error_response(
        ErrorCode.BAD_FRAME,
        "the client went away before its request arrived whole",
        status=CLIENT_GONE,
    )


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    # The log is out of reach: the client may try again, or another node.
    return error_response(ErrorCode.UNAVAILABLE, "the log is out of reach: try again", status=503)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    return error_response(ErrorCode.INTERNAL, "internal error")
