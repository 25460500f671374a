"""The SQLite schema: the log (events, feed, nonces, read marks) and the projections."""

LOG = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    pos      INTEGER PRIMARY KEY,
    stream   TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    side     TEXT    NOT NULL,      -- the author's side: buyer, seller or system
    has_text INTEGER NOT NULL,
    body     BLOB    NOT NULL,      -- protocol.events.encode_event
    UNIQUE (stream, seq)            -- racing writers get a conflict, never a fork
);
-- One row per event and routing key that may see it: the per-user feed is a range scan.
CREATE TABLE IF NOT EXISTS feed (
    key TEXT    NOT NULL,
    pos INTEGER NOT NULL,
    PRIMARY KEY (key, pos)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    user   TEXT    NOT NULL,
    nonce  TEXT    NOT NULL,
    stream TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    pos    INTEGER NOT NULL,
    PRIMARY KEY (user, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_marks (
    chat TEXT    NOT NULL,
    side TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (chat, side)
) WITHOUT ROWID;
-- The shops' API keys: only a key's SHA-256 is kept (chatd.credentials), found by its index.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    shop       TEXT NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,       -- space-separated
    digest     BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT                 -- kept after revoking: who had which key, and until when
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS api_keys_by_shop ON api_keys (shop, created_at);
-- The shops' webhook endpoints, each with its progress through the shop's feed (`cursor`:
-- the log position delivered or given up up to; the failed attempts at the next event and
-- when to try again) and the lease of the node delivering to it (chatd.webhooks.delivery).
CREATE TABLE IF NOT EXISTS webhooks (
    id          TEXT PRIMARY KEY,
    shop        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL,   -- space-separated kinds, or "*"
    description TEXT,
    secret      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    deleted_at  TEXT,
    cursor      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    retry_at    TEXT,
    lease_owner TEXT,
    lease_until REAL                -- Unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhooks_by_shop ON webhooks (shop, created_at);
-- The latest delivery attempts per endpoint, numbered per endpoint (`n`).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    endpoint TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    message  TEXT    NOT NULL,
    pos      INTEGER NOT NULL,
    chat     TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    attempt  INTEGER NOT NULL,
    at       TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    status   INTEGER,
    error    TEXT,
    PRIMARY KEY (endpoint, n)
) WITHOUT ROWID;
-- The shops' canned replies (chatd.domain.templates); a shortcut names one template of a shop.
CREATE TABLE IF NOT EXISTS templates (
    id         TEXT PRIMARY KEY,
    shop       TEXT NOT NULL,
    shortcut   TEXT NOT NULL,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop, shortcut)         -- also the index a shop's list is read by, in order
) WITHOUT ROWID;
-- The shops that have listed or written their templates: only a shop not here gets the
-- defaults, so a shop that deleted them all does not find them back.
CREATE TABLE IF NOT EXISTS template_shops (
    shop    TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
) WITHOUT ROWID;
-- The operators each shop is known to have (chatd.operators): its chats may be assigned to
-- them. Kept from the tokens operators sign in with; no projection of the log.
CREATE TABLE IF NOT EXISTS operators (
    shop    TEXT NOT NULL,
    id      TEXT NOT NULL,
    name    TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (shop, id)
) WITHOUT ROWID;
"""

PROJECTIONS = """
CREATE TABLE IF NOT EXISTS chats (
    chat          TEXT PRIMARY KEY,
    buyer_id      TEXT NOT NULL,
    buyer_name    TEXT NOT NULL,
    seller_id     TEXT NOT NULL,
    seller_name   TEXT NOT NULL,
    last_pos      INTEGER NOT NULL DEFAULT 0,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    waiting_since TEXT,
    managers_from INTEGER
) WITHOUT ROWID;
-- A buyer's chats are few, and their list is sorted by activity when read, while a shop's
-- many chats are read in activity order from their index. So a message moves its chat in the
-- shop's index only: an index holding `last_pos` is written at every message, a page each.
-- (No semicolons in comments here: the script is split at them, chatd.store.sqlite_writer.)
CREATE INDEX IF NOT EXISTS chats_by_buyer ON chats (buyer_id);
CREATE INDEX IF NOT EXISTS chats_by_seller ON chats (seller_id, last_pos);
CREATE INDEX IF NOT EXISTS chats_disputed ON chats (last_pos) WHERE managers_from IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    text, chat UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
);
-- Texts waiting for `search`: a commit only appends its texts here (a plain table, one page),
-- and the writer moves them into the FTS5 index in large batches, between commits, or before
-- a search reads it (chatd.store.sqlite_writer). FTS5 writes a segment per transaction, which
-- into a large index cost a one-message commit three times its work without the index.
CREATE TABLE IF NOT EXISTS search_queue (
    pos  INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    chat TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    claim TEXT PRIMARY KEY,
    chat  TEXT NOT NULL,
    ord   TEXT NOT NULL,
    state TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claims_by_chat ON claims (chat);
-- The claims whose wait ends by itself, for the deadline timers (chatd.deadline_timers).
CREATE INDEX IF NOT EXISTS claims_waiting ON claims (claim)
    WHERE state IN ('requested', 'awaiting_buyer');
CREATE TABLE IF NOT EXISTS orders (
    ord         TEXT PRIMARY KEY,
    buyer_id    TEXT NOT NULL,
    buyer_name  TEXT NOT NULL,
    seller_id   TEXT NOT NULL,
    seller_name TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    card        BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orders_by_parties ON orders (buyer_id, seller_id, pos);
CREATE INDEX IF NOT EXISTS orders_by_seller ON orders (seller_id, pos);
-- One refund per claim, enforced here rather than trusted to the rules above.
CREATE TABLE IF NOT EXISTS ledger (
    claim     TEXT PRIMARY KEY,
    ord       TEXT NOT NULL,
    buyer_id  TEXT NOT NULL,
    seller_id TEXT NOT NULL,
    value     INTEGER NOT NULL,
    currency  TEXT NOT NULL,
    at        TEXT NOT NULL,
    article   TEXT NOT NULL,
    name      TEXT NOT NULL,
    reason    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_buyer ON ledger (buyer_id);
CREATE INDEX IF NOT EXISTS ledger_by_seller ON ledger (seller_id, at);
CREATE TABLE IF NOT EXISTS files (
    chat TEXT    NOT NULL,
    pos  INTEGER NOT NULL,
    file TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    name TEXT    NOT NULL,
    mime TEXT    NOT NULL,
    size INTEGER NOT NULL,
    at   TEXT    NOT NULL,
    PRIMARY KEY (chat, pos, file)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_file ON files (file);
"""

PROJECTION_TABLES = ("chats", "search", "search_queue", "claims", "orders", "ledger", "files")
