"""`chatd config`: the options `chatd serve` would run with, and where each came from.

It takes exactly `chatd serve`'s options (the same parser's actions, so an option added to
`serve` appears here too) and prints one line per option: its value, secrets masked, and
its source (flag, env CHATD_..., file PATH, default). A bad value fails here as it would in
`chatd serve`, so `chatd config --config prod.toml` checks a file before a deploy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from chatd.process.dev_state import state_path
from chatd.process.layers import CONFIG_DEST, SERVE_EPILOG, Source, sources_of
from chatd.process.masking import mask_value
from chatd.process.option_values import is_configurable, long_name

SECRET_ENV: Final = "CHATD_SECRET"
_UNITS: Final = (("d", 86_400), ("h", 3600), ("m", 60))


def add_config_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    serve: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """Adds `chatd config`, with every option `serve` has by now: call it last."""
    config = subparsers.add_parser(
        "config",
        # The parent brings its -h too.
        add_help=False,
        parents=[serve],
        epilog=SERVE_EPILOG,
        help="print the options chatd serve would run with, and where each came from",
        description="Print every option of chatd serve as it would be in force with these "
        "flags, this environment and the --config file, and where each value came from: "
        "flag, env (CHATD_...), file, or default. Secrets are masked. Exit status 2, with the "
        "option named, on a value chatd serve would refuse.",
    )
    config.set_defaults(handler=functools.partial(run, config))
    return config


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    show(parser, args, os.environ, sys.stdout)
    return 0


def show(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
) -> None:
    """Writes the table of `parser`'s options as parsed into `args` to `out`."""
    sources = sources_of(args)
    default = Source("default")
    rows = [("option", "value", "from")]
    config = getattr(args, CONFIG_DEST, None)
    rows.append(("--config", config or "(none)", str(sources.get(CONFIG_DEST, default))))
    for action in parser._actions:
        if not is_configurable(action) or action.dest == CONFIG_DEST:
            continue
        value = mask_value(action.dest, render(getattr(args, action.dest, None)))
        rows.append((f"--{long_name(action)}", value, str(sources.get(action.dest, default))))
    rows.append(_secret_row(args, environ))
    width = [max(len(row[column]) for row in rows) for column in (0, 1)]
    for option, value, source in rows:
        out.write(f"{option:<{width[0]}}  {value:<{width[1]}}  {source}".rstrip() + "\n")


def _secret_row(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str, str]:
    secret = environ.get(SECRET_ENV)
    if secret:
        return ("secret", f"**** ({len(secret.encode())} bytes)", f"env {SECRET_ENV}")
    if getattr(args, "dev", False):
        kept = state_path(Path(getattr(args, "db", None) or "chatd.db"))
        return ("secret", f"(kept in {kept}: --dev)", "default")
    return ("secret", "(unset: chatd serve needs it, or --dev)", "default")


def render(value: Any) -> str:
    """A value as the command line would write it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list | tuple):
        return ",".join(render(item) for item in value) if value else "(none)"
    return str(value)


def format_duration(duration: timedelta) -> str:
    """`timedelta(days=10)` -> `10d`: the largest unit that divides it (chatd.durations)."""
    seconds = duration.total_seconds()
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
