"""The starlette application: routes, lifespan (store and hub), and shutdown."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chatd.auth import PublicKey
from chatd.claim_views import ClaimViews
from chatd.credentials import Credentials
from chatd.domain.actors import Actor
from chatd.observability.options import DEFAULT_METRICS_ALLOW
from chatd.service import ChatService
from chatd.store.base import StoreUnavailable
from chatd.web.asyncapi import asyncapi_document
from chatd.web.entry import Entry
from chatd.web.headers import SecurityHeaders
from chatd.web.health import Probes
from chatd.web.http import (
    Api,
    ApiError,
    api_error_handler,
    client_gone_handler,
    not_found_handler,
    server_error_handler,
    store_unavailable_handler,
)
from chatd.web.http_deadline import AnswerHttpInTime
from chatd.web.http_errors import API_FALLBACK, http_exception_handler
from chatd.web.http_limits import HttpLimits, HttpLimitSettings
from chatd.web.http_observer import ObserveHttp
from chatd.web.integrators import Integrators
from chatd.web.key_auth import ResolveKeys
from chatd.web.keys_api import KeysApi
from chatd.web.metrics import Metrics
from chatd.web.openapi import openapi_document
from chatd.web.operators_api import OperatorsApi
from chatd.web.templates_api import TemplatesApi
from chatd.web.wb_compat import WB_PREFIX, WbCompat
from chatd.web.ws import Sockets, SocketSettings

log = logging.getLogger(__name__)


def _document(make: Callable[[], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
    """A route answering a document made once, at the first request."""
    made: list[bytes] = []

    async def answer(request: Request) -> Response:
        if not made:
            made.append(msgspec.json.encode(make()))
        return Response(made[0], media_type="application/json")

    return answer


STATIC = Path(__file__).parent / "static"
SOCKET_PATH = "/ws"


@dataclass(frozen=True)
class WebSettings:
    sockets: SocketSettings
    metrics_allow: tuple[str, ...] = DEFAULT_METRICS_ALLOW
    http_limits: HttpLimitSettings = field(default_factory=HttpLimitSettings)
    extra_routes: list[Route | Mount] = field(default_factory=list)
    # The marketplace's keys for RS256, ES256 and EdDSA tokens (`--jwt-public-key`).
    public_keys: tuple[PublicKey, ...] = ()


class ChatApp:
    """The app and the parts a server process needs to reach (sockets, for shutdown)."""

    def __init__(self, service: ChatService, settings: WebSettings, metrics: Metrics) -> None:
        self.service = service
        self.metrics = metrics
        # Tokens and API keys, verified alike on HTTP and /ws.
        credentials = Credentials(settings.sockets.secret, service.store, settings.public_keys)
        self.sockets = Sockets(service, settings.sockets, metrics, credentials)
        # Run once the store is open, before the server reports ready (demo data, say).
        self.on_ready: list[Callable[[], Awaitable[None]]] = []
        # Run once the server listens (chatd.process.server): what tells a person to connect.
        self.on_listening: list[Callable[[], None]] = []
        self.api = Api(
            service, settings.sockets.secret, metrics, settings.metrics_allow, credentials
        )
        claims = ClaimViews(service.store, service.states, service.rules, service.now)
        self.integrators = Integrators(self.api, claims)
        http = self.integrators
        self.wb = WbCompat(self.api, http)
        self.probes = Probes(self.api, service.store, service.hub)
        routes: list[Route | Mount] = [
            Route("/healthz", self.api.healthz),
            # For an orchestrator: the process answers; the store and the hub answer now.
            Route("/livez", self.probes.livez),
            Route("/readyz", self.probes.readyz),
            # The contract, made from the code (chatd.web.openapi, chatd.web.asyncapi); the
            # browser app's static files have the page that renders both, at /docs/.
            Route("/openapi.json", _document(openapi_document)),
            Route("/asyncapi.json", _document(asyncapi_document)),
            Route("/metrics", self.api.metrics_page),
            Route("/api/v1/orders", self.api.register_order, methods=["POST"]),
            Route("/api/v1/orders/{order:str}/logistics", self.api.logistics, methods=["POST"]),
            Route("/api/v1/files", self.api.upload, methods=["POST"]),
            Route("/api/v1/files/{file:str}", self.api.download),
            Route("/api/v1/balance", self.api.balance),
            Route("/api/v1/reports/sales", self.api.sales_report),
            # HTTP without a socket (chatd.web.integrators).
            Route("/api/v1/chats", http.chats),
            Route("/api/v1/chats/{chat:str}/history", http.history),
            Route("/api/v1/chats/{chat:str}/messages", http.send, methods=["POST"]),
            Route("/api/v1/events", http.events),
            Route("/api/v1/claims", http.claims),
            Route("/api/v1/claims/{claim:str}/actions", http.claim_action, methods=["POST"]),
            *KeysApi(self.api, service).routes(),
            # The shop's canned replies (chatd.web.templates_api).
            *TemplatesApi(self.api, service).routes(),
            # Whom a shop's chats may be assigned to (chatd.web.operators_api).
            *OperatorsApi(self.api, service).routes(),
            # WB's Buyers Chat API shapes, for a shop's API key (chatd.web.wb_compat).
            *self.wb.routes(),
            *settings.extra_routes,
        ]
        routes.append(API_FALLBACK)
        self.routes = routes  # what /openapi.json must describe (tests/web/test_api_documents.py)
        if STATIC.is_dir():
            routes.append(Mount("/", StaticFiles(directory=STATIC, html=True), name="static"))
        # SecurityHeaders and HttpLimits outside Starlette, so that its own 500 answers
        # carry their headers too.
        # `Exception` is starlette's handler of last resort (a JSON 500 instead of text).
        # AnswerHttpInTime outside ResolveKeys: the key's look-up waits on the store too.
        # ResolveKeys outside HttpLimits: a request's API key is looked up (once) before
        # anything asks who the request is (chatd.web.key_auth). ObserveHttp outside them
        # all, so that it counts every answer: their 429s and 500s too.
        http_stack = ObserveHttp(
            SecurityHeaders(
                AnswerHttpInTime(
                    ResolveKeys(
                        HttpLimits(
                            Starlette(
                                routes=routes,
                                lifespan=self._lifespan,
                                exception_handlers={
                                    ApiError: api_error_handler,
                                    ClientDisconnect: client_gone_handler,
                                    StoreUnavailable: store_unavailable_handler,
                                    404: not_found_handler,
                                    HTTPException: http_exception_handler,
                                    Exception: server_error_handler,
                                },
                            ),
                            self._requester,
                            settings.http_limits,
                        ),
                        credentials,
                    ),
                    settings.sockets.answer_deadline,
                )
            ),
            routes,
            metrics,
        )
        # A socket goes past all of it (chatd.web.entry): what it passes, it keeps
        # suspended for its whole life.
        self.app = Entry(http_stack, SOCKET_PATH, self.sockets.serve)

    async def _requester(self, request: Request) -> Actor | None:
        """Who a request is, by the credentials the routes read, for its rate limit."""
        try:
            return self.api.actor(request)
        except ApiError:
            pass
        # The WB-compatible routes also take a key without `Bearer`: its own bucket too.
        if request.url.path.startswith(WB_PREFIX):
            try:
                return self.wb.actor(request)
            except ApiError:
                return None
        return None

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.service.store.open()
        if self.service.files is not None:
            self.service.files.open()
        await self.service.hub.start()
        for hook in self.on_ready:
            await hook()
        self.api.ready = True
        log.info("store open (log %s)", self.service.store.log_id)
        self.metrics.pauses.start()
        try:
            yield
        finally:
            self.api.ready = False
            await self.sockets.close_all()
            await self.metrics.pauses.stop()
            await self.service.hub.stop()
            await self.service.store.close()

    async def shutdown(self) -> None:
        """Before the server stops: close every socket with 1001 after flushing its queue."""
        self.api.ready = False
        # Long-polls answer at once with what they have, rather than hold the shutdown.
        self.integrators.close()
        await self.sockets.close_all()
