"""Options from a flag, else CHATD_* in the environment, else the --config file, else the
default; and every bad value, wherever it comes from, refused with one line and status 2."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from chatd.arg_types import database_arg
from chatd.process.cli import build_parser, main
from chatd.process.layers import OWN_SETTINGS, Source, env_name, sources_of
from chatd.process.option_values import is_configurable, long_name


@pytest.fixture(autouse=True)
def no_chatd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the CHATD_* variables it means; none leak in from the shell."""
    for name in list(os.environ):
        if name.startswith("CHATD_"):
            monkeypatch.delenv(name)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The last line of what a refused command printed; it must exit with 2."""
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


# ---- precedence --------------------------------------------------------------------------


def test_a_flag_wins_over_the_environment_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "chatd.toml",
        'port = 9001\nsync = "normal"\nrate = 5\nqueue = 100\nmarketplace-name = "Ozon"\n',
    )
    monkeypatch.setenv("CHATD_PORT", "9002")
    monkeypatch.setenv("CHATD_SYNC", "full")
    monkeypatch.setenv("CHATD_QUEUE", "200")

    args = parse("serve", "--config", str(config), "--port", "9003")

    assert args.port == 9003  # flag over env over file
    assert args.sync == "full"  # env over file
    assert args.queue == 200  # env over file
    assert args.rate == 5.0  # file over default, through the option's type
    assert args.marketplace_name == "Ozon"
    assert args.burst == 40.0  # default
    sources = sources_of(args)
    assert sources["port"] == Source("flag")
    assert sources["sync"] == Source("env", "CHATD_SYNC")
    assert sources["rate"] == Source("file", str(config))
    assert sources["burst"] == Source("default")
    assert sources["config"] == Source("flag")


def test_chatd_config_names_the_file_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "chatd.toml", "port = 9001\n")
    monkeypatch.setenv("CHATD_CONFIG", str(config))

    args = parse("serve")

    assert args.port == 9001
    assert args.config == str(config)
    assert sources_of(args)["config"] == Source("env", "CHATD_CONFIG")


def test_a_flag_that_repeats_replaces_the_environments_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "c.toml", 'allow-origin = ["https://a.example", "https://b.example"]\n'
    )
    assert parse("serve", "--config", str(config)).allow_origin == [
        "https://a.example",
        "https://b.example",
    ]
    monkeypatch.setenv("CHATD_ALLOW_ORIGIN", "https://c.example, https://d.example")
    assert parse("serve", "--config", str(config)).allow_origin == [
        "https://c.example",
        "https://d.example",
    ]
    # Not appended to: the flag's list is the whole list.
    assert parse("serve", "--allow-origin", "https://e.example").allow_origin == [
        "https://e.example"
    ]


def test_values_go_through_the_options_own_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "c.toml",
        'claim-deadline = "36h"\nwebhook_retries = "5s,1m"\nmax_frame = 1024\n',
    )
    monkeypatch.setenv("CHATD_OFFER_DEADLINE", "15m")

    args = parse("serve", "--config", str(config))

    assert args.claim_deadline == timedelta(hours=36)
    assert args.offer_deadline == timedelta(minutes=15)
    assert args.webhook_retries == (timedelta(seconds=5), timedelta(minutes=1))
    assert args.max_frame == 1024  # max_frame and max-frame are the same key


def test_the_old_variables_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CHATD_STORE": "postgresql://chatd@db/chatd",
        "CHATD_HUB": "redis://cache:6379/0",
        "CHATD_FILES": "/srv/files",
        "CHATD_JWT_PUBLIC_KEY": "/etc/chatd/keys.json",
    }.items():
        monkeypatch.setenv(name, value)

    args = parse("serve")

    assert (args.store, args.hub, args.files, args.jwt_public_key) == (
        "postgresql://chatd@db/chatd",
        "redis://cache:6379/0",
        "/srv/files",
        "/etc/chatd/keys.json",
    )


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATD_STORE", "")
    monkeypatch.setenv("CHATD_PORT", "")

    args = parse("serve")

    assert (args.store, args.port) == (None, 8000)
    assert sources_of(args)["port"] == Source("default")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_switches_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str, value: bool
) -> None:
    monkeypatch.setenv("CHATD_DEV", text)
    monkeypatch.setenv("CHATD_WEBHOOK_ALLOW_PRIVATE", text)

    args = parse("serve")

    assert args.dev is value
    assert args.webhook_allow_private is value


def test_switches_from_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "deflate = true\ndev = false\n")

    args = parse("serve", "--config", str(config))

    assert (args.deflate, args.dev) == (True, False)


def test_commands_on_the_servers_data_share_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.toml", 'db = "/var/lib/chatd/chatd.db"\nport = 9000\n')
    monkeypatch.setenv("CHATD_FILES", "/srv/files")
    monkeypatch.setenv("CHATD_TIMEZONE", "Asia/Yekaterinburg")

    demo = parse("demo", "--config", str(config))
    rebuild = parse("rebuild", "--config", str(config))
    export = parse("export")

    # `port` is the server's option, so no error though `demo` has no --port.
    assert (demo.db, demo.files, demo.timezone) == (
        "/var/lib/chatd/chatd.db",
        "/srv/files",
        "Asia/Yekaterinburg",
    )
    assert rebuild.db == "/var/lib/chatd/chatd.db"
    assert export.db == "chatd.db" and export.out == "-"


def test_the_tools_outside_a_server_read_no_chatd_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATD_SYNC", "normal")
    monkeypatch.setenv("CHATD_TIMEZONE", "Asia/Yekaterinburg")
    monkeypatch.setenv("CHATD_LOG_LEVEL", "debug")

    assert parse("bench").sync is None
    assert parse("gen-log").timezone == "Europe/Moscow"
    assert parse("bot", "run", "x.toml").log_level == "warning"
    assert "token" in OWN_SETTINGS
    with pytest.raises(SystemExit):
        parse("token", "--config", "x.toml")


# ---- refusals ----------------------------------------------------------------------------


def test_a_bad_int_from_each_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refusal(capsys, "serve", "--port", "eighty") == (
        "chatd serve: error: argument --port: not a whole number: 'eighty'"
    )
    monkeypatch.setenv("CHATD_PORT", "eighty")
    assert refusal(capsys, "serve") == (
        "chatd serve: error: argument --port (from CHATD_PORT): not a whole number: 'eighty'"
    )
    monkeypatch.delenv("CHATD_PORT")
    config = write(tmp_path / "c.toml", 'port = "eighty"\n')
    assert refusal(capsys, "serve", "--config", str(config)) == (
        f"chatd serve: error: argument --port (from {config}): not a whole number: 'eighty'"
    )


def test_a_bad_choice(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHATD_SYNC", "fast")

    assert refusal(capsys, "serve") == (
        "chatd serve: error: argument --sync (from CHATD_SYNC): invalid choice: 'fast' "
        "(choose from 'full', 'normal')"
    )


def test_a_bad_switch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHATD_DEV", "maybe")

    assert refusal(capsys, "serve") == (
        "chatd serve: error: argument --dev (from CHATD_DEV): expected true or false "
        "(1/0, yes/no, on/off), not 'maybe'"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("prot = 8000\n", "unknown key 'prot' (did you mean 'port'?)"),
        ("colour = 'red'\n", "unknown key 'colour' (not an option of chatd serve)"),
        ("secret = 'x'\n", "key 'secret': the token secret is read from the environment only"),
        ("port = 1\nport = 2\n", "not valid TOML: Cannot overwrite a value (at line 2"),
        ("[port]\nvalue = 2\n", "key 'port': expected a value, not a table"),
        ("max-frame = 1\nmax_frame = 2\n", "key 'max_frame' is given twice (also as 'max-frame')"),
        ("port = \n", "not valid TOML: Invalid value (at line 1, column 8)"),
        ("rate = [1, 2]\n", "argument --rate (from {path}): expected one value, not a list"),
        ("port = true\n", "argument --port (from {path}): expected a string or a number"),
    ],
)
def test_a_file_that_says_what_no_option_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    config = write(tmp_path / "chatd.toml", text)

    line = refusal(capsys, "serve", "--config", str(config))

    assert line.startswith("chatd serve: error: ")
    assert says.format(path=config) in line
    assert str(config) in line


def test_a_file_that_is_not_there_or_not_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    assert refusal(capsys, "serve", "--config", str(missing)) == (
        f"chatd serve: error: --config: {missing}: no such file"
    )
    monkeypatch.setenv("CHATD_CONFIG", str(tmp_path))
    assert refusal(capsys, "demo") == (
        f"chatd demo: error: CHATD_CONFIG: {tmp_path}: is a directory, not a file"
    )
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe port = 1")
    assert "not valid TOML" in refusal(capsys, "serve", "--config", str(binary))


def commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


SERVE_DESTS = {a.dest for a in commands_of(build_parser())["serve"]._actions}


def every_typed_option() -> Iterator[tuple[str, argparse.Action]]:
    """(command, action) for every option of every command that checks its value."""
    for name, command in commands_of(build_parser()).items():
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        parsers = [(name, command)] + [
            (f"{name} {inner}", p) for a in nested for inner, p in a.choices.items()
        ]
        for full_name, each in parsers:
            for action in each._actions:
                # A path's check takes almost any text: it is tested on its own below.
                checked = action.type not in (None, database_arg) or action.choices
                if is_configurable(action) and checked:
                    yield full_name, action


TYPED = list(every_typed_option())


@pytest.mark.parametrize(
    ("command", "action"), TYPED, ids=[f"{c} --{long_name(a)}" for c, a in TYPED]
)
def test_every_checked_option_of_every_command_refuses_nonsense_in_one_line(
    command: str,
    action: argparse.Action,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    positional = ["x.toml"] if command == "bot run" else ["x.log"] if command == "replay" else []
    option = f"--{long_name(action)}"
    monkeypatch.chdir(tmp_path)

    line = refusal(capsys, *command.split(), option, "\u2603nonsense", *positional)
    # Refused before anything ran: nothing was written (a database, a files folder).
    assert list(tmp_path.iterdir()) == []

    assert line.startswith(f"chatd {command}: error: argument {option}"), line
    if command.split()[0] not in OWN_SETTINGS and action.dest in SERVE_DESTS:
        monkeypatch.setenv(env_name(action.dest), "\u2603nonsense")
        line = refusal(capsys, *command.split(), *positional)
        assert list(tmp_path.iterdir()) == []
        assert line.startswith(
            f"chatd {command}: error: argument {option} (from {env_name(action.dest)}): "
        ), line


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--port", "70000"], "argument --port: a port is 0 to 65535, not '70000'"),
        (["serve", "--rate", "nan"], "argument --rate: must be a finite number above 0: 'nan'"),
        (["serve", "--queue", "0"], "argument --queue: must be above 0: '0'"),
        (["serve", "--max-frame", "-1"], "argument --max-frame: must be above 0: '-1'"),
        (["serve", "--timezone", "Mars/Olympus"], "argument --timezone: unknown time zone"),
        (["demo", "--timezone", "../etc"], "argument --timezone: unknown time zone"),
        (["token", "--role", "buyer", "--sub", "b", "--name", "n", "--ttl", "inf"], "--ttl"),
        (["rebuild", "--db", "/"], "argument --db: '/' is a directory, not a database file"),
        (["gen-log", "--events", "many"], "argument --events: not a whole number: 'many'"),
        (["gen-log", "--returns", "2"], "argument --returns: a share is between 0 and 1"),
        (["gen-log", "--start", "yesterday"], "argument --start: not an ISO 8601 time"),
        (["bench", "--server-cpus", "zz"], "argument --server-cpus: not a CPU list"),
        (["replay", "x.log", "--speed", "fast"], "argument --speed: the speed is a positive"),
    ],
)
def test_values_that_used_to_fail_late_are_refused_when_parsed(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = argv[0]
    line = refusal(capsys, *argv)

    assert line.startswith(f"chatd {command}: error: ") and says in line, line


def test_a_store_that_demo_or_rebuild_cannot_use(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for command in ("demo", "rebuild"):
        db = str(tmp_path / "x.db")
        line = refusal(capsys, command, "--db", db, "--store", "mysql://chatd:hunter2@db/chatd")
        assert line == (
            f"chatd {command}: unknown store 'mysql://chatd:****@db/chatd': "
            "expected postgresql://..."
        )


# ---- chatd config ------------------------------------------------------------------------


def config_table(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, tuple[str, str]]:
    assert main(["config", *argv]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines()[1:]:
        option, value, source = (part for part in line.split("  ") if part.strip())
        rows[option.strip()] = (value.strip(), source.strip())
    return rows


def test_chatd_config_shows_every_option_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.toml", 'port = 9001\nclaim-deadline = "36h"\n')
    monkeypatch.setenv("CHATD_SYNC", "normal")

    rows = config_table(capsys, "--config", str(config), "--rate", "5")

    serve = commands_of(build_parser())["serve"]
    options = {f"--{long_name(a)}" for a in serve._actions if is_configurable(a)}
    assert options <= set(rows), "every option of chatd serve is shown"
    assert rows["--port"] == ("9001", f"file {config}")
    assert rows["--claim-deadline"] == ("36h", f"file {config}")
    assert rows["--sync"] == ("normal", "env CHATD_SYNC")
    assert rows["--rate"] == ("5.0", "flag")
    assert rows["--offer-deadline"] == ("14d", "default")
    assert rows["--webhook-retries"] == ("5s,5m,30m,2h,5h,10h,10h", "default")
    assert rows["--config"] == (str(config), "flag")


def test_chatd_config_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-" + "x" * 40
    config = write(tmp_path / "c.toml", 'hub = "redis://:r3dis-pw@cache:6379/0"\n')
    monkeypatch.setenv("CHATD_SECRET", secret)
    monkeypatch.setenv("CHATD_STORE", "postgresql://chatd:pg-pw@db/chatd?sslpassword=ssl-pw")

    rows = config_table(capsys, "--config", str(config))

    assert rows["secret"] == (f"**** ({len(secret)} bytes)", "env CHATD_SECRET")
    assert rows["--store"] == (
        "postgresql://chatd:****@db/chatd?sslpassword=****",
        "env CHATD_STORE",
    )
    assert rows["--hub"] == ("redis://:****@cache:6379/0", f"file {config}")
    shown = repr(rows)
    for hidden in (secret, "pg-pw", "r3dis-pw", "ssl-pw"):
        assert hidden not in shown


def test_chatd_config_says_when_there_is_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_table(capsys)["secret"][0] == "(unset: chatd serve needs it, or --dev)"
    assert config_table(capsys, "--dev")["secret"][0] == "(kept in chatd.db.dev.json: --dev)"


def test_chatd_config_refuses_what_serve_would(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATD_MAX_CONNECTIONS", "lots")

    assert refusal(capsys, "config") == (
        "chatd config: error: argument --max-connections (from CHATD_MAX_CONNECTIONS): "
        "not a whole number: 'lots'"
    )
