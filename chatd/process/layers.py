"""Where an option's value comes from: a flag, else the environment, else the configuration
file, else the option's default.

Nothing here names an option. `LayeredSubcommands` is the argparse action of `chatd`'s
sub-commands; after argparse has parsed a sub-command's flags it fills every option that was
not given on the command line from `CHATD_<DEST>` (`--max-frame`: `CHATD_MAX_FRAME`) or from
the TOML file of `--config` / `CHATD_CONFIG` (key `max-frame`), through the option's own
`type=` and `choices=`. So an option added to `chatd serve` later is configurable at once.

The environment and the file describe the server, and so they reach:

- `chatd serve` and `chatd config`: every option;
- any other sub-command (`demo`, `rebuild`, `export`, ...): the options it shares with
  `chatd serve` (`--db`, `--store`, `--files`, the marketplace's rules), so that it works on
  the same data as the server;
- not the tools that stand outside a server (`OWN_SETTINGS`): their options mean something
  of their own (`chatd bench --sync` is a list of modes to measure), and `chatd gen-log`
  must make the same log from the same seed wherever it runs.

Errors end like argparse's: one line naming the option and where its value came from, and
exit status 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from chatd.process import config_file
from chatd.process.option_values import (
    OptionValueError,
    Raw,
    convert,
    is_configurable,
    long_name,
)

ENV_PREFIX: Final = "CHATD_"
CONFIG_DEST: Final = "config"
CONFIG_ENV: Final = ENV_PREFIX + "CONFIG"
# The sub-command whose options the environment and the file describe.
SERVER_COMMAND: Final = "serve"
# Sub-commands that read no CHATD_* option and take no --config (see the module's text).
OWN_SETTINGS: Final = frozenset({"token", "bot", "gen-log", "replay", "bench"})
# Where the namespace keeps each option's `Source`, for `chatd config`.
_SOURCES_ATTR: Final = "_chatd_sources"

Kind = Literal["flag", "env", "file", "default"]


@dataclass(frozen=True)
class Source:
    kind: Kind
    where: str = ""  # the variable's name, or the file's path

    def __str__(self) -> str:
        return f"{self.kind} {self.where}" if self.where else self.kind


def env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def sources_of(args: argparse.Namespace) -> dict[str, Source]:
    """Where each option of a parsed sub-command came from, by dest."""
    sources: dict[str, Source] = getattr(args, _SOURCES_ATTR, {})
    return sources


def reads_server_config(command: str) -> bool:
    return command not in OWN_SETTINGS


SERVE_EPILOG: Final = (
    "Every option may also come from the environment, as CHATD_ and the option's name in "
    "capitals with underscores (--max-frame: CHATD_MAX_FRAME; a switch takes true or false), "
    "or from the TOML file of --config or CHATD_CONFIG, one key per option named as the "
    "option without its dashes (port = 8000). A flag wins over the environment, which wins "
    "over the file. `chatd config` shows what is in force."
)
SHARED_EPILOG: Final = (
    "The options that chatd serve also has come, as for chatd serve, from a flag, else "
    "CHATD_* in the environment, else the --config file (CHATD_CONFIG)."
)


# Generic in typeshed only; at run time the class takes no parameter.
if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsers = argparse._SubParsersAction


class LayeredSubcommands(_SubParsers):
    """`add_subparsers(action=LayeredSubcommands)`: sub-commands whose options also come from
    the environment and the configuration file."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        layered = reads_server_config(name)
        if layered:
            kwargs.setdefault("epilog", SERVE_EPILOG if name == SERVER_COMMAND else SHARED_EPILOG)
        parser = super().add_parser(name, **kwargs)
        if layered and not any(action.dest == CONFIG_DEST for action in parser._actions):
            add_config_option(parser)
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        assert values is not None and not isinstance(values, str)  # COMMAND [ARGS...]
        name, arg_strings = values[0], list(values[1:])
        if not reads_server_config(name):
            return
        command = self._name_parser_map[name]
        server = self._name_parser_map.get(SERVER_COMMAND, command)
        apply_layers(command, server, namespace, arg_strings, os.environ)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="read options from this TOML file, one key per option (port = 8000); flags and "
        "CHATD_* win over it (env CHATD_CONFIG)",
    )


def apply_layers(
    command: argparse.ArgumentParser,
    server: argparse.ArgumentParser,
    namespace: argparse.Namespace,
    arg_strings: list[str],
    environ: Mapping[str, str],
) -> None:
    """Fills `namespace`'s options of `command` that `arg_strings` did not give, from
    `environ` and the configuration file; records every option's `Source`."""
    given = given_dests(command, arg_strings)
    # A file may set any option of the server's: `chatd demo --config chatd.toml` reads the
    # server's file, and `port` in it is no error though `demo` has no --port.
    server_options = [a for a in server._actions if _layered(a)]
    names = {a.dest: config_file.normalise(long_name(a)) for a in server_options}
    sources: dict[str, Source] = {}
    path, sources[CONFIG_DEST] = _config_path(namespace, given, environ)
    if path is not None:
        setattr(namespace, CONFIG_DEST, str(path))
    try:
        file = None if path is None else config_file.load(path, set(names.values()))
    except config_file.ConfigFileError as exc:
        command.error(f"{'--config' if CONFIG_DEST in given else CONFIG_ENV}: {exc}")
    for action in command._actions:
        if not _layered(action) or action.dest not in names:
            continue
        if action.dest in given:
            sources[action.dest] = Source("flag")
            continue
        raw, source = _raw(action.dest, names[action.dest], environ, file)
        sources[action.dest] = source
        if raw is None:
            continue
        try:
            setattr(namespace, action.dest, convert(action, raw))
        except OptionValueError as exc:
            command.error(f"argument --{long_name(action)} (from {source.where}): {exc}")
    setattr(namespace, _SOURCES_ATTR, sources)


def _layered(action: argparse.Action) -> bool:
    return is_configurable(action) and action.dest != CONFIG_DEST


def _config_path(
    namespace: argparse.Namespace, given: set[str], environ: Mapping[str, str]
) -> tuple[Path | None, Source]:
    if CONFIG_DEST in given:
        return Path(getattr(namespace, CONFIG_DEST)), Source("flag")
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), Source("env", CONFIG_ENV)
    return None, Source("default")


def _raw(
    dest: str, name: str, environ: Mapping[str, str], file: config_file.ConfigFile | None
) -> tuple[Raw | None, Source]:
    variable = env_name(dest)
    # An empty variable counts as unset: compose files and shells often leave one empty.
    if environ.get(variable):
        return environ[variable], Source("env", variable)
    if file is not None and name in file.values:
        return file.values[name], Source("file", str(file.path))
    return None, Source("default")


def given_dests(command: argparse.ArgumentParser, arg_strings: list[str]) -> set[str]:
    """The dests of `command`'s options that `arg_strings` set.

    argparse does not tell a value given on the command line from its default, so the
    arguments are parsed once more with every default suppressed: only what was given then
    lands in the namespace. They parsed already, so this parse finds no error."""
    saved = [(action, action.default) for action in command._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        bare, _ = command.parse_known_args(arg_strings)
    finally:
        for action, default in saved:
            action.default = default
    # `set_defaults` values land there too; they were not given unless replaced.
    defaults = command._defaults
    return {
        dest
        for dest, value in vars(bare).items()
        if dest not in defaults or value is not defaults[dest]
    }
