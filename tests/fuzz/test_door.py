"""The two checks at the door under hypothesis: `chatd.auth.verify` over signed tokens with
hostile claims, and `chatd.domain.orders.order_problem` over prices and dates. Whatever
passes must be something every later step can compute with and send; whatever does not is
refused with the door's own error, never an exception from deeper down."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatd.auth import MAX_LIFETIME, MAX_TOKEN, TokenError, verify
from chatd.domain.orders import order_problem
from protocol.events import Money, OrderCard, Party
from tests.e2e.harness import SECRET

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_750_000_000.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes) -> str:
    """HS256 over `payload` as given (json.dumps writes lone surrogates as escapes and
    infinities as `Infinity`, which Python's JSON reader takes back)."""
    signing = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(payload)
    mac = hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + _b64(mac)


# Any code point, surrogates included: JSON's \uXXXX escapes can carry them.
texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=20)
numbers = st.one_of(
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=int(NOW) - 100, max_value=int(NOW + 2 * MAX_LIFETIME)),
    st.floats(min_value=NOW - 100, max_value=NOW + 2 * MAX_LIFETIME),
)
values = st.one_of(st.none(), st.booleans(), numbers, texts, st.lists(st.integers(), max_size=2))
roles = st.sampled_from(["buyer", "seller", "manager", "system"]) | texts


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {
        "sub": draw(texts | values),
        "role": draw(roles),
        "exp": draw(numbers | values),
    }
    for optional in ("name", "seller", "shop_name", "iat", "nbf"):
        if draw(st.booleans()):
            found[optional] = draw(texts | values)
    return found


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@FUZZ
@given(claims())
@example({"sub": "b1", "role": "buyer", "exp": 1e308})
@example({"sub": "b1", "role": "buyer", "exp": 10**400})
@example({"sub": "b1", "role": "buyer", "exp": math.inf})
@example({"sub": "b1", "role": "buyer", "exp": NOW + 600, "name": "a\ud800"})
@example({"sub": "b\udfff", "role": "buyer", "exp": NOW + 600})
@example({"sub": "b1", "role": "buyer", "exp": NOW + 600, "iat": math.inf})
def test_a_token_verifies_to_something_usable_or_is_a_token_error(found: dict[str, Any]) -> None:
    token = signed(json.dumps(found).encode())
    try:
        identity = verify(SECRET, token, now=NOW)
    except TokenError:
        return
    assert math.isfinite(identity.expires_at)
    assert identity.expires_at <= NOW + MAX_LIFETIME
    actor = identity.actor
    for text in (actor.id, actor.name, actor.shop or "", actor.shop_name or ""):
        assert _sendable(text), actor


def _signed_of_length(length: int) -> str:
    """A well-signed buyer token at least `length` characters long (its name pads it)."""
    base = len(signed(b'{"sub":"b1","role":"buyer","exp":0,"name":""}'))
    pad = max(0, (length - base) * 3 // 4)
    while True:
        claims = {"sub": "b1", "role": "buyer", "exp": NOW + 600, "name": "x" * pad}
        token = signed(json.dumps(claims).encode())
        if len(token) >= length:
            return token
        pad += 1


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_TOKEN + 1, max_value=3 * MAX_TOKEN))
def test_a_token_longer_than_hello_allows_is_refused(length: int) -> None:
    # /ws refuses such a hello by the frame's bound; HTTP must refuse the same token.
    long = _signed_of_length(length)
    try:
        verify(SECRET, long, now=NOW)
    except TokenError as exc:
        assert str(MAX_TOKEN) in str(exc)
    else:
        raise AssertionError(f"a token of {len(long)} characters was accepted")


# ---- orders ----------------------------------------------------------------------------------

SERVER_NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
zones = st.sampled_from([UTC, None]) | st.integers(-23 * 60, 23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Up to the ends of what a datetime holds, with or without an offset.
moments = st.builds(lambda at, zone: at.replace(tzinfo=zone), st.datetimes(), zones)


def card(value: int, currency: str, purchased: datetime, received: datetime | None) -> OrderCard:
    party = Party(id="p", name="p")
    return OrderCard(
        id="o1",
        buyer=party,
        seller=party,
        article="A-1",
        name="Шарф",
        brand="",
        price=Money(value=value, currency=currency),
        purchased_at=purchased,
        received_at=received,
        non_returnable=False,
    )


@FUZZ
@given(
    st.integers(min_value=-(2**70), max_value=2**70) | st.integers(min_value=-5, max_value=5),
    st.sampled_from(["RUB", "BYN", "KZT", "ZZZ", "XAU", "XXX", "RUR"]),
    moments,
    moments | st.none(),
)
@example(2**63, "RUB", datetime(2023, 8, 10, tzinfo=UTC), None)
@example(-1, "RUB", datetime(2023, 8, 10, tzinfo=UTC), None)
@example(100, "RUB", datetime(2023, 8, 10, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))
@example(100, "RUB", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), None)
@example(100, "RUB", datetime(2023, 8, 10, tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
def test_an_order_the_door_lets_in_is_one_every_rule_can_compute_with(
    value: int, currency: str, purchased: datetime, received: datetime | None
) -> None:
    if order_problem(card(value, currency, purchased, received), SERVER_NOW) is not None:
        return
    # A refund of it, and a million more like it, fit the stores' 64-bit sums.
    assert 0 < value * 1_000_000 < 2**63
    # Its dates compare and `return_too_early`'s opening date exists.
    assert purchased.tzinfo is not None and purchased <= SERVER_NOW + timedelta(days=1)
    if received is not None:
        assert purchased <= received <= SERVER_NOW + timedelta(days=1)
        assert received + timedelta(days=14) > received
