"""The starlette application: routes, lifespan (store and hub), and shutdown."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from chatd.service import ChatService
from chatd.web.headers import SecurityHeaders
from chatd.web.http import Api, ApiError, api_error_handler, not_found_handler
from chatd.web.metrics import Metrics
from chatd.web.wire import ExposeWire
from chatd.web.ws import Sockets, SocketSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class WebSettings:
    sockets: SocketSettings
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    extra_routes: list[Route | Mount] = field(default_factory=list)


class ChatApp:
    """The app and the parts a server process needs to reach (sockets, for shutdown)."""

    def __init__(self, service: ChatService, settings: WebSettings, metrics: Metrics) -> None:
        self.service = service
        self.metrics = metrics
        self.sockets = Sockets(service, settings.sockets, metrics)
        # Run once the store is open, before the server reports ready (demo data, say).
        self.on_ready: list[Callable[[], Awaitable[None]]] = []
        self.api = Api(service, settings.sockets.secret, metrics, settings.metrics_allow)
        routes: list[Route | Mount | WebSocketRoute] = [
            WebSocketRoute("/ws", self.sockets.serve),
            Route("/healthz", self.api.healthz),
            Route("/metrics", self.api.metrics_page),
            Route("/api/v1/orders", self.api.register_order, methods=["POST"]),
            Route("/api/v1/orders/{order:str}/logistics", self.api.logistics, methods=["POST"]),
            Route("/api/v1/files", self.api.upload, methods=["POST"]),
            Route("/api/v1/files/{file:str}", self.api.download),
            Route("/api/v1/balance", self.api.balance),
            Route("/api/v1/reports/sales", self.api.sales_report),
            *settings.extra_routes,
        ]
        if STATIC.is_dir():
            routes.append(Mount("/", StaticFiles(directory=STATIC, html=True), name="static"))
        # SecurityHeaders outside Starlette, so that its own 500 answers carry them too;
        # ExposeWire stays at the root, where uvicorn's `send` is.
        self.app = ExposeWire(
            SecurityHeaders(
                Starlette(
                    routes=routes,
                    lifespan=self._lifespan,
                    exception_handlers={ApiError: api_error_handler, 404: not_found_handler},
                )
            )
        )

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
        try:
            yield
        finally:
            self.api.ready = False
            await self.sockets.close_all()
            await self.service.hub.stop()
            await self.service.store.close()

    async def shutdown(self) -> None:
        """Before the server stops: close every socket with 1001 after flushing its queue."""
        self.api.ready = False
        await self.sockets.close_all()
