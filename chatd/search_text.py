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
