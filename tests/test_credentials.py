"""API keys below the web: their form and hash (`chatd.credentials`), the header they come
in (`chatd.web.key_auth`), the scopes in the policy table (`chatd.domain.policy`), and
looking them up in a real store."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatd.auth import TokenError, issue
from chatd.credentials import (
    Credentials,
    clean_name,
    digest,
    is_key,
    issue_key,
    new_key,
    parse_scopes,
    well_formed,
)
from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.model import ChatState
from chatd.store.sqlite import SqliteStore
from chatd.web.key_auth import presented_key
from protocol.codes import ErrorCode
from protocol.events import Party

SECRET = "unit-secret-" + "k" * 24
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

# ---- the key and its hash ---------------------------------------------------------------------


def test_a_new_key_is_chatd_and_32_random_bytes() -> None:
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("chatd_") and len(key) == 49 and well_formed(key)
        raw = base64.urlsafe_b64decode(key.removeprefix("chatd_") + "=")
        assert len(raw) == 32


def test_the_store_gets_the_sha256_and_never_the_key() -> None:
    issued = issue_key("shop-1", "CRM", ("chat:read",), NOW)
    record = issued.record
    assert record.digest == hashlib.sha256(issued.key.encode()).digest() == digest(issued.key)
    assert issued.key.encode() not in repr(record).encode()
    assert issued.key.removeprefix("chatd_") not in repr(record)
    assert record.id.startswith("key_") and record.id not in issued.key
    # One character off is another key.
    other = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    assert digest(other) != record.digest


def test_what_is_a_key_and_what_is_a_well_formed_one() -> None:
    key = new_key()
    token = issue(SECRET, role="buyer", sub="b1", name="Люда")
    assert is_key(key) and not is_key(token)
    for malformed in ("chatd_", "chatd_short", key + "A", key[:-1] + "=", key[:-1] + "+"):
        assert is_key(malformed) and not well_formed(malformed), malformed


def test_scopes_come_in_the_canonical_order_and_nothing_else_passes() -> None:
    assert parse_scopes(["returns:write", "chat:read"]) == ("chat:read", "returns:write")
    assert parse_scopes(["chat:write"]) == ("chat:write",)
    for bad, why in (
        ([], "at least one"),
        (["chat:admin"], "unknown scope 'chat:admin'"),
        (["CHAT:READ"], "unknown scope"),
        (["chat:read", "chat:read"], "twice"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_scopes(bad)


def test_a_name_is_trimmed_and_bounded() -> None:
    assert clean_name("  Бот ответов \n") == "Бот ответов"
    assert clean_name("я" * 100) == "я" * 100
    for bad in ("", "   ", "я" * 101):
        with pytest.raises(ValueError):
            clean_name(bad)


def test_the_key_in_an_authorization_header() -> None:
    key = new_key()
    assert presented_key(f"Bearer {key}") == key
    assert presented_key(f"bearer   {key} ") == key
    # WB's clients send the key alone.
    assert presented_key(key) == key
    assert presented_key("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x") is None
    assert presented_key("Basic dXNlcjpwYXNz") is None
    assert presented_key("") is None


# ---- scopes in the policy ---------------------------------------------------------------------


def key_actor(*scopes: str, shop: str = "shop1") -> Actor:
    return Actor(role="seller", id="key_1", name="CRM", shop=shop, scopes=frozenset(scopes))


OWN_CHAT = ChatState(
    chat="c1", buyer=Party(id="b1", name="Б"), seller=Party(id="shop1", name="Ш"), seq=1
)
FOREIGN_CHAT = ChatState(
    chat="c2", buyer=Party(id="b1", name="Б"), seller=Party(id="shop2", name="Ш"), seq=1
)


def test_a_key_may_what_its_scopes_open_on_its_shops_chats() -> None:
    reader = key_actor("chat:read")
    assert policy.check(reader, "hello") is None
    assert policy.check(reader, "history", OWN_CHAT) is None
    refused = policy.check(reader, "send", OWN_CHAT)
    assert refused is not None and refused.code is ErrorCode.FORBIDDEN
    assert refused.details == {"scope": "chat:write"}
    writer = key_actor("chat:write", "returns:write")
    assert policy.check(writer, "send", OWN_CHAT) is None
    assert policy.check(writer, "return.approve") is None
    assert policy.check(writer, "hello") == policy.key_refusal(writer, "hello")
    assert policy.check(writer, "hello") is not None


def test_a_key_is_refused_alike_on_a_foreign_chat_and_its_own() -> None:
    # `forbidden` for a missing scope before `not_found` for a foreign chat: the answer says
    # nothing about which chats exist.
    reader = key_actor("chat:read")
    assert policy.check(reader, "send", FOREIGN_CHAT) == policy.check(reader, "send", OWN_CHAT)
    # With the scope, a foreign chat is hidden as for any operator.
    refused = policy.check(reader, "history", FOREIGN_CHAT)
    assert refused is not None and refused.code is ErrorCode.NOT_FOUND


def test_what_no_scope_names_is_closed_to_every_key() -> None:
    every = key_actor(*policy.SCOPES)
    for action in ("keys", "balance", "sales_report"):
        refused = policy.key_refusal(every, action)
        assert refused is not None and refused.code is ErrorCode.FORBIDDEN, action
    # A role's own refusals still come first, with their own message.
    refused = policy.check(every, "open")
    assert refused is not None and refused.message == "only a buyer opens a chat"


def test_a_token_is_never_asked_for_scopes() -> None:
    operator = Actor(role="seller", id="op", name="Анна", shop="shop1")
    for action in policy.ACTIONS:
        assert policy.key_refusal(operator, action) is None


def test_every_scope_opens_something_and_only_what_a_shop_may() -> None:
    assert set(policy.KEY_SCOPES.values()) - {None} == set(policy.SCOPES)
    for action in policy.KEY_SCOPES:
        assert policy.may("seller", action), action


# ---- looking keys up --------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "keys.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_live_key_acts_as_its_shop_through_the_key(store: SqliteStore) -> None:
    issued = issue_key("shop-1", "Бот", ("chat:read", "chat:write"), NOW)
    await store.create_key(issued.record)
    identity = await Credentials(SECRET, store).identify(issued.key)
    assert identity.key == issued.record.id
    assert math.isinf(identity.expires_at)
    assert identity.actor == Actor(
        role="seller",
        id=issued.record.id,
        name="Бот",
        shop="shop-1",
        scopes=frozenset({"chat:read", "chat:write"}),
    )


async def test_an_unknown_or_revoked_key_is_refused(store: SqliteStore) -> None:
    credentials = Credentials(SECRET, store)
    issued = issue_key("shop-1", "Бот", ("chat:read",), NOW)
    await store.create_key(issued.record)
    with pytest.raises(TokenError, match="unknown or revoked"):
        await credentials.identify(new_key())
    assert await store.revoke_key("shop-1", issued.record.id, NOW)
    with pytest.raises(TokenError, match="unknown or revoked"):
        await credentials.identify(issued.key)


async def test_a_malformed_key_is_refused_without_asking_the_store(store: SqliteStore) -> None:
    credentials = Credentials(SECRET, store)
    await store.close()
    # The store is closed: an answer other than StoreClosed means it was never asked.
    with pytest.raises(TokenError, match="not a valid API key"):
        await credentials.identify("chatd_" + "x" * 10)


async def test_tokens_are_still_tokens(store: SqliteStore) -> None:
    token = issue(SECRET, role="buyer", sub="b1", name="Люда")
    identity = await Credentials(SECRET, store).identify(token)
    assert identity.key is None and identity.actor.id == "b1" and identity.actor.scopes is None
