"""The PostgreSQL schema, as numbered migrations applied in order at open, and the SQL that
writes each projection row.

`MIGRATIONS[n]` takes a schema from version n to n + 1; `meta.schema_version` records the
version a schema is at. A migration already shipped is never edited: a change is a new one.
"""

from __future__ import annotations

from typing import Any

from chatd.search_text import query_words
from chatd.store.rows import (
    ChatActivityRow,
    ChatRow,
    ClaimRow,
    FileRow,
    LedgerRow,
    OrderRow,
    Row,
    SearchRow,
)

# A tsvector lexeme holds at most 2047 bytes; no one searches by a longer word anyway.
_MAX_WORD = 255

META = """
CREATE TABLE IF NOT EXISTS meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
"""

_V1_LOG = """
CREATE TABLE events (
    pos      bigint  PRIMARY KEY,
    stream   text    NOT NULL,
    seq      integer NOT NULL,
    kind     text    NOT NULL,
    side     text    NOT NULL,      -- the author's side: buyer, seller or system
    has_text boolean NOT NULL,
    body     bytea   NOT NULL,      -- protocol.events.encode_event
    UNIQUE (stream, seq)            -- racing writers get a conflict, never a fork
);
-- One row per event and routing key that may see it: the per-user feed is a range scan.
CREATE TABLE feed (
    key text   NOT NULL,
    pos bigint NOT NULL,
    PRIMARY KEY (key, pos)
);
CREATE INDEX feed_by_pos ON feed (pos);
CREATE TABLE nonces (
    usr    text    NOT NULL,
    nonce  text    NOT NULL,
    stream text    NOT NULL,
    seq    integer NOT NULL,
    pos    bigint  NOT NULL,
    PRIMARY KEY (usr, nonce)
);
CREATE TABLE read_marks (
    chat text    NOT NULL,
    side text    NOT NULL,
    seq  integer NOT NULL,
    PRIMARY KEY (chat, side)
);
"""

_V1_PROJECTIONS = """
CREATE TABLE chats (
    chat          text PRIMARY KEY,
    buyer_id      text NOT NULL,
    buyer_name    text NOT NULL,
    seller_id     text NOT NULL,
    seller_name   text NOT NULL,
    last_pos      bigint  NOT NULL DEFAULT 0,
    last_seq      integer NOT NULL DEFAULT 0,
    waiting_since timestamptz,
    managers_from integer
);
CREATE INDEX chats_by_buyer ON chats (buyer_id, last_pos);
CREATE INDEX chats_by_seller ON chats (seller_id, last_pos);
CREATE INDEX chats_disputed ON chats (last_pos) WHERE managers_from IS NOT NULL;
-- The words of a text (chatd.search_text), as lexemes taken verbatim: a query word matches
-- as a prefix (`'word':*`), the same rule as SQLite's FTS5 index.
CREATE TABLE search (
    pos   bigint PRIMARY KEY,
    chat  text NOT NULL,
    words tsvector NOT NULL
);
CREATE INDEX search_words ON search USING gin (words);
CREATE INDEX search_by_chat ON search (chat, pos);
CREATE TABLE claims (
    claim text PRIMARY KEY,
    chat  text NOT NULL,
    ord   text NOT NULL,
    state text NOT NULL
);
CREATE INDEX claims_by_chat ON claims (chat);
CREATE TABLE orders (
    ord         text PRIMARY KEY,
    buyer_id    text NOT NULL,
    buyer_name  text NOT NULL,
    seller_id   text NOT NULL,
    seller_name text NOT NULL,
    pos         bigint NOT NULL,
    card        bytea NOT NULL
);
CREATE INDEX orders_by_parties ON orders (buyer_id, seller_id, pos);
CREATE INDEX orders_by_seller ON orders (seller_id, pos);
-- One refund per claim, enforced here rather than trusted to the rules above.
CREATE TABLE ledger (
    claim     text PRIMARY KEY,
    ord       text NOT NULL,
    buyer_id  text NOT NULL,
    seller_id text NOT NULL,
    value     bigint NOT NULL,
    currency  text NOT NULL,
    at        timestamptz NOT NULL,
    article   text NOT NULL,
    name      text NOT NULL,
    reason    text NOT NULL
);
CREATE INDEX ledger_by_buyer ON ledger (buyer_id);
CREATE INDEX ledger_by_seller ON ledger (seller_id, at);
CREATE TABLE files (
    chat text    NOT NULL,
    pos  bigint  NOT NULL,
    file text    NOT NULL,
    seq  integer NOT NULL,
    name text    NOT NULL,
    mime text    NOT NULL,
    size bigint  NOT NULL,
    at   timestamptz NOT NULL,
    PRIMARY KEY (chat, pos, file)
);
CREATE INDEX files_by_file ON files (file);
"""

# Version 2: the claims whose wait ends by itself (a request for the shop's decision, an
# offer for the buyer's answer), which the server's deadline timers look up.
_V2_WAITING_CLAIMS = """
CREATE INDEX claims_waiting ON claims (claim) WHERE state IN ('requested', 'awaiting_buyer');
"""

# Version 3: the shops' API keys. Only a key's SHA-256 is kept (chatd.credentials), found by
# its unique index; a revoked key keeps its row (who had which key, and until when).
_V3_API_KEYS = """
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    shop       text NOT NULL,
    name       text NOT NULL,
    scopes     text[] NOT NULL,
    digest     bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_by_shop ON api_keys (shop, created_at);
"""

