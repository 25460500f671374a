"""`chatd bot`: run scripted conversations (SCENARIOS.md) against a server.

    chatd bot run examples/scenarios/*.toml --url ws://127.0.0.1:8000/ws
    chatd bot check FILE...

`add_bot_parser` adds the subcommand to the `chatd` parser and `run_bot` carries it out;
`python -m chatd.client.command` is the same command on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from chatd.client import scenario as sc
from protocol.codec import JSON, SUBPROTOCOLS

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


def add_bot_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds `bot` (with `run` and `check`) to an argparse sub-parsers object."""
    bot = subparsers.add_parser(
        "bot",
        help="run scripted conversations against a server",
        description="Scripted conversations: several actors (buyer, shop operators, manager, "
        "the marketplace) act and expect what the chat shows them. See "
        "chatd/client/SCENARIOS.md for the file format.",
    )
    actions = bot.add_subparsers(dest="bot_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run scenario files; exit 1 on the first unmet expectation",
        description="Run scenario files in order against a running server. Exit status: 0 "
        "when everything went as written, 1 on the first unmet expectation (with a diff of "
        "what was expected and what arrived), 2 on an invalid file.",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="scenario files (TOML)")
    run.add_argument(
        "--url",
        default=None,
        help=f"the server's WebSocket URL (default: env CHATD_URL, else {DEFAULT_URL})",
    )
    run.add_argument(
        "--http", default=None, help="the HTTP API's base URL (default: derived from --url)"
    )
    run.add_argument(
        "--secret",
        default=None,
        help="the server's token secret, to mint the actors' tokens (default: env CHATD_SECRET)",
    )
    run.add_argument(
        "--subprotocol",
        choices=SUBPROTOCOLS,
        default=JSON,
        help="for actors whose file names none (default: %(default)s)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds an expectation waits unless its step says `within` (default: %(default)s)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="print every step")
    run.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="(default: %(default)s)",
    )
    check = actions.add_parser(
        "check",
        help="validate scenario files without running them",
        description="Validate scenario files: exit 2 with the first error found.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="scenario files (TOML)")
    return bot


async def run_bot(args: argparse.Namespace) -> int:
    """Carries out `chatd bot ...`; the exit status."""
    if args.bot_command == "check":
        try:
            for path in args.files:
                sc.load(path)
        except sc.ScenarioError as exc:
            print(f"chatd bot: {exc}", file=sys.stderr)
            return 2
        print(f"{len(args.files)} scenario file(s) valid")
        return 0
    secret = args.secret or os.environ.get("CHATD_SECRET")
    if not secret:
        print("chatd bot run: give --secret or set CHATD_SECRET", file=sys.stderr)
        return 2
    # Imported here: `chatd --help` and `chatd serve` need none of the runner.
    from chatd.client.runner import Settings, run_files

    settings = Settings(
        url=args.url or os.environ.get("CHATD_URL") or DEFAULT_URL,
        secret=secret,
        http=args.http,
        subprotocol=args.subprotocol,
        timeout=args.timeout,
        verbose=args.verbose,
    )
    return await run_files(args.files, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatd")
    add_bot_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(getattr(args, "log_level", "warning")).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(run_bot(args))


if __name__ == "__main__":
    sys.exit(main())
