"""The codecs: every frame round-trips in both subprotocols; garbage never raises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import PROTOCOL_REVISION, PROTOCOL_VERSION
from protocol import frames as f
from protocol.codec import CODECS, JSON, MSGPACK, DecodeError, codec_for
from protocol.events import (
    CHAT_KINDS,
    DATA_TYPES,
    Attachment,
    Author,
    ChatAssigned,
    Event,
    Kind,
    MessagePosted,
    Money,
    NotePosted,
    Operator,
    OrderCard,
    Party,
    ReturnEscalated,
    ReturnExpired,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
    ReturnWithdrawn,
    decode_event,
    encode_event,
    kind_of,
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
    # Version 1.1.
    f.ReturnRequest(chat="c1", order="o1", comment="Порвалась по шву", attachments=["f1", "f2"]),
    f.ReturnReject(claim="r1", reason="Следы носки"),
    f.ReturnResolve(claim="r1", decision="reject", comment="Фото подтверждают износ"),
    f.ReturnWithdraw(claim="r1", id="w"),
    f.Assign(chat="c1", operator="op-anna"),
    f.Assign(chat="c1", operator=None, id="unassign"),
    f.PrivateNote(chat="c1", text="Перезвонить", nonce="n2"),
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
        (b'{"type": "return.request", "chat": "c", "order": "o", "comment": 5}', "`$.comment`"),
        (
            b'{"type": "return.request", "chat": "c", "order": "o", "attachments": "f1"}',
            "`$.attachments`",
        ),
        (
            b'{"type": "return.request", "chat": "c", "order": "o", "attachments": ['
            + b",".join([b'"f"'] * 11)
            + b"]}",
            "`$.attachments`",
        ),
        (
            b'{"type": "return.reject", "claim": "r", "reason": "' + b"x" * 16_001 + b'"}',
            "`$.reason`",
        ),
        (
            b'{"type": "return.resolve", "claim": "r", "decision": "reject", "comment": []}',
            "`$.comment`",
        ),
        (b'{"type": "return.withdraw"}', "missing required field `claim`"),
        (b'{"type": "return.withdraw", "claim": ""}', "`$.claim`"),
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
                "comment",
                "reason",
                "attachments",
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


# ---- version 1.1 -------------------------------------------------------------------------------


def test_the_new_fields_are_optional_and_a_version_1_frame_still_decodes() -> None:
    codec = CODECS[JSON]
    assert codec.decode_client(b'{"type": "return.request", "chat": "c", "order": "o"}') == (
        f.ReturnRequest(chat="c", order="o", comment=None, attachments=[])
    )
    assert codec.decode_client(b'{"type": "return.reject", "claim": "r"}') == f.ReturnReject(
        claim="r", reason=None
    )


def test_welcome_says_version_1_1_and_stays_protocol_1() -> None:
    welcome = f.Welcome(
        session="s",
        user=f.UserInfo(id="u", role="buyer", name="Люда"),
        server_time=datetime(2026, 12, 5, tzinfo=UTC),
        cursor="log.0",
        protocol=PROTOCOL_VERSION,
        version=PROTOCOL_REVISION,
    )
    for subprotocol in (JSON, MSGPACK):
        codec = CODECS[subprotocol]
        encoded = codec.encode(welcome)
        raw = (
            msgspec.json.decode(encoded) if subprotocol == JSON else msgspec.msgpack.decode(encoded)
        )
        assert (raw["protocol"], raw["version"]) == (1, "1.1")
        assert codec.decode_server(encoded) == welcome
    # A client still reads the welcome of a server from before 1.1.
    older = CODECS[JSON].encode(msgspec.structs.replace(welcome, version=None))
    assert "version" not in msgspec.json.decode(older)
    assert CODECS[JSON].decode_server(older) == msgspec.structs.replace(welcome, version=None)


def test_a_claims_due_is_always_sent_null_included() -> None:
    due = datetime(2023, 9, 3, 21, 0, tzinfo=UTC)
    claims = [
        f.ClaimSummary(claim="r1", order="o1", state="requested", due=due),
        f.ClaimSummary(claim="r2", order="o2", state="approved", due=None),
    ]
    assert msgspec.json.decode(msgspec.json.encode(claims)) == [
        {"claim": "r1", "order": "o1", "state": "requested", "due": "2023-09-03T21:00:00Z"},
        {"claim": "r2", "order": "o2", "state": "approved", "due": None},
    ]
    # Summaries from before 1.1 decode with no due.
    assert msgspec.json.decode(
        b'{"claim": "r", "order": "o", "state": "requested"}', type=f.ClaimSummary
    ) == f.ClaimSummary(claim="r", order="o", state="requested")


ORDER = OrderCard(
    id="o1",
    buyer=Party(id="b", name="Тимур"),
    seller=Party(id="s", name="ИП"),
    article="140158860",
    name="Юбка",
    brand="SK - Line",
    price=Money(value=118600, currency="RUB"),
    purchased_at=datetime(2023, 8, 1, tzinfo=UTC),
    received_at=datetime(2023, 8, 17, tzinfo=UTC),
    non_returnable=False,
)
PHOTO = Attachment(id="f1", name="брак.jpg", mime="image/jpeg", size=1000)


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (
            ReturnRequested(claim="r1", order=ORDER, amount=ORDER.price),
            {"attachments": []},
        ),
        (
            ReturnRequested(
                claim="r1", order=ORDER, amount=ORDER.price, attachments=[PHOTO], comment="Брак"
            ),
            {
                "attachments": [
                    {"id": "f1", "name": "брак.jpg", "mime": "image/jpeg", "size": 1000}
                ],
                "comment": "Брак",
            },
        ),
        (ReturnRejected(claim="r1"), {}),
        (ReturnRejected(claim="r1", reason="Следы носки"), {"reason": "Следы носки"}),
        (ReturnResolved(claim="r1", decision="reject"), {"decision": "reject"}),
        (
            ReturnResolved(claim="r1", decision="approve", mode="pvz", comment="Брак"),
            {"decision": "approve", "mode": "pvz", "comment": "Брак"},
        ),
        (ReturnWithdrawn(claim="r1"), {}),
        (ReturnExpired(claim="r1"), {}),
        (ReturnEscalated(claim="r1"), {}),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, dict) else "",
)
def test_the_data_of_the_1_1_kinds_on_the_wire_and_in_the_log(
    data: Any, wire: dict[str, Any]
) -> None:
    kind = kind_of(data)
    event = Event(
        stream="c1",
        seq=2,
        at=datetime(2023, 8, 18, 9, 0, tzinfo=UTC),
        kind=kind,
        author=Author(role="system", id="system", name="Wildberries"),
        data=data,
        text="…",
    )
    assert decode_event(encode_event(event)) == event
    frame = f.EventFrame(
        chat="c1", seq=2, cursor="x", at=event.at, kind=kind, author=event.author, data=data
    )
    for subprotocol in (JSON, MSGPACK):
        encoded = CODECS[subprotocol].encode(frame)
        raw = (
            msgspec.json.decode(encoded) if subprotocol == JSON else msgspec.msgpack.decode(encoded)
        )
        # Typed again, as a client's `parse_data` reads it.
        assert parse_data(kind, raw["data"]) == data
        sent = {k: v for k, v in raw["data"].items() if k not in ("order", "amount")}
        assert sent == {"claim": "r1", **wire}


def test_the_1_1_kinds_are_spelled_as_the_contract_spells_them() -> None:
    assert {Kind.RETURN_WITHDRAWN, Kind.RETURN_EXPIRED, Kind.RETURN_ESCALATED} == {
        "return.withdrawn",
        "return.expired",
        "return.escalated",
    }
    assert {k for k in CHAT_KINDS if k.startswith("return.")} >= {
        "return.withdrawn",
        "return.expired",
        "return.escalated",
    }


def test_a_request_logged_before_1_1_reads_with_no_files_and_no_comment() -> None:
    stored = msgspec.msgpack.encode(
        {
            "stream": "c1",
            "seq": 2,
            "at": "2023-08-18T09:00:00Z",
            "kind": "return.requested",
            "author": {"role": "buyer", "id": "b", "name": "Тимур"},
            "data": {
                "claim": "r1",
                "order": msgspec.to_builtins(ORDER),
                "amount": {"value": 118600, "currency": "RUB"},
            },
            "text": "Здравствуйте!",
        }
    )
    data = decode_event(stored).data
    assert isinstance(data, ReturnRequested)
    assert data.attachments == [] and data.comment is msgspec.UNSET


def test_the_operators_day_sends_its_nulls_and_leaves_assignee_out_for_the_buyer() -> None:
    codec = CODECS[JSON]
    assert msgspec.json.decode(codec.encode(f.Assign(chat="c1", operator=None, id="a"))) == {
        "type": "assign",
        "id": "a",
        "chat": "c1",
        "operator": None,
    }
    # `operator` must be sent: a frame without it is refused before any rule runs.
    missing = codec.decode_client(b'{"type": "assign", "chat": "c1"}')
    assert isinstance(missing, DecodeError)
    anna = Operator(id="op-anna", name="Анна")
    assert msgspec.json.decode(msgspec.json.encode(ChatAssigned(operator=None))) == {
        "operator": None
    }
    assert msgspec.json.decode(msgspec.json.encode(ChatAssigned(operator=anna, by=anna))) == {
        "operator": {"id": "op-anna", "name": "Анна"},
        "by": {"id": "op-anna", "name": "Анна"},
    }
    assert msgspec.json.decode(msgspec.json.encode(NotePosted())) == {}
    summary = f.ChatSummary(
        chat="c1",
        buyer=Party(id="b", name="Тимур"),
        seller=Party(id="s", name="ИП"),
        last=None,
        unread=0,
        reply_due=None,
        claims=[],
    )
    buyers = msgspec.json.decode(msgspec.json.encode(summary))
    assert "assignee" not in buyers
    shops = msgspec.json.decode(
        msgspec.json.encode(msgspec.structs.replace(summary, assignee=None))
    )
    assert shops["assignee"] is None
    # A client of 1.0 summaries reads them with no assignee at all.
    assert msgspec.json.decode(msgspec.json.encode(buyers), type=f.ChatSummary) == summary
