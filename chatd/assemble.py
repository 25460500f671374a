"""Builds a server from its settings: store, hub, service, metrics and the app."""

from __future__ import annotations

import logging
from pathlib import Path

from chatd import auth
from chatd.domain.rules import Rules
from chatd.files import FileStore
from chatd.hub.local import LocalHub
from chatd.service import ChatService
from chatd.store.sqlite import SqliteStore, Synchronous
from chatd.web.app import ChatApp, WebSettings
from chatd.web.metrics import Metrics
from chatd.web.ws import SocketSettings

log = logging.getLogger(__name__)


def assemble(
    *,
    db: Path,
    secret: str,
    rules: Rules,
    allow_origins: tuple[str, ...] = (),
    rate: float = 20.0,
    burst: float = 40.0,
    user_rate: float = 50.0,
    user_burst: float = 100.0,
    max_connections_per_user: int = 32,
    max_queue: int = 2048,
    synchronous: Synchronous = "full",
    dev: bool = False,
    announce: tuple[str, int] | None = None,
) -> ChatApp:
    metrics = Metrics()
    store = SqliteStore(db, synchronous=synchronous, stats=metrics)
    files = FileStore(db.with_name(db.name + ".files"))
    service = ChatService(store, LocalHub(), rules, files=files)
    settings = WebSettings(
        sockets=SocketSettings(
            secret=secret,
            allow_origins=allow_origins,
            rate=rate,
            burst=burst,
            user_rate=user_rate,
            user_burst=user_burst,
            max_connections_per_user=max_connections_per_user,
            max_queue=max_queue,
        )
    )
    chat_app = ChatApp(service, settings, metrics)
    if dev:

        async def dev_ready() -> None:
            from chatd.demo import load_demo

            if await load_demo(store, rules):
                print("chatd: demo data loaded into", db, flush=True)
            if announce is not None:
                print_links(secret, *announce)

        chat_app.on_ready.append(dev_ready)
    return chat_app


def print_links(secret: str, host: str, port: int) -> None:
    from chatd.demo import IVANOV, MANAGER, OPERATOR, SHOP, TIMUR

    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    base = f"http://{shown}:{port}/"
    day = 24 * 3600
    shop = auth.issue(
        secret,
        role="seller",
        sub=OPERATOR.id,
        name=OPERATOR.name,
        seller=SHOP.id,
        shop_name=SHOP.name,
        ttl=day,
    )
    buyer = auth.issue(secret, role="buyer", sub=TIMUR.id, name=TIMUR.name, ttl=day)
    other = auth.issue(secret, role="buyer", sub=IVANOV.id, name=IVANOV.name, ttl=day)
    manager = auth.issue(secret, role="manager", sub=MANAGER.id, name=MANAGER.name, ttl=day)
    lines = [
        "",
        "chatd is ready. Open in the browser:",
        f"  shop operator ({SHOP.name}, {OPERATOR.name}): {base}#token={shop}",
        f"  buyer {TIMUR.name}:                          {base}#token={buyer}",
        f"  buyer {IVANOV.name}:          {base}#token={other}",
        f"  marketplace manager:                   {base}#token={manager}",
        "",
    ]
    print("\n".join(lines), flush=True)
