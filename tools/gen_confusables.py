"""Generate ``chatd/domain/confusables.py`` from Unicode's confusables data.

    .venv/bin/pip install confusable-homoglyphs==3.3.1   # a dev dependency: the data
    .venv/bin/python tools/gen_confusables.py > chatd/domain/confusables.py
    .venv/bin/ruff format chatd/domain/confusables.py

The contacts filter folds look-alike characters ("Greek omicron for o", "Arabic-Indic
digit for 7") before it looks for names and numbers. The table is generated into the
repository rather than read from the package at run time: the server then needs neither
the package nor its 900 KB of JSON, and the domain stays free of I/O.

What goes in: every character outside ASCII and the Russian alphabet whose lowercase form
is not itself ASCII or Russian (``lower()`` already folds those) and that looks like one
ASCII letter or digit or one Russian letter, according to the data or to ``_EXTRA``
below; decimal digits of every script fold to their value. Characters that NFKC with
``lower()`` already folds to the same target are left out (the filter NFKC-folds them).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from importlib import resources

_ASCII_TARGETS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_RUSSIAN = frozenset("абвгдежзийклмнопрстуфхцчшщъыьэюя")
# Letters the filter handles itself: "ё" folds to "е", "і" is one of its script look-alikes.
_HANDLED = frozenset("ёі")
# Look-alikes of ordinary text that nobody types for a letter: "40×60 см" is a size.
_KEEP = frozenset("×")

# Look-alikes the data links only to a rarer letter (Greek epsilon to U+A793, say) or not at
# all, but that people type for Russian letters; Greek gamma is read as "г", as its capital
# "Γ" is "Г". A Russian target serves Latin words too: the filter folds mixed words both ways.
_EXTRA = {
    "ε": "е", "έ": "е", "τ": "т", "π": "п", "λ": "л", "η": "n", "ή": "n", "κ": "к",
    "μ": "м", "γ": "г", "ω": "w", "δ": "д", "φ": "ф", "β": "в", "σ": "о", "ς": "с",
    "ψ": "ш", "ξ": "з", "ζ": "з",
}  # fmt: skip


def _plain(char: str) -> str:
    return char.replace("\u200e", "").replace("\u200f", "")


def _is_excluded(char: str) -> bool:
    return char.isascii() or char in _RUSSIAN or char in _HANDLED or char in _KEEP


def _best(targets: set[str]) -> str | None:
    """Prefer a Latin letter (the mixed-word views reach Russian from it), then Russian,
    then a digit."""
    for group in ("abcdefghijklmnopqrstuvwxyz", "абвгдежзийклмнопрстуфхцчшщъыьэюя", "0123456789"):
        found = sorted(target for target in targets if target in group)
        if found:
            return found[0]
    return None


def build() -> dict[str, str]:
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    related: dict[str, set[str]] = {}
    for key, entries in data.items():
        key = _plain(key)
        for entry in entries:
            glyph = _plain(entry["c"])
            if len(key) != 1 or len(glyph) != 1:
                continue
            related.setdefault(key, set()).add(glyph)
            related.setdefault(glyph, set()).add(key)
    table: dict[str, str] = {}
    for char in sorted(set(related) | set(_EXTRA)):
        lower = char.lower()
        if len(lower) != 1 or _is_excluded(char) or _is_excluded(lower):
            continue
        if unicodedata.category(char) == "Nd":
            target: str | None = str(unicodedata.decimal(char))
        elif char in _EXTRA or lower in _EXTRA:
            target = _EXTRA.get(lower, _EXTRA.get(char))
        else:
            near = related.get(lower, set()) | related.get(char, set())
            target = _best({glyph.lower() for glyph in near} & (_ASCII_TARGETS | _RUSSIAN))
        if target is None:
            continue
        if unicodedata.normalize("NFKC", char).lower() == target:
            continue  # the NFKC fold gets there
        table[char] = target
    # The filter's pre-screen looks for these characters after lower(): the lowercase of
    # every key must be a key too.
    for char, target in list(table.items()):
        table.setdefault(char.lower(), target)
    # Every decimal digit of every script, also those the data does not list.
    for code in range(0x110000):
        char = chr(code)
        if (
            unicodedata.category(char) == "Nd"
            and not char.isascii()
            and unicodedata.normalize("NFKC", char) != str(unicodedata.decimal(char))
        ):
            table[char] = str(unicodedata.decimal(char))
    return dict(sorted(table.items()))


def main() -> int:
    table = build()
    out = sys.stdout
    out.write('"""Look-alike characters and what they fold to: generated, do not edit.\n\n')
    out.write("Made by ``tools/gen_confusables.py`` from Unicode's confusables data (the\n")
    out.write("confusable-homoglyphs package, 3.3.1); its docstring says what is in it.\n")
    out.write('"""\n\nfrom __future__ import annotations\n\n')
    out.write("from collections.abc import Mapping\nfrom types import MappingProxyType\n")
    out.write("from typing import Final\n\n")
    out.write("CONFUSABLES: Final[Mapping[str, str]] = MappingProxyType(\n    {\n")
    for char, target in table.items():
        out.write(f"        {char!a}: {target!r},\n")
    out.write("    }\n)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
