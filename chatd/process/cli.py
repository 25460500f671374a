"""The `chatd` command: serve, token, demo, rebuild, export, backup, migrate."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chatd import auth
from chatd.arg_types import (
    database_arg,
    port_arg,
    positive_float_arg,
    positive_int_arg,
    timezone_arg,
)
from chatd.client.command import add_bot_parser, run_bot
from chatd.domain.rules import DEFAULT_RULES, Rules
from chatd.durations import duration_arg
from chatd.files import DEFAULT_KEEP_UNSENT, DEFAULT_QUOTA
from chatd.loadtest.cli import add_parsers as add_load_parsers
from chatd.observability.logs import LOG_FORMATS, configure_logging
from chatd.observability.options import DEFAULT_METRICS_ALLOW, networks_arg
from chatd.process.backup import add_parser as add_backup_parser
from chatd.process.config_command import add_config_parser
from chatd.process.export import add_parser as add_export_parser
from chatd.process.guard import limit_repeated_logs
from chatd.process.layers import LayeredSubcommands
from chatd.process.migrate import add_parser as add_migrate_parser
from chatd.webhooks.settings import (
    DEFAULT_RETRIES,
    DEFAULT_RETRIES_TEXT,
    DEFAULT_TIMEOUT,
    WebhookSettings,
    retries_arg,
)
from protocol import PROTOCOL_REVISION

if TYPE_CHECKING:
    from chatd.store.base import EventStore

DEFAULT_DB = "chatd.db"


def _rules(args: argparse.Namespace) -> Rules:
    return Rules(
        marketplace=args.marketplace_name,
        timezone=ZoneInfo(args.timezone),
        claim_deadline=args.claim_deadline,
        offer_deadline=args.offer_deadline,
    )


def _add_rules_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--marketplace-name",
        default="Wildberries",
        help="the marketplace's name in service messages and as the system author "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--timezone",
        type=timezone_arg,
        default="Europe/Moscow",
        help="the marketplace's time zone, for dates in service texts (default: %(default)s)",
    )
    parser.add_argument(
        "--claim-deadline",
        type=duration_arg,
        default=DEFAULT_RULES.claim_deadline,
        metavar="DURATION",
        help="a return request the shop has not decided on within this goes to the managers "
        "(90s, 15m, 36h, 10d; default: 10d)",
    )
    parser.add_argument(
        "--offer-deadline",
        type=duration_arg,
        default=DEFAULT_RULES.offer_deadline,
        metavar="DURATION",
        help="a shop's return offer the buyer has not taken up within this ends (default: 14d)",
    )


def _add_files_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--files",
        default=None,
        metavar="DIR",
        help="where uploads are kept; several nodes share one directory "
        "(env CHATD_FILES; default: beside --db)",
    )


def _add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="the log: postgresql://USER@HOST:PORT/DATABASE for a log that several nodes "
        "share (env CHATD_STORE; default: SQLite at --db)",
    )


def _version() -> str:
    """The installed package's version and the protocol revision it speaks."""
    try:
        package = importlib.metadata.version("chatd")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        package = "unknown"
    return f"chatd {package} (protocol {PROTOCOL_REVISION})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd",
        description="Real-time chat between marketplace buyers and seller shops, "
        "with returns decided in the chat.",
    )
    parser.add_argument("--version", action="version", version=_version())
    # Each sub-command's options also come from CHATD_* and --config (chatd.process.layers).
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", action=LayeredSubcommands
    )

    serve = sub.add_parser(
        "serve",
        help="serve HTTP and /ws",
        description="Serve the HTTP API and the WebSocket endpoint /ws. Needs CHATD_SECRET "
        "(the HS256 token secret) unless --dev.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=port_arg, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--db",
        type=database_arg,
        default=DEFAULT_DB,
        help="SQLite database file (default: %(default)s)",
    )
    _add_store_option(serve)
    serve.add_argument(
        "--hub",
        default="local",
        metavar="URL",
        help="how events reach the sockets: local (one process) or redis://HOST:PORT/DB to "
        "carry them between several nodes, which needs --store postgresql://... "
        "(env CHATD_HUB; default: %(default)s)",
    )
    _add_files_option(serve)
    serve.add_argument(
        "--upload-quota",
        type=positive_int_arg,
        default=DEFAULT_QUOTA,
        metavar="BYTES",
        help="bytes of uploads a user may keep that were never sent in a chat; more is "
        "refused with 413 (default: %(default)s, 50 MiB)",
    )
    serve.add_argument(
        "--keep-unsent",
        type=positive_float_arg,
        default=DEFAULT_KEEP_UNSENT,
        metavar="SECONDS",
        help="uploads never sent in a chat are removed this long after their upload "
        "(default: %(default)s, 24 h)",
    )
    serve.add_argument(
        "--jwt-public-key",
        default=None,
        metavar="FILE",
        help="also accept RS256, ES256 and EdDSA tokens signed by the marketplace: its public "
        "keys as PEM (keys or certificates) or a JWKS document (env CHATD_JWT_PUBLIC_KEY)",
    )
    serve.add_argument(
        "--webhook-retries",
        type=retries_arg,
        default=DEFAULT_RETRIES,
        metavar="DURATIONS",
        help="a webhook delivery that fails is tried again after each of these waits in "
        f"turn, then given up (default: {DEFAULT_RETRIES_TEXT})",
    )
    serve.add_argument(
        "--webhook-timeout",
        type=duration_arg,
        default=timedelta(seconds=DEFAULT_TIMEOUT),
        metavar="DURATION",
        help="a webhook endpoint that has not answered within this has failed the attempt "
        "(default: 10s)",
    )
    serve.add_argument(
        "--webhook-allow-private",
        action="store_true",
        help="let webhooks go to loopback, private and link-local addresses (refused by "
        "default: a shop could otherwise reach the server's own network)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: make a secret if CHATD_SECRET is unset (kept beside --db in "
        "DB.dev.json, so a restart logs no page out), load the demo data into an empty "
        "database, and print ready-made links",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an Origin allowed to open /ws from a browser (exact match; repeatable). "
        "Default: an Origin whose host and port equal the request's Host",
    )
    serve.add_argument(
        "--max-frame",
        type=positive_int_arg,
        default=64 * 1024,
        help="largest frame in bytes, after inflation; larger closes with 1009 "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--deflate", action="store_true", help="enable permessage-deflate (off by default)"
    )
    serve.add_argument(
        "--rate",
        type=positive_float_arg,
        default=20.0,
        help="frames a second per connection (default: %(default)s)",
    )
    serve.add_argument(
        "--burst",
        type=positive_float_arg,
        default=40.0,
        help="burst of frames per connection (default: %(default)s)",
    )
    serve.add_argument(
        "--user-rate",
        type=positive_float_arg,
        default=50.0,
        help="frames a second per user, over all their connections (default: %(default)s)",
    )
    serve.add_argument(
        "--user-burst",
        type=positive_float_arg,
        default=100.0,
        help="burst of frames per user, over all their connections (default: %(default)s)",
    )
    serve.add_argument(
        "--http-rate",
        type=positive_float_arg,
        default=10.0,
        help="HTTP requests a second under /api/ per user or API key; a request without "
        "valid credentials counts against its address (default: %(default)s)",
    )
    serve.add_argument(
        "--http-burst",
        type=positive_float_arg,
        default=20.0,
        help="burst of HTTP requests per user or API key (default: %(default)s)",
    )
    serve.add_argument(
        "--http-system-rate",
        type=positive_float_arg,
        default=1000.0,
        help="HTTP requests a second of the marketplace's back end (the system role), "
        "which has a budget of its own (default: %(default)s)",
    )
    serve.add_argument(
        "--http-system-burst",
        type=positive_float_arg,
        default=2000.0,
        help="burst of HTTP requests of the system role (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections-per-user",
        type=positive_int_arg,
        default=32,
        help="open connections one user may have; more are refused (default: %(default)s)",
    )
    serve.add_argument(
        "--header-timeout",
        type=positive_float_arg,
        default=10.0,
        help="seconds a connection may take to send a request's headers before it is closed, "
        "and then to start its body, which must keep arriving at 500 bytes a second "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int_arg,
        default=None,
        help="open connections at most; more are refused with 503 at once "
        "(default: as many as the open-file limit leaves room for)",
    )
    serve.add_argument(
        "--queue",
        type=positive_int_arg,
        default=2048,
        help="frames queued per connection before it is closed with 1013 (default: %(default)s)",
    )
    serve.add_argument(
        "--sync",
        choices=("full", "normal"),
        default="full",
        help="SQLite synchronous mode: full survives power loss, normal only a process crash "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="(default: %(default)s)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text for people, or json: one object per line with ts, level, logger, msg and "
        "the line's fields (default: %(default)s)",
    )
    serve.add_argument(
        "--metrics-allow",
        type=networks_arg,
        default=DEFAULT_METRICS_ALLOW,
        metavar="CIDRS",
        help="addresses and networks that may read /metrics, comma-separated "
        "(10.0.0.0/8,::1; env CHATD_METRICS_ALLOW; default: loopback only)",
    )
    _add_rules_options(serve)

    token = sub.add_parser(
        "token",
        help="print a token signed with CHATD_SECRET",
        description="Print a JWT (HS256, signed with CHATD_SECRET) for a user.",
    )
    token.add_argument("--role", required=True, choices=auth.ROLES, help="the user's role")
    token.add_argument("--sub", required=True, help="the user id (for a seller: the operator)")
    token.add_argument("--name", required=True, help="the display name")
    token.add_argument("--seller", help="the shop id (required for --role seller)")
    token.add_argument("--shop-name", help="the shop's display name (sellers, optional)")
    token.add_argument(
        "--ttl",
        type=positive_float_arg,
        default=3600,
        help="lifetime in seconds (default: %(default)s)",
    )

    demo = sub.add_parser(
        "demo",
        help="load the demo data into a database",
        description="Load the seller portal's examples (shops, buyers, orders, chats, returns).",
    )
    demo.add_argument(
        "--db", type=database_arg, default=DEFAULT_DB, help="SQLite database (default: %(default)s)"
    )
    _add_store_option(demo)
    # The skirt's product photo is uploaded where the server will look for it.
    _add_files_option(demo)
    _add_rules_options(demo)

    rebuild = sub.add_parser(
        "rebuild",
        help="rebuild every projection from the log",
        description="Drop the chat list, unread, claims, ledger, orders, files and search "
        "projections and derive them again from the event log. Run it on a stopped server.",
    )
    rebuild.add_argument(
        "--db", type=database_arg, default=DEFAULT_DB, help="SQLite database (default: %(default)s)"
    )
    _add_store_option(rebuild)

    add_bot_parser(sub)
    add_export_parser(sub)
    add_backup_parser(sub)
    add_migrate_parser(sub)
    add_load_parsers(sub)
    add_config_parser(sub, serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(str(getattr(args, "log_level", "info")), getattr(args, "log_format", "text"))
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    if args.command == "demo":
        return asyncio.run(_demo(args))
    if args.command == "rebuild":
        return asyncio.run(_rebuild(args))
    if args.command == "bot":
        return asyncio.run(run_bot(args))
    handler = getattr(args, "handler", None)
    if handler is not None:  # export, gen-log, replay, bench
        code: int = handler(args)
        return code
    return 2


# HS256 signs with the secret: one shorter than the hash's 32 bytes can be guessed offline
# from any token it signed. --dev may run with any secret (it makes one when none is set).
MIN_SECRET_BYTES = 32


def _secret(dev: bool, db: Path) -> str | None:
    secret = os.environ.get("CHATD_SECRET")
    if secret:
        return secret
    if dev:
        # Made up once and kept beside the database, so a restart logs no page out.
        from chatd.process.dev_state import dev_secret

        return dev_secret(db)
    return None


def _weak_secret(command: str, secret: str) -> str | None:
    """The error for a secret too short to sign with, or None."""
    size = len(secret.encode())
    if size >= MIN_SECRET_BYTES:
        return None
    return (
        f"chatd {command}: CHATD_SECRET must be at least {MIN_SECRET_BYTES} bytes long "
        f"(it has {size}); make one with `openssl rand -hex 32`"
    )


def _token(args: argparse.Namespace) -> int:
    secret = os.environ.get("CHATD_SECRET")
    if not secret:
        print("chatd token: set CHATD_SECRET to the server's secret", file=sys.stderr)
        return 2
    weak = _weak_secret("token", secret)
    if weak is not None:
        print(weak, file=sys.stderr)
        return 2
    if args.role == "seller" and not args.seller:
        print("chatd token: a seller token needs the shop id (--seller)", file=sys.stderr)
        return 2
    try:
        print(
            auth.issue(
                secret,
                role=args.role,
                sub=args.sub,
                name=args.name,
                seller=args.seller,
                shop_name=args.shop_name,
                ttl=args.ttl,
            )
        )
    except ValueError as exc:
        print(f"chatd token: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve(args: argparse.Namespace) -> int:
    from chatd.process.assemble import SettingsError, assemble
    from chatd.process.migrate import refuse_newer_schema
    from chatd.process.server import ChatServer, uvicorn_config
    from chatd.web.http_limits import HttpLimitSettings

    secret = _secret(args.dev, Path(args.db))
    if secret is None:
        print(
            "chatd serve: set CHATD_SECRET (the token secret), or run with --dev",
            file=sys.stderr,
        )
        return 2
    weak = None if args.dev else _weak_secret("serve", secret)
    if weak is not None:
        print(weak, file=sys.stderr)
        return 2
    public_keys: tuple[auth.PublicKey, ...] = ()
    if args.jwt_public_key:
        try:
            public_keys = auth.load_public_keys(Path(args.jwt_public_key))
        except auth.PublicKeyError as exc:
            print(f"chatd serve: --jwt-public-key {args.jwt_public_key}: {exc}", file=sys.stderr)
            return 2
    # Before anything listens: a database a newer chatd migrated is refused with one line.
    # Pending migrations are applied when the store opens, and logged.
    newer = refuse_newer_schema(args.store, Path(args.db))
    if newer is not None:
        print(f"chatd serve: {newer}", file=sys.stderr)
        return 2
    try:
        chat_app = assemble(
            db=Path(args.db),
            secret=secret,
            rules=_rules(args),
            allow_origins=tuple(args.allow_origin),
            rate=args.rate,
            burst=args.burst,
            user_rate=args.user_rate,
            user_burst=args.user_burst,
            http_limits=HttpLimitSettings(
                rate=args.http_rate,
                burst=args.http_burst,
                system_rate=args.http_system_rate,
                system_burst=args.http_system_burst,
            ),
            max_connections_per_user=args.max_connections_per_user,
            max_queue=args.queue,
            synchronous=args.sync,
            dev=args.dev,
            announce=(args.host, args.port) if args.dev else None,
            store_url=args.store,
            hub_url=args.hub,
            files_dir=Path(args.files) if args.files else None,
            upload_quota=args.upload_quota,
            keep_unsent=args.keep_unsent,
            public_keys=public_keys,
            webhooks=WebhookSettings(
                retries=args.webhook_retries,
                timeout=args.webhook_timeout.total_seconds(),
                allow_private=args.webhook_allow_private,
            ),
            metrics_allow=args.metrics_allow,
        )
    except SettingsError as exc:
        print(f"chatd serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn_config(
        chat_app,
        host=args.host,
        port=args.port,
        max_frame=args.max_frame,
        deflate=args.deflate,
        log_level=args.log_level,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
    )
    # A failure that repeats (an accept refused, say) is logged once per 10 s, not per try.
    limit_repeated_logs("", "uvicorn", "uvicorn.error")
    ChatServer(config, chat_app).run()
    return 0


def _open_store(args: argparse.Namespace) -> EventStore:
    from chatd.process.assemble import SettingsError, make_store
    from chatd.store.stats import StoreStats

    try:
        return make_store(args.store, db=Path(args.db), synchronous="full", stats=StoreStats())
    except SettingsError as exc:
        # A --store chatd cannot use ends like a bad flag: one line, status 2.
        print(f"chatd {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _demo(args: argparse.Namespace) -> int:
    from chatd.files import FileStore
    from chatd.process.assemble import files_root
    from chatd.process.demo import STEPS, load_demo
    from chatd.progress import Progress
    from chatd.store.schema_version import SchemaTooNew

    store = _open_store(args)
    files = FileStore(files_root(Path(args.files) if args.files else None, Path(args.db)))
    files.open()
    try:
        await store.open()
    except SchemaTooNew as exc:
        print(f"chatd demo: {exc}", file=sys.stderr)
        return 2
    try:
        with Progress("demo", STEPS, unit="steps") as progress:
            loaded = await load_demo(store, _rules(args), files, step=progress.advance)
    finally:
        await store.close()
    print("demo data loaded" if loaded else "the database already has events: nothing loaded")
    return 0


async def _rebuild(args: argparse.Namespace) -> int:
    from chatd.progress import Progress
    from chatd.projection import LogProjector
    from chatd.store.schema_version import SchemaTooNew

    store = _open_store(args)
    try:
        await store.open()
    except SchemaTooNew as exc:
        print(f"chatd rebuild: {exc}", file=sys.stderr)
        return 2
    try:
        # The projector runs once per event of the log, whose positions are dense from 1.
        with Progress("rebuild", await store.last_position()) as progress:
            await store.rebuild(progress.counting(LogProjector()))
    finally:
        await store.close()
    print("projections rebuilt from the log")
    return 0
