"""`/api/v1/webhooks`: a shop's webhook endpoints (docs/protocol.md, "Webhooks").

A shop (an operator's token, or an API key with `chat:read`: see `webhooks` in
chatd.domain.policy) creates an endpoint with a URL and the event kinds it wants and is
shown its signing secret once; lists its endpoints (never the secrets); deletes one, which
stops its deliveries on this node at once and on the others at their next renewal of its
lease; and reads an endpoint's latest delivery attempts. Deliveries themselves are
chatd.webhooks.delivery's.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal, cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatd.service import ChatService
from chatd.store.base import DeliveryRecord, WebhookRecord
from chatd.web.http import Api, ApiError, _small_body, json_response
from chatd.webhooks import destinations, signing
from chatd.webhooks.delivery import WebhookDispatcher
from chatd.webhooks.settings import WebhookSettings
from protocol.codes import ErrorCode
from protocol.events import CHAT_KINDS

# A URL of 2 048 characters and every kind, every character escaped, fit in 16 KiB.
MAX_BODY = 16 * 1024
MAX_DESCRIPTION = 200
# Each endpoint is a worker and a lease on some node: a shop needs a handful, not thousands.
MAX_PER_SHOP = 20
DELIVERIES_SHOWN = 50
Outcome = Literal["delivered", "retrying", "failed"]


class NewWebhook(msgspec.Struct, frozen=True):
    url: str
    events: list[str]
    description: str | None = None


_new_webhook = msgspec.json.Decoder(NewWebhook)


def events_of(asked: list[str]) -> tuple[str, ...]:
    """The kinds an endpoint asked for, each once in the order given, or `("*",)`;
    ValueError for an empty list, an unknown kind, or `*` beside kinds."""
    if not asked:
        raise ValueError('`events` lists event kinds, or is ["*"] for every kind')
    if "*" in asked:
        if set(asked) != {"*"}:
            raise ValueError('`events` is either ["*"] or a list of kinds, not both')
        return ("*",)
    unknown = sorted(set(asked) - CHAT_KINDS)
    if unknown:
        raise ValueError(f"unknown event kinds: {', '.join(unknown)}")
    return tuple(dict.fromkeys(asked))


class WebhookShown(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An endpoint as listed (never with its secret)."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    description: str | None = None


class WebhookCreated(WebhookShown, frozen=True, kw_only=True, omit_defaults=True):
    """An endpoint as created: with its signing secret, shown this once."""

    secret: str


class WebhooksAnswer(msgspec.Struct, frozen=True, kw_only=True):
    webhooks: list[WebhookShown]


class DeliveryShown(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt: `status` is what became of it, `response_status` the endpoint's own."""

    webhook_id: str
    event: str  # its kind
    chat: str
    seq: int
    attempt: int
    status: Outcome
    time: datetime
    response_status: int | None
    error: str | None


class DeliveriesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    deliveries: list[DeliveryShown]


def _shown(record: WebhookRecord) -> WebhookShown:
    return WebhookShown(
        id=record.id,
        url=record.url,
        events=list(record.events),
        created_at=record.created_at,
        description=record.description,
    )


def _attempt(delivery: DeliveryRecord) -> DeliveryShown:
    return DeliveryShown(
        webhook_id=delivery.message,
        event=delivery.kind,
        chat=delivery.chat,
        seq=delivery.seq,
        attempt=delivery.attempt,
        status=cast(Outcome, delivery.outcome),
        time=delivery.at,
        response_status=delivery.status,
        error=delivery.error,
    )


class WebhooksApi:
    """The routes. `bind` gives them the app's `Api` (who a request is), which is made with
    the app, after the routes."""

    def __init__(
        self, service: ChatService, dispatcher: WebhookDispatcher, settings: WebhookSettings
    ) -> None:
        self.service = service
        self.dispatcher = dispatcher
        self.settings = settings
        self._api: Api | None = None

    def bind(self, api: Api) -> None:
        self._api = api

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route("/api/v1/webhooks/{webhook:str}", self.delete, methods=["DELETE"]),
            Route("/api/v1/webhooks/{webhook:str}/deliveries", self.deliveries),
        ]

    def _shop(self, request: Request) -> str:
        """The shop asking; 401 / 403 for anyone else (a key without `chat:read` too)."""
        assert self._api is not None, "bind() runs when the app is made"
        actor = self._api.actor(request)
        Api._require(actor, "webhooks")
        assert actor.shop is not None, "the policy lets only shops manage webhooks"
        return actor.shop

    async def webhooks(self, request: Request) -> Response:
        shop = self._shop(request)
        store = self.service.store
        if request.method == "GET":
            live = await store.webhooks_of_shop(shop)
            return json_response(WebhooksAnswer(webhooks=[_shown(record) for record in live]))
        try:
            body = _new_webhook.decode(await _small_body(request, MAX_BODY))
            events = events_of(body.events)
            description = body.description.strip() if body.description is not None else None
            if description is not None and len(description) > MAX_DESCRIPTION:
                raise ValueError(f"`description` is at most {MAX_DESCRIPTION} characters")
            await destinations.check(body.url, allow_private=self.settings.allow_private)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # DestinationRefused is a ValueError: a private or malformed URL is a bad request.
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid webhook: {exc}") from exc
        if len(await store.webhooks_of_shop(shop)) >= MAX_PER_SHOP:
            raise ApiError(ErrorCode.CONFLICT, f"a shop has at most {MAX_PER_SHOP} webhooks")
        record = WebhookRecord(
            id="wh_" + secrets.token_hex(8),
            shop=shop,
            url=body.url,
            events=events,
            description=description or None,
            secret=signing.new_secret(),
            created_at=self.service.now(),
        )
        # Owed what the shop's feed holds from now on, not its history.
        await store.create_webhook(record, await store.last_position())
        self.dispatcher.poke()
        # The only answer that carries the secret.
        shown = WebhookCreated(
            id=record.id,
            url=record.url,
            events=list(record.events),
            created_at=record.created_at,
            description=record.description,
            secret=record.secret,
        )
        return json_response(shown, 201)

    async def delete(self, request: Request) -> Response:
        shop = self._shop(request)
        endpoint = request.path_params["webhook"]
        # Another shop's endpoint is answered as one that does not exist.
        if not await self.service.store.delete_webhook(shop, endpoint, self.service.now()):
            raise ApiError(ErrorCode.NOT_FOUND, "no such webhook")
        self.dispatcher.stop(endpoint)
        return Response(status_code=204)

    async def deliveries(self, request: Request) -> Response:
        shop = self._shop(request)
        endpoint = request.path_params["webhook"]
        store = self.service.store
        if endpoint not in {record.id for record in await store.webhooks_of_shop(shop)}:
            raise ApiError(ErrorCode.NOT_FOUND, "no such webhook")
        raw = request.query_params.get("limit", "")
        limit = DELIVERIES_SHOWN
        if raw:
            if not raw.isdigit() or not 1 <= int(raw) <= 200:
                raise ApiError(ErrorCode.BAD_FRAME, "`limit` is a whole number from 1 to 200")
            limit = int(raw)
        attempts = await store.webhook_deliveries(endpoint, limit)
        return json_response(DeliveriesAnswer(deliveries=[_attempt(d) for d in attempts]))
