"""What `chatd serve --dev` keeps beside its database, so that a restart is invisible to the
pages it served: the secret it made up, and the demo links it printed.

Without `CHATD_SECRET`, `--dev` makes up a secret once and writes it, with the links' tokens,
to `DB.dev.json` (mode 0600) beside the SQLite database; the next start on the same database
reads it back. A page opened from a printed link then stays signed in across restarts, and the
same links are printed again until they have less than a day to live (they live a week), when
new ones are made with the same secret. Removing the file (or the database with it) starts
afresh. With `CHATD_SECRET` set nothing is kept: the links are signed with that secret and
made anew at every start.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatd import auth
from protocol.events import Role

SUFFIX = ".dev.json"
# The secret's length, as `openssl rand -hex 32` would make it: HS256 wants 32 bytes or more.
SECRET_BYTES = 32
# The demo links live a week and are made anew once they have less than a day left.
LINK_TTL = 7 * 24 * 3600.0
RENEW_BEFORE = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class DemoUser:
    """Who a demo link logs in as."""

    key: str
    role: Role
    sub: str
    name: str
    seller: str | None = None
    shop_name: str | None = None


def state_path(db: Path) -> Path:
    """The file `--dev` keeps beside the database `db`."""
    return db.with_name(db.name + SUFFIX)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    # Only its owner may read what signs tokens: a file made readable by others is narrowed.
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Writes `data` as JSON readable by its owner only, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _usable_secret(value: Any) -> bool:
    return isinstance(value, str) and len(value.encode()) >= SECRET_BYTES


def dev_secret(db: Path) -> str:
    """The secret `--dev` signs with on database `db`: the one kept beside it, else a new one,
    kept there from now on."""
    path = state_path(db)
    data = _read(path)
    secret = data.get("secret")
    if _usable_secret(secret):
        assert isinstance(secret, str)
        return secret
    secret = secrets.token_urlsafe(SECRET_BYTES)
    _write(path, {"secret": secret, "links": {}})
    return secret


def _still_good(secret: str, token: Any, user: DemoUser, now: float) -> bool:
    if not isinstance(token, str):
        return False
    try:
        identity = auth.verify(secret, token, now)
    except auth.TokenError:
        return False
    actor = identity.actor
    same = (actor.role, actor.id, actor.name, actor.shop, actor.shop_name) == (
        user.role,
        user.sub,
        user.name,
        user.seller,
        user.shop_name,
    )
    return same and identity.expires_at - now >= RENEW_BEFORE


def demo_users() -> tuple[DemoUser, ...]:
    """Whom the printed links log in as: the demo shop's operator, two buyers, a manager."""
    from chatd.process.demo import IVANOV, MANAGER, OPERATOR, SHOP, TIMUR

    return (
        DemoUser("shop", "seller", OPERATOR.id, OPERATOR.name, SHOP.id, SHOP.name),
        DemoUser("buyer", "buyer", TIMUR.id, TIMUR.name),
        DemoUser("other", "buyer", IVANOV.id, IVANOV.name),
        DemoUser("manager", "manager", MANAGER.id, MANAGER.name),
    )


def demo_tokens(
    secret: str, db: Path, users: tuple[DemoUser, ...] | None = None, now: float | None = None
) -> dict[str, str]:
    """A token for each demo user, by its `key`. With the secret kept beside `db`, the kept
    tokens while they have a day or more to live (new ones, kept, otherwise); with another
    secret (`CHATD_SECRET`), new tokens for a day, kept nowhere."""
    moment = time.time() if now is None else now
    path = state_path(db)
    data = _read(path)
    kept = data.get("secret") == secret
    links = data.get("links") if kept and isinstance(data.get("links"), dict) else {}
    assert isinstance(links, dict)
    tokens: dict[str, str] = {}
    changed = False
    for user in users if users is not None else demo_users():
        token = links.get(user.key)
        if kept and _still_good(secret, token, user, moment):
            assert isinstance(token, str)
            tokens[user.key] = token
            continue
        tokens[user.key] = auth.issue(
            secret,
            role=user.role,
            sub=user.sub,
            name=user.name,
            seller=user.seller,
            shop_name=user.shop_name,
            ttl=LINK_TTL if kept else 24 * 3600.0,
            now=moment,
        )
        changed = True
    if kept and changed:
        _write(path, {"secret": secret, "links": tokens})
    return tokens
