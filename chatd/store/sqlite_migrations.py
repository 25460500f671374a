"""The SQLite schema's versions, and the steps that take a database from one to the next.

The version is SQLite's own `PRAGMA user_version` (0 in a database nobody numbered), kept in
the database file's header: a copy or a backup of the file carries it, and `sqlite3 chatd.db
'PRAGMA user_version'` reads it without chatd. `MIGRATIONS[n]` takes a database from
version n to n + 1, each step in one transaction together with the new version number, so a
failed step leaves the database at the version before it. A step already shipped is never
edited: a change to the schema is a new step, and `sqlite_schema` says what the newest
version looks like.

A new database is made from `sqlite_schema` directly and stamped with the newest version; a
test holds it equal, table by table and index by index, to a database of the oldest version
taken through every step.

Version 1 is the schema of the last release without versions. Databases made before
versions existed are all version 0, whatever they hold (the schema only ever gained tables
and indexes then, never columns), and step 1 gives each the tables and indexes it lacks.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatd.store import sqlite_schema as schema
from chatd.store.schema_version import SchemaReport, SchemaTooNew

log = logging.getLogger(__name__)

# How long opening waits for another connection's write lock (a running server's commit).
BUSY_TIMEOUT_MS = 10_000

# ---- version 1: the last release without versions ---------------------------------------------

# chatd/store/sqlite_schema.py as that release shipped it. Every statement is IF NOT EXISTS,
# so on a database of any earlier shape it creates what is missing and leaves the rest.
_V1 = """
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
CREATE INDEX IF NOT EXISTS chats_by_buyer ON chats (buyer_id, last_pos);
CREATE INDEX IF NOT EXISTS chats_by_seller ON chats (seller_id, last_pos);
CREATE INDEX IF NOT EXISTS chats_disputed ON chats (last_pos) WHERE managers_from IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    text, chat UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
);
-- The newest texts, moved into `search` by the writer every thousand or so positions: FTS5
-- writes a segment per transaction, and into a large index each one costs twice what it
-- costs into a small one (and more as the index grows). Search reads both.
CREATE VIRTUAL TABLE IF NOT EXISTS search_recent USING fts5 (
    text, chat UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
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


def _v1_adopt(db: sqlite3.Connection) -> None:
    for statement in statements(_V1):
        db.execute(statement)


# ---- version 2: texts queued for the search index ---------------------------------------------

# A commit appends its texts to a plain table, which the writer indexes in large batches
# (chatd.store.sqlite_writer); the second FTS5 index of the newest texts, `search_recent`,
# goes, its texts moved into `search`.
_V2_SEARCH_QUEUE = """
CREATE TABLE IF NOT EXISTS search_queue (
    pos  INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    chat TEXT NOT NULL
);
"""


def _v2_search_queue(db: sqlite3.Connection) -> None:
    for statement in statements(_V2_SEARCH_QUEUE):
        db.execute(statement)
    if _has_table(db, "search_recent"):
        db.execute(
            "INSERT INTO search (rowid, text, chat) SELECT rowid, text, chat FROM search_recent"
        )
        db.execute("DROP TABLE search_recent")


# ---- version 3: the shops' canned replies -------------------------------------------------------

_V3_TEMPLATES = """
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
"""


def _v3_templates(db: sqlite3.Connection) -> None:
    for statement in statements(_V3_TEMPLATES):
        db.execute(statement)


# ---- version 4: the operators each shop is known to have ----------------------------------------

_V4_OPERATORS = """
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


def _v4_operators(db: sqlite3.Connection) -> None:
    for statement in statements(_V4_OPERATORS):
        db.execute(statement)


# ---- version 5: a buyer's chats indexed without their activity -----------------------------------

# Every message moved its chat in two indexes of activity (`last_pos`), the buyer's and the
# shop's: a page each. A buyer's few chats are sorted when their list is read instead.


def _v5_buyer_chats(db: sqlite3.Connection) -> None:
    db.execute("DROP INDEX IF EXISTS chats_by_buyer")
    db.execute("CREATE INDEX chats_by_buyer ON chats (buyer_id)")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: `apply` runs inside the step's transaction and must not end it."""

    summary: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("a database from before schema versions, given what it lacks", _v1_adopt),
    Migration("search texts queued for the index instead of a second index", _v2_search_queue),
    Migration("the shops' canned replies", _v3_templates),
    Migration("the operators each shop is known to have", _v4_operators),
    Migration("a buyer's chats indexed without their activity", _v5_buyer_chats),
)


