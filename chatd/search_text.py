"""Text normalisation shared by the search index and search queries.

FTS5's unicode61 tokenizer folds case but keeps «ё» apart from «е»; Russian writers use them
interchangeably, so both the index and the query fold «ё» to «е».
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е")


def query_words(query: str) -> list[str]:
    """The words of a user's query, normalised; punctuation never reaches FTS syntax."""
    return _WORD.findall(normalise(query))


def _fts5_diacritics() -> str:
    """The combining marks FTS5's unicode61 lets go on a token (never start one):
    `sqlite3Fts5UnicodeIsdiacritic`, U+0300 to U+0331 by its two bit masks."""
    masks = ((768, 0x08029FDF), (800, 0x000361F8))
    return "".join(chr(base + bit) for base, mask in masks for bit in range(32) if mask >> bit & 1)


# FTS5's unicode61 tokenizer (remove_diacritics 0) starts a token at a letter, a number or a
# private-use character (its categories "L* N* Co"; `[^\W_]` is the first two) and goes on
# through those and its diacritics; anything else separates.
_PRIVATE_USE = "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
_TOKEN = re.compile(rf"(?:[^\W_]|[{_PRIVATE_USE}])(?:[^\W_]|[{_PRIVATE_USE}{_fts5_diacritics()}])*")


def tokens(text: str) -> list[str]:
    """`text`'s words as the search index splits them (normalised first)."""
    return _TOKEN.findall(normalise(text))


Phrases = list[list[str]]


def phrases_of(words: list[str]) -> Phrases:
    """The index's query for `words`, as `found_in` reads it: each word as a quoted prefix
    (`"word"*`) is a phrase of its tokens, FTS5 splitting a quoted word as it splits texts
    ("a_b" is "a" then a word starting "b"). A word with no token in it ("_") asks for
    nothing."""
    return [phrase for phrase in map(tokens, words) if phrase]


def found_in(phrases: Phrases, text: str) -> bool:
    """Whether the index's query (`phrases_of`) finds `text`, without the index: every
    phrase in it, its last token a prefix. A query of no phrase finds nothing."""
    if not phrases:
        return False
    folded = normalise(text)
    # Every token of the query is in a text it finds, as a substring at least: most texts
    # of a chat fail that test, which costs a fraction of splitting them into tokens.
    if not all(token in folded for phrase in phrases for token in phrase):
        return False
    have = _TOKEN.findall(folded)
    for phrase in phrases:
        *whole, prefix = phrase
        size = len(whole)
        if not any(
            have[start : start + size] == whole and have[start + size].startswith(prefix)
            for start in range(len(have) - size)
        ):
            return False
    return True


def matches(words: list[str], text: str) -> bool:
    """Whether the index's query for `words` finds `text`, without the index."""
    return found_in(phrases_of(words), text)
