"""Durations as the command line writes them (docs/protocol.md, version 1.1): `90s`, `15m`,
`36h`, `10d`, or a plain number of seconds. For deadlines such as `--claim-deadline 10d`.

Only these forms: one number (digits, with an optional fraction) and at most one unit, no
spaces, no signs, no exponents. A duration is a wait, so it is positive.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Final

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# ASCII digits only: `\d` would also take other scripts' digits.
_FORM: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")


def parse_duration(text: str) -> timedelta:
    """`text` as a duration; ValueError, with a message for the user, when it is not one."""
    found = _FORM.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not a duration: write a number with s, m, h or d (90s, 15m, 36h, "
            "10d), or a plain number of seconds"
        )
    number, unit = found.groups()
    scale = _UNITS[unit or "s"]
    try:
        # Whole numbers in integers, so that a long count of seconds stays exact.
        seconds = int(number) * scale if "." not in number else float(number) * scale
        duration = timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        # Past what a timedelta holds, or more digits than Python converts.
        raise ValueError(f"{text[:40]!r} is too long a duration") from None
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} is not a duration: it must be longer than zero")
    return duration


def duration_arg(text: str) -> timedelta:
    """`parse_duration` as an argparse `type=`: a bad value is a usage error, not a crash."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
