"""The configuration file (`--config FILE`, or `CHATD_CONFIG`): TOML, one key per option.

    # chatd.toml
    port = 8000
    store = "postgresql://chatd@db/chatd"
    allow-origin = ["https://seller.example.com"]
    webhook-allow-private = false

A key is the option's long name without its dashes; `max_frame` reads as `max-frame`, since
both spellings are common in TOML. Keys sit at the top level: a table is an error, and so is
a key that names no option, so a misspelt setting cannot pass unnoticed.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatd.process.option_values import Raw


class ConfigFileError(ValueError):
    """A file that cannot be read or says something no option takes; the message names the
    file, and the key where there is one."""


# Keys that look like settings but are deliberately not read from a file: the answer to give.
_NOT_IN_FILE = {
    "secret": "the token secret is read from the environment only: set CHATD_SECRET",
    "config": "a configuration file cannot name another one",
}


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    values: dict[str, Raw]  # by the option's long name, `max-frame`

    def __str__(self) -> str:
        return str(self.path)


def normalise(key: str) -> str:
    return key.replace("_", "-")


def load(path: Path, known: Collection[str]) -> ConfigFile:
    """The file at `path`; `known` are the long names of the options a file may set."""
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not valid TOML: not UTF-8 text") from None
    return ConfigFile(path, _values(path, document, known))


def _values(path: Path, document: dict[str, Any], known: Collection[str]) -> dict[str, Raw]:
    values: dict[str, Raw] = {}
    spelt: dict[str, str] = {}
    for key, value in document.items():
        name = normalise(key)
        if name in _NOT_IN_FILE:
            raise ConfigFileError(f"{path}: key {key!r}: {_NOT_IN_FILE[name]}")
        if name not in known:
            raise ConfigFileError(f"{path}: unknown key {key!r}{_suggestion(name, known)}")
        if name in spelt:
            raise ConfigFileError(f"{path}: key {key!r} is given twice (also as {spelt[name]!r})")
        if isinstance(value, dict):
            raise ConfigFileError(f"{path}: key {key!r}: expected a value, not a table")
        spelt[name] = key
        values[name] = value
    return values


def _suggestion(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else " (not an option of chatd serve)"
