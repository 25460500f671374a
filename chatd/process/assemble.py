"""Builds a server from its settings: store, hub, service, metrics and the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chatd import auth
from chatd.deadline_timers import DeadlineTimers
from chatd.domain.rules import Rules
from chatd.extras import missing_extra
from chatd.files import DEFAULT_KEEP_UNSENT, DEFAULT_QUOTA, FileStore
from chatd.hub.base import Hub
from chatd.hub.local import LocalHub
from chatd.observability.options import DEFAULT_METRICS_ALLOW
from chatd.process.masking import mask_url
from chatd.service import ChatService
from chatd.store.base import EventStore
from chatd.store.sqlite import SqliteStore, Synchronous
from chatd.store.stats import StoreStats
from chatd.web.app import ChatApp, WebSettings
from chatd.web.http_limits import HttpLimitSettings
from chatd.web.metrics import Metrics
from chatd.web.webhooks_api import WebhooksApi
from chatd.web.ws import SocketSettings
from chatd.webhooks.delivery import WebhookDispatcher
from chatd.webhooks.settings import WebhookSettings


class SettingsError(ValueError):
    """A `--store` or `--hub` that chatd cannot use."""


def make_store(
    store_url: str | None, *, db: Path, synchronous: Synchronous, stats: StoreStats
) -> EventStore:
    """SQLite at `db` by default; `postgresql://...` for a log that several nodes share."""
    if not store_url:
        return SqliteStore(db, synchronous=synchronous, stats=stats)
    if store_url.startswith(("postgresql://", "postgres://")):
        missing = missing_extra("postgres")
        if missing is not None:
            raise SettingsError(f"--store postgresql://...: {missing}")
        from chatd.store.postgres import PostgresStore

        return PostgresStore(store_url, stats=stats)
    raise SettingsError(f"unknown store {mask_url(store_url)!r}: expected postgresql://...")


def files_root(files_dir: Path | None, db: Path) -> Path:
    """Where uploads are kept: `--files`, else beside the SQLite database."""
    return files_dir if files_dir is not None else db.with_name(db.name + ".files")


def make_hub(hub_url: str | None, store: EventStore) -> Hub:
    """The in-process hub by default; `redis://...` to carry events between nodes."""
    if not hub_url or hub_url == "local":
        return LocalHub()
    if hub_url.startswith(("redis://", "rediss://", "unix://")):
        missing = missing_extra("redis")
        if missing is not None:
            raise SettingsError(f"--hub redis://...: {missing}")
        shared_log = "the redis hub needs a shared log: --store postgresql://..."
        # Without asyncpg no store here can be PostgreSQL's; asking isinstance would need it.
        if missing_extra("postgres") is not None:
            raise SettingsError(shared_log)
        from chatd.hub.redis import RedisHub
        from chatd.store.postgres import PostgresStore

        if not isinstance(store, PostgresStore):
            raise SettingsError(shared_log)
        return RedisHub(hub_url, store)
    raise SettingsError(f"unknown hub {mask_url(hub_url)!r}: expected local or redis://...")


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
    http_limits: HttpLimitSettings | None = None,
    max_connections_per_user: int = 32,
    max_queue: int = 2048,
    synchronous: Synchronous = "full",
    dev: bool = False,
    announce: tuple[str, int] | None = None,
    store_url: str | None = None,
    hub_url: str | None = None,
    files_dir: Path | None = None,
    upload_quota: int = DEFAULT_QUOTA,
    keep_unsent: float = DEFAULT_KEEP_UNSENT,
    public_keys: tuple[auth.PublicKey, ...] = (),
    webhooks: WebhookSettings | None = None,
    metrics_allow: tuple[str, ...] = DEFAULT_METRICS_ALLOW,
) -> ChatApp:
    metrics = Metrics()
    store = make_store(store_url, db=db, synchronous=synchronous, stats=metrics)
    hub = make_hub(hub_url, store)
    # Several nodes must share this directory (a volume), as they share the log.
    files = FileStore(
        files_root(files_dir, db),
        quota=upload_quota,
        keep_unsent=keep_unsent,
        chats_with_file=store.chats_with_file,
        orders_with_file=store.orders_with_file,
    )
    # With a hub between nodes, another node may have written to any chat a moment ago.
    shared = not isinstance(hub, LocalHub)
    service = ChatService(store, hub, rules, files=files, shared_log=shared)
    webhook_settings = webhooks or WebhookSettings()
    dispatcher = WebhookDispatcher(store, hub, webhook_settings)
    # Read at every scrape of /metrics: the WAL, the hub's lag, the deliveries' outcomes.
    metrics.watch(store=store, hub=hub, webhooks=dispatcher)
    webhooks_api = WebhooksApi(service, dispatcher, webhook_settings)
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
        ),
        http_limits=http_limits or HttpLimitSettings(),
        public_keys=public_keys,
        extra_routes=[*webhooks_api.routes()],
        metrics_allow=metrics_allow,
    )
    chat_app = ChatApp(service, settings, metrics)
    webhooks_api.bind(chat_app.api)
    background: set[asyncio.Task[None]] = set()

    async def start_sweeper() -> None:
        # Unsent uploads go after --keep-unsent; the task lives as long as the event loop
        # and sweeps only while the store is open (`api.ready`).
        background.add(asyncio.create_task(files.run_sweeper(lambda: chat_app.api.ready)))

    chat_app.on_ready.append(start_sweeper)
    deadlines = DeadlineTimers(service)

    async def start_deadlines() -> None:
        # Every node runs it: firing a deadline is a command, carried out once however many
        # nodes try (chatd.deadline_timers).
        background.add(asyncio.create_task(deadlines.run(lambda: chat_app.api.ready)))

    chat_app.on_ready.append(start_deadlines)

    async def start_webhooks() -> None:
        # Every node runs one; the store's leases give each endpoint to one node at a time
        # (chatd.webhooks.delivery).
        background.add(asyncio.create_task(dispatcher.run(lambda: chat_app.api.ready)))

    chat_app.on_ready.append(start_webhooks)
    if dev:

        async def dev_ready() -> None:
            from chatd.process.demo import load_demo

            if await load_demo(store, rules, files):
                print("chatd: demo data loaded into", db, flush=True)

        chat_app.on_ready.append(dev_ready)
        if announce is not None:
            # Once the port listens: a link opened at once must find the server.
            host, port = announce
            chat_app.on_listening.append(lambda: print_links(secret, host, port, db=db))
    return chat_app


def print_links(secret: str, host: str, port: int, db: Path) -> None:
    from chatd.process.demo import IVANOV, OPERATOR, SHOP, TIMUR
    from chatd.process.dev_state import demo_tokens

    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    base = f"http://{shown}:{port}/"
    # Kept beside the database with the secret --dev made up: the same links after a restart.
    tokens = demo_tokens(secret, db)
    shop, buyer, other, manager = (tokens[k] for k in ("shop", "buyer", "other", "manager"))
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
