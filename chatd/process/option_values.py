"""An option's value from the environment or a configuration file, converted as a flag's is.

A value that does not come from the command line still goes through the option's own
`type=` and `choices=`, so `CHATD_PORT=eighty` is refused exactly like `--port eighty`, and
whatever `chatd serve` checks on a flag it checks everywhere. What argparse learns from the
command line's shape (a flag given, an option repeated) is spelled out here instead:

- a switch (`--dev`, `store_true`) takes true/false, 1/0, yes/no or on/off;
- a repeatable option (`--allow-origin`, `append`) takes a TOML array, or in the environment
  a comma-separated list;
- a counted option (`-v -v`) takes a whole number.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})

# A value read from a TOML file: the scalars TOML has, or an array of them.
Raw = str | int | float | bool | list[Any]


class OptionValueError(ValueError):
    """A value an option does not take; the message says why, for the user."""


def is_configurable(action: argparse.Action) -> bool:
    """Whether `action` may come from the environment or a file: an option with a long name
    that stores something (not --help, --version, a sub-command or an `append_const`)."""
    if not any(option.startswith("--") for option in action.option_strings):
        return False
    excluded = (
        argparse._HelpAction,
        argparse._VersionAction,
        argparse._SubParsersAction,
        argparse._AppendConstAction,
    )
    return not isinstance(action, excluded)


def long_name(action: argparse.Action) -> str:
    """The option's first long name without its dashes: `--max-frame` -> `max-frame`."""
    return next(option for option in action.option_strings if option.startswith("--"))[2:]


def convert(action: argparse.Action, raw: Raw) -> Any:
    """`raw` (an environment variable's text or a TOML value) as the value `action` stores."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return _boolean(raw)
    if isinstance(action, argparse._StoreConstAction):  # store_true, store_false, store_const
        return action.const if _boolean(raw) else action.default
    if isinstance(action, argparse._CountAction):
        return _count(raw)
    if _takes_many(action):
        return [_one(action, item) for item in _items(raw)]
    if isinstance(raw, list):
        raise OptionValueError("expected one value, not a list")
    return _one(action, raw)


def _takes_many(action: argparse.Action) -> bool:
    many = isinstance(action, argparse._AppendAction | argparse._ExtendAction)
    return many or action.nargs in ("*", "+", argparse.REMAINDER) or isinstance(action.nargs, int)


def _items(raw: Raw) -> list[Raw]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str):
        # An environment variable holds one string: its items are separated by commas.
        return [item.strip() for item in raw.split(",") if item.strip()]
    return [raw]


def _one(action: argparse.Action, raw: Raw) -> Any:
    if isinstance(raw, bool | list):
        raise OptionValueError(f"expected a string or a number, not {_toml(raw)}")
    text = str(raw)
    convert_text = action.type
    if convert_text is None or not callable(convert_text):
        value: Any = text
    else:
        try:
            value = convert_text(text)
        except argparse.ArgumentTypeError as exc:
            raise OptionValueError(str(exc)) from None
        except (TypeError, ValueError):
            # argparse's own words for a failed conversion.
            name = getattr(convert_text, "__name__", repr(convert_text))
            raise OptionValueError(f"invalid {name} value: {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise OptionValueError(f"invalid choice: {text!r} (choose from {choices})")
    return value


def _boolean(raw: Raw) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise OptionValueError(f"expected true or false (1/0, yes/no, on/off), not {raw!r}")


def _count(raw: Raw) -> int:
    if isinstance(raw, bool | list):
        raise OptionValueError(f"expected a whole number, not {_toml(raw)}")
    try:
        count = int(str(raw))
    except ValueError:
        raise OptionValueError(f"expected a whole number, not {raw!r}") from None
    if count < 0:
        raise OptionValueError(f"expected a whole number of at least 0, not {raw!r}")
    return count


def _toml(raw: Raw) -> str:
    return "a list" if isinstance(raw, list) else "true/false"
