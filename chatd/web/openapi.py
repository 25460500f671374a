"""The OpenAPI 3.1 document of the HTTP API, made from the code's own types.

One table (`OPERATIONS`) names each route's method and path, who may call it, its query
parameters, its body and its answer, by the msgspec types the handlers decode and encode
(or, where a handler builds its answer from several Structs, a Struct of the same shape
below). msgspec turns the types into JSON Schema. Two tests keep it honest: every route of
the app under `/api/` is in the table and nothing else is (tests/web/test_api_documents.py),
and real answers of a running server validate against the schemas it states
(tests/e2e/test_openapi_answers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec

from chatd.claim_views import ClaimCard
from chatd.domain.claim_actions import ClaimAction
from chatd.web.http import Logistics
from chatd.web.integrators import ActionBody, SendBody
from chatd.web.keys_api import NewKey
from chatd.web.wb_compat import WbChatsAnswer, WbEventsAnswer, WbSentAnswer
from chatd.web.webhooks_api import (
    DeliveriesAnswer,
    NewWebhook,
    WebhookCreated,
    WebhooksAnswer,
)
from protocol import PROTOCOL_REVISION
from protocol.codes import ErrorCode
from protocol.events import Money, OrderCard
from protocol.frames import ChatSummary, EventFrame

_REF = "#/components/schemas/{name}"

# ---- the shapes of answers built from several Structs -----------------------------------------


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


class ErrorAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Every status that is not a success, on every route."""

    error: ErrorBody


class Posted(msgspec.Struct, frozen=True, kw_only=True):
    """What a write appended first: as the socket's `ack`."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None


class ChatsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    chats: list[ChatSummary]
    before: str | None


class HistoryAnswer(msgspec.Struct, frozen=True, kw_only=True):
    chat: str
    events: list[EventFrame]
    more: bool


class EventsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    events: list[EventFrame]
    cursor: str
    more: bool


class ClaimsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    claims: list[ClaimCard]
    total: int


class Uploaded(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int
    sha256: str


class Balances(msgspec.Struct, frozen=True, kw_only=True):
    balances: list[Money]


class SalesRow(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    order: str
    article: str
    name: str
    amount: Money
    reason: str


class SalesReport(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[SalesRow]


class KeyShown(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime


class KeyIssued(KeyShown, frozen=True, kw_only=True):
    """Shown once: the store keeps only the key's hash."""

    key: str


class KeysAnswer(msgspec.Struct, frozen=True, kw_only=True):
    keys: list[KeyShown]


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"]


# ---- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: Any
    description: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "POST", "DELETE"]
    path: str
    summary: str
    who: str  # the roles (and key scopes) that may call it
    query: tuple[Param, ...] = ()
    body: Any = None  # a JSON body's type
    multipart: tuple[str, ...] = ()  # the form's parts, for a multipart body
    answer: Any = None  # the success body's type; None: no JSON body
    status: int = 200
    also: dict[int, str] = field(default_factory=dict)  # other successes
    binary: bool = False  # the answer is a file
    # `key`: a shop's API key in `Authorization`, with or without `Bearer` (the WB shapes).
    security: Literal["bearer", "key"] = "bearer"


