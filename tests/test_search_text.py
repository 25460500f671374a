"""`chatd.search_text.matches` finds what the search index's query finds: a one-chat search
reads the chat's texts with it instead of the index (chatd.store.sqlite), so the two must
agree on every text and query, checked against a real FTS5 table."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.search_text import matches, normalise, query_words

# Letters of both scripts, «ё», digits, separators of every kind, combining marks (FTS5 lets
# some go on a token and none start one), a ligature, a Roman numeral, a superscript, a
# private-use character, an emoji.
ALPHABET = "абвгдеёжйЁЙ aAbBzé xX019 _-.,!?#@\"'«»\u0301\u0300\u0308\u0483ﬁ\u2160²\ue000😀\u00a0\n"
texts = st.text(alphabet=ALPHABET, max_size=24)


def index_finds(words: list[str], corpus: list[str]) -> set[int]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE search USING fts5 (text, tokenize = 'unicode61 remove_diacritics 0')"
    )
    db.executemany(
        "INSERT INTO search (rowid, text) VALUES (?, ?)",
        [(n, normalise(text)) for n, text in enumerate(corpus)],
    )
    # The store's query: each word a quoted prefix.
    query = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
    return {n for (n,) in db.execute("SELECT rowid FROM search WHERE search MATCH ?", (query,))}


@settings(max_examples=300, deadline=None)
@given(corpus=st.lists(texts, min_size=1, max_size=30), typed=texts)
def test_matches_finds_what_the_index_finds(corpus: list[str], typed: str) -> None:
    words = query_words(typed)
    if not words:
        return  # the store never queries without words
    found = {n for n, text in enumerate(corpus) if matches(words, text)}
    assert found == index_finds(words, corpus)


def test_examples() -> None:
    assert matches(["куртк"], "Куртку_XL отправим")
    assert matches(["куртку", "xl"], "Куртку_XL отправим")
    assert matches(["куртку_x"], "Куртку_XL отправим")  # a phrase, its last word a prefix
    assert not matches(["xl_куртку"], "Куртку_XL отправим")
    assert matches(["елк"], "Ёлка")
    assert not matches(["_"], "_ всё")
    assert matches(["й"], "Й\u0301а")  # a mark goes on a token ...
    assert not matches(["а"], "Й\u0301а")
    assert matches(["а"], "\u0301а")  # ... and starts none