# Version 4: the shops' webhook endpoints, each with its progress through the shop's feed
# (`cursor`: the log position delivered or given up up to; the failed attempts at the next
# event and when to try again) and the lease of the node delivering to it
# (chatd.webhooks.delivery); and the latest delivery attempts, numbered per endpoint.
_V4_WEBHOOKS = """
CREATE TABLE webhooks (
    id          text PRIMARY KEY,
    shop        text    NOT NULL,
    url         text    NOT NULL,
    events      text[]  NOT NULL,
    description text,
    secret      text    NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    cursor      bigint  NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    retry_at    timestamptz,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX webhooks_by_shop ON webhooks (shop, created_at);
CREATE TABLE webhook_deliveries (
    endpoint text    NOT NULL,
    n        integer NOT NULL,
    message  text    NOT NULL,
    pos      bigint  NOT NULL,
    chat     text    NOT NULL,
    seq      integer NOT NULL,
    kind     text    NOT NULL,
    attempt  integer NOT NULL,
    at       timestamptz NOT NULL,
    outcome  text    NOT NULL,
    status   integer,
    error    text,
    PRIMARY KEY (endpoint, n)
);
"""

# Version 5: the shops' canned replies (chatd.domain.templates), a shortcut unique per shop
# (the unique index is also what a shop's list is read by, in order); and the shops that have
# listed or written theirs: only a shop not there gets the defaults, so a shop that deleted
# them all does not find them back.
_V5_TEMPLATES = """
CREATE TABLE templates (
    id         text PRIMARY KEY,
    shop       text NOT NULL,
    shortcut   text NOT NULL,
    title      text NOT NULL,
    text       text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (shop, shortcut)
);
CREATE TABLE template_shops (
    shop    text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
"""

# Version 6: the operators each shop is known to have (chatd.operators), whom its chats may
# be assigned to; kept from the tokens operators sign in with, no projection of the log.
_V6_OPERATORS = """
CREATE TABLE operators (
    shop    text NOT NULL,
    id      text NOT NULL,
    name    text NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (shop, id)
);
"""

MIGRATIONS: tuple[str, ...] = (
    _V1_LOG + _V1_PROJECTIONS,
    _V2_WAITING_CLAIMS,
    _V3_API_KEYS,
    _V4_WEBHOOKS,
    _V5_TEMPLATES,
    _V6_OPERATORS,
)
# What each step does, as `chatd migrate` and the server's log report it.
MIGRATION_NAMES: tuple[str, ...] = (
    "the log and its projections",
    "claims waiting for a deadline",
    "API keys",
    "webhooks",
    "the shops' canned replies",
    "the operators each shop is known to have",
)

# `chatd rebuild` empties these and derives them again from the log.
PROJECTION_TABLES = ("chats", "search", "claims", "orders", "ledger", "files")


# Projection rows: the SQL that writes each type, in the order they are written within a
# commit (a chat's row exists before its activity is updated).
ROW_SQL: dict[type[Row], str] = {
    ChatRow: "INSERT INTO chats (chat, buyer_id, buyer_name, seller_id, seller_name)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chat) DO NOTHING",
    ChatActivityRow: "UPDATE chats SET last_pos = $1, last_seq = $2, waiting_since = $3,"
    " managers_from = $4 WHERE chat = $5",
    SearchRow: "INSERT INTO search (pos, chat, words) VALUES ($1, $2, array_to_tsvector($3))",
    ClaimRow: "INSERT INTO claims (claim, chat, ord, state) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (claim) DO UPDATE SET state = excluded.state",
    OrderRow: "INSERT INTO orders (ord, buyer_id, buyer_name, seller_id, seller_name, pos, card)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ord) DO UPDATE SET"
    " buyer_id = excluded.buyer_id, buyer_name = excluded.buyer_name,"
    " seller_id = excluded.seller_id, seller_name = excluded.seller_name,"
    " pos = excluded.pos, card = excluded.card",
    LedgerRow: "INSERT INTO ledger (claim, ord, buyer_id, seller_id, value, currency, at,"
    " article, name, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    FileRow: "INSERT INTO files (chat, pos, file, seq, name, mime, size, at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
}


def search_words(text: str) -> list[str]:
    """The lexemes indexed for a text: its words as `query_words` splits a query."""
    return list(dict.fromkeys(word[:_MAX_WORD] for word in query_words(text)))


def search_query(words: list[str]) -> str:
    """A tsquery matching texts that have every word as a word prefix. Words are `\\w+` runs,
    so they never carry a quote or a backslash into the query's syntax."""
    return " & ".join(f"'{word[:_MAX_WORD]}':*" for word in words)


def row_params(row: Row, positions: dict[int, int]) -> tuple[Any, ...]:
    """The statement's parameters for `row`; `positions` are the log positions of its
    append's events by seq."""
    match row:
        case ChatRow():
            return (row.chat, row.buyer_id, row.buyer_name, row.seller_id, row.seller_name)
        case ChatActivityRow():
            last_pos = positions[row.last_seq]
            return (last_pos, row.last_seq, row.waiting_since, row.managers_from, row.chat)
        case SearchRow():
            return (positions[row.seq], row.chat, search_words(row.text))
        case ClaimRow():
            return (row.claim, row.chat, row.order, row.state)
        case OrderRow():
            return (
                row.order,
                row.buyer_id,
                row.buyer_name,
                row.seller_id,
                row.seller_name,
                positions[row.seq],
                row.card,
            )
        case LedgerRow():
            return (
                row.claim,
                row.order,
                row.buyer_id,
                row.seller_id,
                row.value,
                row.currency,
                row.at,
                row.article,
                row.name,
                row.reason,
            )
        case FileRow():
            pos = positions[row.seq]
            return (row.chat, pos, row.file, row.seq, row.name, row.mime, row.size, row.at)
    raise TypeError(f"not a projection row: {row!r}")
