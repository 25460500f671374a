"""What `chatd serve --dev` keeps beside its database (chatd.process.dev_state): the secret it
made up, readable by its owner only, and the demo links, printed again after a restart until
they near their end."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from chatd import auth
from chatd.process.dev_state import (
    LINK_TTL,
    RENEW_BEFORE,
    demo_tokens,
    demo_users,
    dev_secret,
    state_path,
)


def test_the_secret_is_made_once_and_kept_beside_the_database(tmp_path: Path) -> None:
    db = tmp_path / "chatd.db"
    secret = dev_secret(db)
    path = state_path(db)
    assert path == tmp_path / "chatd.db.dev.json"
    assert len(secret.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_secret(db) == secret
    # Another database, another secret.
    assert dev_secret(tmp_path / "other.db") != secret


def test_a_state_file_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "chatd.db"
    secret = dev_secret(db)
    state_path(db).chmod(0o644)
    assert dev_secret(db) == secret
    assert stat.S_IMODE(state_path(db).stat().st_mode) == 0o600


def test_an_unusable_state_file_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "chatd.db"
    state_path(db).write_text('{"secret": "short"}')
    secret = dev_secret(db)
    assert secret != "short" and len(secret.encode()) >= 32
    state_path(db).write_text("not json")
    assert dev_secret(db) not in ("", secret)


def test_the_links_are_kept_until_they_near_their_end(tmp_path: Path) -> None:
    db = tmp_path / "chatd.db"
    secret = dev_secret(db)
    now = time.time()
    first = demo_tokens(secret, db, now=now)
    assert set(first) == {user.key for user in demo_users()}
    seller = auth.verify(secret, first["shop"], now).actor
    assert (seller.role, seller.id, seller.shop) == ("seller", "op-anna", "shop-kunchenko")
    kept = json.loads(state_path(db).read_text())
    assert kept == {"secret": secret, "links": first}

    # A restart a day later prints the same links; one when less than a day is left, new ones.
    assert demo_tokens(secret, db, now=now + 24 * 3600) == first
    later = now + LINK_TTL - RENEW_BEFORE + 60
    renewed = demo_tokens(secret, db, now=later)
    assert renewed["shop"] != first["shop"]
    assert auth.verify(secret, renewed["shop"], later).expires_at > later + RENEW_BEFORE


def test_with_a_secret_of_its_own_nothing_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "chatd.db"
    secret = "a-secret-from-the-environment-" + "x" * 16
    tokens = demo_tokens(secret, db)
    assert not state_path(db).exists()
    identity = auth.verify(secret, tokens["manager"])
    assert identity.actor.role == "manager"
    assert identity.expires_at - time.time() <= 24 * 3600 + 5
