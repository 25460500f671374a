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
from chatd.files import EXTENSIONS
from chatd.web.http import Logistics
from chatd.web.integrators import ActionBody, SendBody
from chatd.web.keys_api import NewKey
from chatd.web.operators_api import OperatorsAnswer
from chatd.web.templates_api import TemplateBody, TemplatesAnswer, TemplateShown
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


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """Each part's state: `ok`, else `failing` or `timeout` (then the answer is 503, with the
    same `checks` in `error.details`)."""

    status: Literal["ok"]
    checks: dict[str, Literal["ok", "failing", "timeout"]]


# ---- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: Any
    description: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "POST", "PUT", "DELETE"]
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
    Operation("GET", "/livez", "Whether the process answers at all", "anyone", answer=Health),
    Operation(
        "GET", "/readyz", "Whether the store and the hub answer now (503: which does not)",
        "anyone", answer=Readiness,
    ),
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
    Operation(
        "GET", "/api/v1/templates",
        "The shop's canned replies, by shortcut; a shop's first listing gets the defaults",
        "seller (chat:write)", answer=TemplatesAnswer,
    ),
    Operation(
        "POST", "/api/v1/templates",
        "Creates a canned reply (a shortcut the shop has already: 409; contacts: 422)",
        "seller (chat:write)", body=TemplateBody, answer=TemplateShown, status=201,
    ),
    Operation(
        "PUT", "/api/v1/templates/{template}", "Replaces a canned reply's shortcut, title and text",
        "seller (chat:write)", body=TemplateBody, answer=TemplateShown,
    ),
    Operation(
        "DELETE", "/api/v1/templates/{template}", "Deletes a canned reply",
        "seller (chat:write)", status=204,
    ),
    Operation(
        "GET", "/api/v1/operators",
        "The operators the shop is known to have (seen signed in), whom `assign` may name",
        "seller (chat:read)", answer=OperatorsAnswer,
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
    422: "a rule refused what was written (`contacts_forbidden`, `amount_mismatch`)",
    429: "rate limited: see Retry-After",
    503: "unavailable: the store, the hub or the server cannot answer now",
}

# Open to anyone: no credentials, and no security requirement in the document.
_PUBLIC = frozenset(("/healthz", "/livez", "/readyz"))


# The parts of a multipart form: a file's bytes, or a text field.
_FORM_PARTS: dict[str, dict[str, str]] = {
    "file": {"type": "string", "format": "binary"},
    "text": {"type": "string"},
    "message": {"type": "string"},
    "replySign": {"type": "string"},
}


# OpenAPI links: where a success's answer names what another operation takes, so that a
# client (and schemathesis' stateful runs, tests/e2e/test_schemathesis_stateful.py) can follow
# one call with the next. Keyed by the operation answering; each link is (method, path) of
# the operation it leads to and that operation's parameters as runtime expressions.
_Link = tuple[str, str, dict[str, str]]
_HISTORY = "/api/v1/chats/{chat}/history"
_MESSAGES = "/api/v1/chats/{chat}/messages"
_ACTIONS = "/api/v1/claims/{claim}/actions"
_LINKS: dict[tuple[str, str], dict[str, _Link]] = {
    ("POST", "/api/v1/orders"): {
        "logistics": ("POST", "/api/v1/orders/{order}/logistics", {"order": "$response.body#/id"}),
    },
    ("POST", "/api/v1/files"): {
        "download": ("GET", "/api/v1/files/{file}", {"file": "$response.body#/id"}),
    },
    ("GET", "/api/v1/chats"): {
        "history": ("GET", _HISTORY, {"chat": "$response.body#/chats/0/chat"}),
        "send": ("POST", _MESSAGES, {"chat": "$response.body#/chats/0/chat"}),
        "act": ("POST", _ACTIONS, {"claim": "$response.body#/chats/0/claims/0/claim"}),
    },
    ("GET", _HISTORY): {"send": ("POST", _MESSAGES, {"chat": "$response.body#/chat"})},
    ("POST", _MESSAGES): {"history": ("GET", _HISTORY, {"chat": "$response.body#/chat"})},
    ("GET", "/api/v1/events"): {
        "next": ("GET", "/api/v1/events", {"cursor": "$response.body#/cursor"}),
        "history": ("GET", _HISTORY, {"chat": "$response.body#/events/0/chat"}),
    },
    ("GET", "/api/v1/claims"): {
        "act": ("POST", _ACTIONS, {"claim": "$response.body#/claims/0/claim"}),
        "history": ("GET", _HISTORY, {"chat": "$response.body#/claims/0/chat"}),
    },
    ("POST", _ACTIONS): {
        "again": ("POST", _ACTIONS, {"claim": "$response.body#/claim"}),
        "history": ("GET", _HISTORY, {"chat": "$response.body#/chat"}),
    },
    ("POST", "/api/v1/keys"): {
        "revoke": ("DELETE", "/api/v1/keys/{key}", {"key": "$response.body#/id"}),
    },
    ("GET", "/api/v1/keys"): {
        "revoke": ("DELETE", "/api/v1/keys/{key}", {"key": "$response.body#/keys/0/id"}),
    },
    ("POST", "/api/v1/webhooks"): {
        "delete": ("DELETE", "/api/v1/webhooks/{webhook}", {"webhook": "$response.body#/id"}),
        "deliveries": (
            "GET", "/api/v1/webhooks/{webhook}/deliveries", {"webhook": "$response.body#/id"}
        ),
    },
    ("GET", "/api/v1/webhooks"): {
        "delete": (
            "DELETE", "/api/v1/webhooks/{webhook}", {"webhook": "$response.body#/webhooks/0/id"}
        ),
        "deliveries": (
            "GET", "/api/v1/webhooks/{webhook}/deliveries",
            {"webhook": "$response.body#/webhooks/0/id"},
        ),
    },
    ("POST", "/api/v1/templates"): {
        "replace": ("PUT", "/api/v1/templates/{template}", {"template": "$response.body#/id"}),
        "delete": ("DELETE", "/api/v1/templates/{template}", {"template": "$response.body#/id"}),
    },
    ("GET", "/api/v1/templates"): {
        "replace": (
            "PUT", "/api/v1/templates/{template}", {"template": "$response.body#/templates/0/id"}
        ),
        "delete": (
            "DELETE", "/api/v1/templates/{template}",
            {"template": "$response.body#/templates/0/id"},
        ),
    },
    ("PUT", "/api/v1/templates/{template}"): {
        "delete": ("DELETE", "/api/v1/templates/{template}", {"template": "$response.body#/id"}),
    },
}  # fmt: skip


def _links(op: Operation, known: set[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAPI links of `op`'s success, to operations of the document (`known`)."""
    return {
        name: {
            "operationId": _operation_id(Operation(method, path, "", "")),  # type: ignore[arg-type]
            "parameters": parameters,
        }
        for name, (method, path, parameters) in _LINKS.get((op.method, op.path), {}).items()
        if (method, path) in known
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
    known: set[tuple[str, str]] = {(op.method, op.path) for op in operations}
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
            # A file is served as the type its content was sniffed as (chatd.files).
            success["content"] = {mime: {} for mime in EXTENSIONS}
        links = _links(op, known)
        if links:
            success["links"] = links
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
        if op.path not in _PUBLIC:
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
