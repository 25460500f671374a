"""The layers know no option by name: any argparse option of `serve`, of any kind, comes from
CHATD_* and the file; and what `chatd config` masks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from chatd.process.layers import LayeredSubcommands, Source, sources_of
from chatd.process.masking import is_secret_name, mask_url, mask_value


@pytest.fixture(autouse=True)
def no_chatd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CHATD_"):
            monkeypatch.delenv(name)


def parser() -> argparse.ArgumentParser:
    """A `chatd` of options of every kind argparse has, as someone might add them."""
    root = argparse.ArgumentParser(prog="chatd")
    sub = root.add_subparsers(dest="command", required=True, action=LayeredSubcommands)
    serve = sub.add_parser("serve")
    serve.add_argument("--color", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument("--verbose", "-v", action="count", default=0)
    serve.add_argument("--peers", nargs="+", type=int, default=[])
    serve.add_argument("--mode", action="store_const", const="fast", default="safe")
    serve.add_argument("--quiet", action="store_false", dest="loud")
    serve.add_argument("--level", type=int, choices=(1, 2, 3), default=1)
    serve.add_argument("-x", type=int, default=0)  # no long name: no variable, no key
    other = sub.add_parser("other")
    other.add_argument("--level", type=int, default=1)
    other.add_argument("--own", default="o")
    return root


def test_every_kind_of_option_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATD_COLOR", "no")
    monkeypatch.setenv("CHATD_VERBOSE", "2")
    monkeypatch.setenv("CHATD_PEERS", "1, 2,3")
    monkeypatch.setenv("CHATD_MODE", "true")
    monkeypatch.setenv("CHATD_LOUD", "yes")  # the switch --quiet given
    monkeypatch.setenv("CHATD_LEVEL", "3")
    monkeypatch.setenv("CHATD_X", "9")

    args = parser().parse_args(["serve"])

    assert (args.color, args.verbose, args.peers, args.mode) == (False, 2, [1, 2, 3], "fast")
    assert (args.loud, args.level, args.x) == (False, 3, 0)
    assert sources_of(args)["peers"] == Source("env", "CHATD_PEERS")
    assert "x" not in sources_of(args)


def test_every_kind_of_option_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("color = false\nverbose = 1\npeers = [4, 5]\nmode = false\nlevel = 2\n")

    args = parser().parse_args(["serve", "--config", str(config), "-v", "-v", "-v"])

    assert (args.color, args.verbose, args.peers, args.mode, args.level) == (
        False,
        3,  # the flags, not the file
        [4, 5],
        "safe",
        2,
    )


def test_another_command_takes_only_what_it_shares_with_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATD_LEVEL", "3")
    monkeypatch.setenv("CHATD_OWN", "from-env")

    args = parser().parse_args(["other"])

    assert (args.level, args.own) == (3, "o")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CHATD_LEVEL", "4", "argument --level (from CHATD_LEVEL): invalid choice: '4'"),
        ("CHATD_PEERS", "1,b", "argument --peers (from CHATD_PEERS): invalid int value: 'b'"),
        ("CHATD_VERBOSE", "-1", "expected a whole number of at least 0, not '-1'"),
        ("CHATD_COLOR", "2", "argument --color (from CHATD_COLOR): expected true or false"),
    ],
)
def test_refusals_of_any_kind(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(["serve"])

    assert stopped.value.code == 2
    assert says in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("CHATD_SECRET", True),
        ("db_password", True),
        ("--api-key", True),
        ("metrics_token", True),
        ("jwt_public_key", False),
        ("max_frame", False),
        ("keep_unsent", False),
        ("bypass", False),
    ],
)
def test_which_names_are_secrets(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://chatd:pw@db:5432/chatd", "postgresql://chatd:****@db:5432/chatd"),
        ("postgresql://chatd@db/chatd", "postgresql://chatd@db/chatd"),
        ("redis://:pw@cache:6379/0", "redis://:****@cache:6379/0"),
        ("rediss://u:p%40ss@cache/0", "rediss://u:****@cache/0"),
        ("postgresql://db/chatd?user=u&password=pw", "postgresql://db/chatd?user=u&password=****"),
        ("postgresql://[::1/chatd", "****"),
        ("chatd.db", "chatd.db"),
    ],
)
def test_passwords_in_urls(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_secret_setting_is_masked_whole() -> None:
    assert mask_value("db_password", "hunter2") == "****"
    assert mask_value("db_password", "") == ""
    assert mask_value("store", "postgresql://u:pw@h/d") == "postgresql://u:****@h/d"