def latest(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version this code makes and knows."""
    return len(migrations)


# ---- applying them ----------------------------------------------------------------------------


def statements(script: str) -> list[str]:
    """The statements of an SQL script, one by one: `sqlite3.Connection.executescript`
    commits any open transaction before it runs, so a step runs its script this way, inside
    the step's own transaction."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    rest = "\n".join(
        line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--")
    )
    if rest:
        raise ValueError(f"an incomplete statement at the end of the script: {rest[:80]!r}")
    return found


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def migrate(
    db: sqlite3.Connection, where: str, migrations: Sequence[Migration] | None = None
) -> SchemaReport:
    """Brings the database on `db` (a connection in autocommit mode, isolation_level=None)
    to the newest version: creates the schema in a database without one, or applies each
    pending step; SchemaTooNew, and nothing written, for a database newer than this code.

    Safe beside another process opening the same file: each step begins with the write
    lock taken (BEGIN IMMEDIATE) and reads the version again under it, so a step another
    process applied meanwhile is not applied twice."""
    steps = MIGRATIONS if migrations is None else tuple(migrations)
    newest = latest(steps)
    found = user_version(db)
    if found > newest:
        raise SchemaTooNew(where, found, newest)
    if found == 0 and _create(db, newest):
        log.info("%s: created at schema version %d", where, newest)
        return SchemaReport(where, 0, newest, created=True)
    applied: list[str] = []
    for number, migration in enumerate(steps[found:], start=found + 1):
        if _apply(db, where, number, migration, newest):
            applied.append(f"{number}: {migration.summary}")
            log.info("%s: schema version %d → %d: %s", where, number - 1, number, migration.summary)
    report = SchemaReport(where, found, user_version(db), tuple(applied))
    if applied:
        log.info("%s", report.describe())
    else:
        log.debug("%s", report.describe())
    return report


def _begin(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")


def _create(db: sqlite3.Connection, newest: int) -> bool:
    """The newest schema in a database without chatd's log; False (nothing done) for a
    database that has one."""
    _begin(db)
    try:
        # Under the write lock: another process may have created it since the check above.
        if _has_table(db, "events"):
            db.execute("ROLLBACK")
            return False
        for statement in statements(schema.LOG + schema.PROJECTIONS):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {newest:d}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def _apply(
    db: sqlite3.Connection, where: str, number: int, migration: Migration, newest: int
) -> bool:
    """Step `number` and the version it makes, in one transaction; False if another process
    applied it first."""
    _begin(db)
    try:
        now = user_version(db)
        if now > newest:
            raise SchemaTooNew(where, now, newest)
        if now >= number:
            db.execute("ROLLBACK")
            return False
        migration.apply(db)
        # Part of the transaction: the header page is written with the step's pages.
        db.execute(f"PRAGMA user_version = {number:d}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def connect(path: Path) -> sqlite3.Connection:
    """A connection to an existing database file (FileNotFoundError if there is none: a
    mistyped path must not leave an empty database behind), in autocommit mode, waiting for
    a running server's commits."""
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return db


def migrate_file(path: Path) -> SchemaReport:
    """`chatd migrate --db PATH`."""
    db = connect(path)
    try:
        return migrate(db, str(path))
    finally:
        db.close()


def stored_version(path: Path) -> int | None:
    """The version of the database at `path`, None if there is no file yet."""
    if not path.is_file():
        return None
    db = connect(path)
    try:
        return user_version(db)
    finally:
        db.close()


def check_not_newer(path: Path) -> None:
    """SchemaTooNew if the database at `path` is newer than this code; nothing written."""
    found = stored_version(path)
    if found is not None and found > latest():
        raise SchemaTooNew(str(path), found, latest())