_PAGE = (
    Param("before", str, "the `before` mark of the previous page"),
    Param("limit", int, "at most this many"),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "Whether the server is up", "anyone", answer=Health),
    Operation(
        "POST", "/api/v1/orders", "Registers an order (the same body again: 200)", "system",
        body=OrderCard, answer=OrderCard, status=201, also={200: "already registered"},
    ),
    Operation(
        "POST", "/api/v1/orders/{order}/logistics", "The goods of a claim moved", "system",
        body=Logistics, answer=Posted,
    ),
    Operation(
        "POST", "/api/v1/files", "Uploads a file to send in a chat (JPEG, PNG or PDF)",
        "buyer, seller, system", multipart=("file",), answer=Uploaded, status=201,
    ),
    Operation(
        "GET", "/api/v1/files/{file}", "Downloads a file", "who may see it", binary=True,
    ),
    Operation("GET", "/api/v1/balance", "The user's balances", "buyer, seller", answer=Balances),
    Operation(
        "GET", "/api/v1/reports/sales", "The shop's sales report («Возврат» rows)", "seller",
        answer=SalesReport,
    ),
    Operation(
        "GET", "/api/v1/chats", "The user's chats, latest activity first",
        "buyer, seller (chat:read), manager", query=_PAGE, answer=ChatsAnswer,
    ),
    Operation(
        "GET", "/api/v1/chats/{chat}/history", "A chat's events, newest page first",
        "participants (chat:read)", query=_PAGE, answer=HistoryAnswer,
    ),
    Operation(
        "POST", "/api/v1/chats/{chat}/messages",
        "Sends a message; `Idempotency-Key` plays `nonce` (the same key again: 200)",
        "buyer, seller (chat:write)", body=SendBody, multipart=("text", "file"),
        answer=Posted, status=201, also={200: "the same Idempotency-Key again"},
    ),
    Operation(
        "GET", "/api/v1/events", "The user's events after `cursor`, with long-poll",
        "buyer, seller (chat:read), manager",
        query=(
            Param("cursor", str, "where the last page ended; none: from the beginning"),
            Param("limit", int, "1-1000, default 100"),
            Param("wait", float, "seconds to wait for a first new event, 0-30"),
        ),
        answer=EventsAnswer,
    ),
    Operation(
        "GET", "/api/v1/claims", "Claims with the actions this user may take now",
        "seller (chat:read), manager",
        query=(
            Param("state", str), Param("order", str), Param("article", str),
            Param("limit", int), Param("offset", int),
        ),
        answer=ClaimsAnswer,
    ),
    Operation(
        "POST", "/api/v1/claims/{claim}/actions", "Carries out one of a claim's `actions`",
        "seller (returns:write), manager", body=ActionBody, answer=Posted,
    ),
    Operation("GET", "/api/v1/keys", "The shop's API keys", "seller", answer=KeysAnswer),
    Operation(
        "POST", "/api/v1/keys", "Creates an API key, shown this once", "seller",
        body=NewKey, answer=KeyIssued, status=201,
    ),
    Operation("DELETE", "/api/v1/keys/{key}", "Revokes a key at once", "seller", status=204),
    Operation(
        "GET", "/api/v1/webhooks", "The shop's webhook endpoints", "seller (chat:read)",
        answer=WebhooksAnswer,
    ),
    Operation(
        "POST", "/api/v1/webhooks", "Creates a webhook endpoint; its secret is shown this once",
        "seller (chat:read)", body=NewWebhook, answer=WebhookCreated, status=201,
    ),
    Operation(
        "DELETE", "/api/v1/webhooks/{webhook}", "Deletes an endpoint: no more deliveries",
        "seller (chat:read)", status=204,
    ),
    Operation(
        "GET", "/api/v1/webhooks/{webhook}/deliveries", "An endpoint's latest attempts",
        "seller (chat:read)", query=(Param("limit", int, "1-200, default 50"),),
        answer=DeliveriesAnswer,
    ),
    # WB's Buyers Chat API shapes, for a shop's API key (chatd.web.wb_compat).
    Operation(
        "GET", "/api/v1/seller/chats", "Every chat of the shop, in WB's shape",
        "a shop's API key (chat:read)", answer=WbChatsAnswer, security="key",
    ),
    Operation(
        "GET", "/api/v1/seller/events", "The shop's events after `next`, in WB's shape",
        "a shop's API key (chat:read)",
        query=(
            Param("next", str, "the `next` of the last answer, or a first Unix time in ms"),
            Param("limit", int, "1-1000, default 100"),
        ),
        answer=WbEventsAnswer, security="key",
    ),
    Operation(
        "POST", "/api/v1/seller/message", "Replies in the chat `replySign` names",
        "a shop's API key (chat:write)", multipart=("replySign", "message", "file"),
        answer=WbSentAnswer, security="key",
    ),
    Operation(
        "GET", "/api/v1/seller/download/{id}", "Downloads a file of the shop's chats",
        "a shop's API key (chat:read)", binary=True, security="key",
    ),
)  # fmt: skip

_ERRORS = {
    400: "bad request (`bad_frame`, `bad_cursor`)",
    401: "no valid token or key",
    403: "the role or the key's scopes do not allow it",
    404: "no such thing, or not this user's",
    409: "conflict",
    413: "too large",
    415: "not a type this route takes",
    429: "rate limited: see Retry-After",
}


# The parts of a multipart form: a file's bytes, or a text field.
_FORM_PARTS: dict[str, dict[str, str]] = {
    "file": {"type": "string", "format": "binary"},
    "text": {"type": "string"},
    "message": {"type": "string"},
    "replySign": {"type": "string"},
}


def _path_params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", op.path.lower()).strip("_")
    return f"{op.method.lower()}_{words}"


def openapi_document(extra: tuple[Operation, ...] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `OPERATIONS` (and `extra`), as JSON-ready data."""
    operations = OPERATIONS + extra
    types: list[Any] = [ErrorAnswer, ClaimAction]
    for op in operations:
        types.extend(t for t in (op.body, op.answer) if t is not None)
        types.extend(p.type for p in op.query)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(map(id, types), schemas, strict=True))
    error = _json(schema_of[id(ErrorAnswer)])
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        params += [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "schema": schema_of[id(p.type)],
                **({"description": p.description} if p.description else {}),
            }
            for p in op.query
        ]
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": "done"}
        if op.answer is not None:
            success["content"] = _json(schema_of[id(op.answer)])
        elif op.binary:
            success["content"] = {"application/octet-stream": {}}
        responses[str(op.status)] = success
        for status, description in op.also.items():
            responses[str(status)] = {**success, "description": description}
        for status, description in _ERRORS.items():
            responses[str(status)] = {"description": description, "content": error}
        entry: dict[str, Any] = {
            "summary": op.summary,
            "description": f"Who: {op.who}.",
            "operationId": _operation_id(op),
            "parameters": params,
            "responses": responses,
        }
        content: dict[str, Any] = {}
        if op.body is not None:
            content.update(_json(schema_of[id(op.body)]))
        if op.multipart:
            parts = {part: _FORM_PARTS[part] for part in op.multipart}
            content["multipart/form-data"] = {"schema": {"type": "object", "properties": parts}}
        if content:
            entry["requestBody"] = {"required": True, "content": content}
        if op.path != "/healthz":
            entry["security"] = [{op.security: []}]
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chatd HTTP API",
            "version": PROTOCOL_REVISION,
            "description": "See docs/protocol.md in the repository for the whole contract.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token (JWT) or a shop's API key (`chatd_...`)",
                },
                "key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "A shop's API key, alone or after `Bearer `",
                },
            },
        },
    }
