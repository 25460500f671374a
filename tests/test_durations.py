"""Durations on the command line (chatd/durations.py): `90s`, `15m`, `36h`, `10d`, or a plain
number of seconds; nothing else."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from chatd.durations import duration_arg, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("36h", timedelta(hours=36)),
        ("10d", timedelta(days=10)),
        ("14d", timedelta(days=14)),
        ("3s", timedelta(seconds=3)),
        ("45", timedelta(seconds=45)),
        ("0.5", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("0007m", timedelta(minutes=7)),
        # Exact in whole numbers, where a float would round.
        ("86399999999999s", timedelta(seconds=86_399_999_999_999)),
    ],
)
def test_the_forms_of_the_contract(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "10 d",
        " 10d",
        "10d ",
        "10dd",
        "10w",
        "10D",
        "1h30m",
        "-5s",
        "+5s",
        "1e3",
        ".5s",
        "5.s",
        "inf",
        "nan",
        "١٠d",  # Arabic-Indic digits
        "１０s",  # fullwidth digits
        "0",
        "0s",
        "0.0000001s",  # rounds to nothing
    ],
)
def test_anything_else_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999999999d", "9" * 5000, "9" * 400 + ".5"])
def test_durations_past_what_a_timedelta_holds_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration(text)


def test_as_an_argparse_type_a_bad_value_is_a_usage_error() -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--claim-deadline", type=duration_arg, default=timedelta(days=10))
    assert parser.parse_args(["--claim-deadline", "3s"]).claim_deadline == timedelta(seconds=3)
    assert parser.parse_args([]).claim_deadline == timedelta(days=10)
    with pytest.raises(argparse.ArgumentError, match="not a duration"):
        parser.parse_args(["--claim-deadline", "soon"])
