"""argparse `type=` functions that check a value where it is parsed (stdlib only: the
server's commands and the load tools both use them).

A value is checked where it is parsed, so a bad one is refused by argparse (or, from the
environment or a file, by chatd.process.layers) with one line naming the option and status
2, instead of a traceback from deep inside the server, and `chatd config` catches it too.
"""

from __future__ import annotations

import argparse
import math
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Final

MAX_PORT: Final = 65_535


def port_arg(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    value = whole_number(text)
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"a port is 0 to {MAX_PORT}, not {text!r}")
    return value


def positive_int_arg(text: str) -> int:
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def positive_float_arg(text: str) -> float:
    """A finite number above 0 (`nan` and `inf` parse as floats but mean no limit's size)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0: {text!r}")
    return value


def share_arg(text: str) -> float:
    """A share between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 1, not {text!r}")
    return value


def timezone_arg(text: str) -> str:
    """An IANA time zone's name (`Europe/Moscow`), checked against the zone database; the
    name is kept, as the options' users take names."""
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # ValueError: a name no zone file could have (`../x`, an empty string).
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r}: write an IANA name such as Europe/Moscow"
        ) from None
    return text


def database_arg(text: str) -> str:
    """An SQLite database file's path; one that names a directory is refused here, where
    SQLite would only say "unable to open database file" once the store opens."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a database file")
    return text


def checked_by(parse: Callable[[str], object], what: str) -> Callable[[str], str]:
    """A `type=` that keeps the text but refuses what `parse` refuses with ValueError; for
    options whose text is parsed later by code that takes text (`--cpus 0-3`)."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        return text

    check.__name__ = what
    return check


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
