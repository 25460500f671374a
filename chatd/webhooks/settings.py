"""The webhooks' settings and the command line's forms for them (kept apart from the
delivery code, so that `chatd` parses its options without loading an HTTP client)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta

from chatd.durations import parse_duration

DEFAULT_RETRIES_TEXT = "5s,5m,30m,2h,5h,10h,10h"
DEFAULT_TIMEOUT = 10.0


def parse_retries(text: str) -> tuple[timedelta, ...]:
    """`--webhook-retries`: comma-separated durations (chatd.durations), the waits before
    each retry in turn; ValueError with a message for the user."""
    parts = text.split(",")
    if any(not part for part in parts):
        raise ValueError(f"{text!r} is not a list of durations: write them as 5s,5m,30m")
    return tuple(parse_duration(part) for part in parts)


def retries_arg(text: str) -> tuple[timedelta, ...]:
    """`parse_retries` as an argparse `type=`: a bad value is a usage error."""
    try:
        return parse_retries(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DEFAULT_RETRIES = parse_retries(DEFAULT_RETRIES_TEXT)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    # The waits before each retry of a failed attempt; once all are spent, it is given up.
    retries: tuple[timedelta, ...] = DEFAULT_RETRIES
    # Seconds an attempt may take in all (resolving, connecting, sending, the answer's head).
    timeout: float = DEFAULT_TIMEOUT
    # Loopback, private and link-local destinations allowed (chatd.webhooks.destinations).
    allow_private: bool = False
