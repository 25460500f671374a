"""The parts of webhooks that need no server: signatures (against the Standard Webhooks
scheme's published example and the `standardwebhooks` package), secrets, the payload, which
destinations are refused, and `--webhook-retries`."""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from chatd.store.base import Stored
from chatd.webhooks import destinations, signing
from chatd.webhooks.delivery import payload
from chatd.webhooks.settings import DEFAULT_RETRIES, parse_retries
from protocol.events import Author, Event, MessagePosted, Operator

# The example of the scheme's specification: this secret, id, timestamp and body sign to
# this signature.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_of_the_schemes_example() -> None:
    assert signing.signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )


def test_the_signature_is_keyed_with_the_secrets_decoded_bytes() -> None:
    # Keyed with the text after whsec_ instead, it would be another signature.
    raw = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    assert signing.secret_key(VECTOR_SECRET) == raw
    wrong = signing.signature("whsec_" + base64.b64encode(b"x" + raw).decode(), VECTOR_ID, 1, b"")
    assert wrong != signing.signature(VECTOR_SECRET, VECTOR_ID, 1, b"")
    with pytest.raises(ValueError):
        signing.secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def test_a_delivery_verifies_with_the_standardwebhooks_package_and_only_as_sent() -> None:
    secret = signing.new_secret()
    body = b'{"type":"message","data":{"text":"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"}}'
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers(secret, "wh_1_42", now, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    for tampered in (
        (body + b" ", headers),
        (body, {**headers, "webhook-id": "wh_1_43"}),
        (body, {**headers, "webhook-timestamp": str(now + 1)}),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(*tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_a_secret_is_whsec_and_the_base64_of_32_random_bytes() -> None:
    made = {signing.new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_a_message_id_is_the_same_for_every_attempt_and_apart_per_endpoint() -> None:
    assert signing.message_id("wh_a", 7) == signing.message_id("wh_a", 7)
    assert len({signing.message_id(e, p) for e in ("wh_a", "wh_b") for p in (7, 8)}) == 4


def test_the_payload_is_the_shops_event_frame_in_its_envelope() -> None:
    at = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    event = Event(
        stream="b:lyuda|s:shop",
        seq=3,
        at=at,
        kind="message",
        author=Author(
            role="seller", id="shop", name="Shop", operator=Operator(id="op", name="Анна")
        ),
        data=MessagePosted(),
        text="Здравствуйте",
    )
    body = json.loads(payload(Stored(pos=42, event=event), "abc"))
    assert body == {
        "type": "message",
        "timestamp": "2025-03-03T09:30:00Z",
        "data": {
            "type": "event",
            "chat": "b:lyuda|s:shop",
            "seq": 3,
            "cursor": "abc.2a",
            "at": "2025-03-03T09:30:00Z",
            "kind": "message",
            "author": {
                "role": "seller",
                "id": "shop",
                "name": "Shop",
                "operator": {"id": "op", "name": "Анна"},
            },
            "data": body["data"]["data"],
            "text": "Здравствуйте",
        },
    }


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("127.8.8.8", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT: not private, not global either
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("ff02::1", False),
    ],
)
def test_only_global_addresses_are_public(address: str, public: bool) -> None:
    assert destinations.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://crm.example/hook",
        "file:///etc/passwd",
        "https:///nohost",
        "https://user:pw@crm.example/hook",
        "https://crm.example:99999/hook",
        "https://crm.example/a b",
        "https://crm.example/" + "a" * 2100,
    ],
)
def test_urls_that_are_no_http_destination_are_refused(url: str) -> None:
    with pytest.raises(destinations.DestinationRefused):
        destinations.parse(url)


async def test_a_name_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(destinations.DestinationRefused, match=r"127\.0\.0\.1"):
        await destinations.check("http://localhost:9/hook", allow_private=False)
    allowed = await destinations.check("http://localhost:9/hook", allow_private=True)
    assert allowed.address is None and allowed.destination.port == 9
    public = await destinations.check("https://93.184.215.14/hook", allow_private=False)
    assert public.address == "93.184.215.14" and public.destination.port == 443


def test_retries_are_comma_separated_durations() -> None:
    assert parse_retries("5s,1.5m,2h") == (
        timedelta(seconds=5),
        timedelta(seconds=90),
        timedelta(hours=2),
    )
    assert (
        tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000))
        == DEFAULT_RETRIES
    )
    for bad in ("", "5s,", ",5s", "5s,,5m", "5s, 5m", "0s", "-5s", "5x"):
        with pytest.raises(ValueError):
            parse_retries(bad)
