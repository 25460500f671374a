"""The codecs: every frame round-trips in both subprotocols; garbage never raises."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import frames as f
from protocol.codec import CODECS, JSON, MSGPACK, DecodeError, codec_for
from protocol.events import (
    DATA_TYPES,
    Author,
    Event,
    MessagePosted,
    Money,
    Operator,
    decode_event,
    encode_event,
    parse_data,
)

CLIENT_FRAMES = [
    f.Hello(token="t", since="c.1", id="1"),
    f.Open(seller="shop1", order="o1"),
    f.Send(chat="c1", text="привет", attachments=["f1"], nonce="n1", id="x"),
    f.Read(chat="c1", seq=3),
    f.History(chat="c1", before=10, limit=20),
    f.Chats(before="c.5", limit=10),
    f.Search(q="ёлка", chat="c1"),
    f.Attachments(chat="c1"),
    f.ReturnRequest(chat="c1", order="o1"),
    f.ReturnApprove(claim="r1", mode="pvz", amount=Money(value=118600, currency="RUB")),
    f.ReturnReject(claim="r1"),
    f.ReturnInitiate(chat="c1", order="o1"),
    f.ReturnDispute(claim="r1"),
    f.ReturnResolve(claim="r1", decision="approve", mode="no_return"),
    f.Ping(id="p"),
]


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda fr: type(fr).__name__)
def test_client_frames_round_trip(subprotocol: str, frame: f.ClientFrame) -> None:
    codec = CODECS[subprotocol]
    assert codec.decode_client(codec.encode(frame)) == frame


def test_json_frames_carry_the_type_tag() -> None:
    encoded = CODECS[JSON].encode(f.Ping(id="p"))
    assert msgspec.json.decode(encoded) == {"type": "ping", "id": "p"}


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
def test_server_frames_decode_for_clients(subprotocol: str) -> None:
    codec = CODECS[subprotocol]
    event = f.EventFrame(
        chat="c1",
        seq=2,
        cursor="abc.2",
        at=datetime(2023, 3, 4, 7, 1, tzinfo=UTC),
        kind="message",
        author=Author(role="seller", id="s", name="S", operator=Operator(id="o", name="O")),
        data=MessagePosted(),
        text="привет",
    )
    decoded = codec.decode_server(codec.encode(event))
    assert isinstance(decoded, f.EventFrame)
    assert decoded.text == "привет" and decoded.author.operator == Operator(id="o", name="O")
    assert parse_data(decoded.kind, decoded.data) == MessagePosted()


def test_optional_fields_are_left_out_but_required_nulls_stay() -> None:
    codec = CODECS[JSON]
    assert msgspec.json.decode(codec.encode(f.Ack(chat="c", seq=1, cursor="x"))) == {
        "type": "ack",
        "chat": "c",
        "seq": 1,
        "cursor": "x",
    }
    assert msgspec.json.decode(codec.encode(f.ChatsPage(chats=[], before=None))) == {
        "type": "chats",
        "chats": [],
        "before": None,
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "truncated"),
        (b"[]", "Expected `object`"),
        (b'{"type": "nope"}', "`$.type`"),
        (b'{"chat": "c"}', "missing required field `type`"),
        (b'{"type": "send", "chat": 5, "text": "x"}', "`$.chat`"),
        (b'{"type": "history", "chat": "c", "limit": 101}', "`$.limit`"),
        (b'{"type": "read", "chat": "c", "seq": -1}', "`$.seq`"),
        (b'{"type": "ping", "id": "' + b"x" * 65 + b'"}', "`$.id`"),
        (b'{"type": "send", "chat": "c", "nonce": "' + b"n" * 65 + b'"}', "`$.nonce`"),
        (b'{"type": "return.approve", "claim": "r", "mode": "post", "amount": 1}', "`$.mode`"),
        (b"\xff\xfe\x00", "malformed"),
    ],
)
def test_garbage_becomes_a_decode_error_that_says_what_was_wrong(raw: bytes, fragment: str) -> None:
    result = CODECS[JSON].decode_client(raw)
    assert isinstance(result, DecodeError)
    assert fragment in result.message


def test_a_bad_frame_keeps_its_request_id() -> None:
    result = CODECS[JSON].decode_client(b'{"type": "nope", "id": "req-7"}')
    assert isinstance(result, DecodeError) and result.id == "req-7"
    result = CODECS[MSGPACK].decode_client(msgspec.msgpack.encode({"type": "x", "id": "m"}))
    assert isinstance(result, DecodeError) and result.id == "m"


def test_unknown_fields_are_ignored() -> None:
    frame = CODECS[JSON].decode_client(b'{"type": "ping", "future": {"a": [1]}}')
    assert frame == f.Ping()


def test_no_subprotocol_means_json() -> None:
    assert codec_for(None).subprotocol == JSON
    assert codec_for("unknown").subprotocol == JSON


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(raw: bytes) -> None:
    for codec in CODECS.values():
        result = codec.decode_client(raw)
        assert result is not None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(f.ClientFrame.__args__, key=lambda t: t.__name__)),
    st.dictionaries(
        st.sampled_from(
            [
                "chat",
                "text",
                "seq",
                "limit",
                "id",
                "claim",
                "mode",
                "amount",
                "q",
                "token",
                "since",
                "before",
                "order",
                "seller",
                "nonce",
                "decision",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_frames_with_random_field_values_never_raise(frame_type: type, fields: dict) -> None:
    tag = frame_type.__struct_config__.tag
    for name, codec in CODECS.items():
        payload = {"type": tag, **fields}
        raw = msgspec.json.encode(payload) if name == JSON else msgspec.msgpack.encode(payload)
        codec.decode_client(raw)


def test_events_round_trip_through_storage() -> None:
    assert "message" in DATA_TYPES
    event = Event(
        stream="c1",
        seq=2,
        at=datetime(2023, 3, 4, 7, 1, tzinfo=UTC),
        kind="message",
        author=Author(role="buyer", id="b", name="Б"),
        data=MessagePosted(),
        text="привет",
    )
    assert decode_event(encode_event(event)) == event
