"""The codec under hypothesis, over every client frame type and both subprotocols: what the
contract accepts decodes to exactly what was sent, what it refuses is a `DecodeError` (the
server's `bad_frame`), and nothing, however broken, raises past the codec."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocol import frames as f
from protocol.codec import CODECS, JSON, MSGPACK, DecodeError
from protocol.events import Money
from tests.fuzz.strategies import (
    FRAMES,
    TYPES,
    Broken,
    broken_frames,
    damaged_bytes,
    deep_value,
    encode,
    huge_integer,
    invalid_utf8,
    non_utf8_string,
    splice,
    valid_frames,
)

SUBPROTOCOLS = [JSON, MSGPACK]
TIMESTAMP = msgspec.msgpack.Ext(-1, b"\0" * 4)
CLIENT_FRAME_TYPES: tuple[type, ...] = typing.get_args(f.ClientFrame)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode(raw: bytes | str, subprotocol: str) -> f.ClientFrame | DecodeError:
    result = CODECS[subprotocol].decode_client(raw)
    assert isinstance(result, (DecodeError, *CLIENT_FRAME_TYPES)), type(result)
    return result


def as_sent(frame: dict[str, Any]) -> dict[str, Any]:
    """The fields of `frame` the contract knows (unknown ones are ignored by the server)."""
    known = set(FRAMES[frame["type"]]) | {"type", "id"}
    return {k: v for k, v in frame.items() if k in known}


def as_decoded(frame: f.ClientFrame) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(frame)
    return {k: v for k, v in built.items() if v is not None}


def with_defaults(frame: dict[str, Any]) -> dict[str, Any]:
    """What a decoded frame holds: `frame` with every default the contract gives."""
    defaults: dict[str, dict[str, Any]] = {
        "send": {"text": "", "attachments": []},
        "return.request": {"attachments": []},
        "history": {"limit": 50},
        "chats": {"limit": 50},
    }
    full = {**defaults.get(frame["type"], {}), **frame}
    return {k: v for k, v in full.items() if v is not None}


# ---- what the contract accepts ---------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@FUZZ
@given(frame=valid_frames())
def test_every_valid_frame_decodes_to_exactly_what_was_sent(
    subprotocol: str, frame: dict[str, Any]
) -> None:
    decoded = decode(encode(frame, subprotocol), subprotocol)
    assert not isinstance(decoded, DecodeError), (frame, decoded)
    assert as_decoded(decoded) == with_defaults(as_sent(frame))


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@FUZZ
@given(frame=valid_frames())
def test_an_accepted_frame_survives_a_round_trip_through_the_codec(
    subprotocol: str, frame: dict[str, Any]
) -> None:
    codec = CODECS[subprotocol]
    decoded = decode(encode(frame, subprotocol), subprotocol)
    assert not isinstance(decoded, DecodeError)
    assert codec.decode_client(codec.encode(decoded)) == decoded


@pytest.mark.parametrize("tag", TYPES)
def test_json_text_and_binary_frames_decode_alike(tag: str) -> None:
    frame: dict[str, Any] = {"type": tag, "id": "й"}
    for name, spec in FRAMES[tag].items():
        if spec.required:
            frame[name] = {"money": {"value": 1, "currency": "RUB"}, "seq": 1}.get(
                spec.kind, {"mode": "pvz", "decision": "reject"}.get(spec.kind, "ёлка")
            )
    raw = encode(frame, JSON)
    assert decode(raw, JSON) == decode(raw.decode(), JSON)
    assert not isinstance(decode(raw, JSON), DecodeError)


# ---- what it refuses -------------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@FUZZ
@given(broken=broken_frames())
def test_a_wrong_type_missing_field_or_out_of_range_value_is_a_decode_error(
    subprotocol: str, broken: Broken
) -> None:
    result = decode(encode(broken.frame, subprotocol), subprotocol)
    assert isinstance(result, DecodeError), (broken.how, broken.frame, result)
    assert result.message


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@FUZZ
@given(broken=broken_frames())
def test_a_refused_frame_echoes_its_id_only_when_the_id_is_valid(
    subprotocol: str, broken: Broken
) -> None:
    result = decode(encode(broken.frame, subprotocol), subprotocol)
    assert isinstance(result, DecodeError)
    rid = broken.frame.get("id")
    if isinstance(rid, str) and len(rid) <= 64:
        assert result.id == rid, (broken.how, broken.frame, result)
    else:
        assert result.id is None, (broken.how, broken.frame, result)


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("field", ["chat", "text", "nonce"])
@pytest.mark.parametrize("junk", [b"\xff", b"ok\xed\xa0\x80"], ids=["ff", "surrogate"])
def test_a_string_that_is_not_utf8_is_a_decode_error_that_echoes_the_id(
    subprotocol: str, field: str, junk: bytes
) -> None:
    """DECISIONS.md: a `bad_frame` echoes the frame's `id` whenever the frame had a valid one,
    even if the rest of the frame could not be read."""
    frame = {"type": "send", "id": "req-utf8", "chat": "c1", "text": "привет", "nonce": "n"}
    raw = splice(frame, field, subprotocol, non_utf8_string(subprotocol, junk))
    result = decode(raw, subprotocol)
    assert isinstance(result, DecodeError), result
    assert CODECS[subprotocol].request_id(raw) == "req-utf8"
    assert result.id == "req-utf8", result


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_an_unknown_field_that_is_not_utf8_is_skipped_unread(subprotocol: str) -> None:
    frame = {"type": "send", "id": "u", "chat": "c1", "text": "привет"}
    raw = splice(frame, "extra", subprotocol, non_utf8_string(subprotocol, b"\xff\xfe"))
    assert decode(raw, subprotocol) == f.Send(id="u", chat="c1", text="привет")


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("depth", [32, 1_000, 100_000, 1_000_000])
@pytest.mark.parametrize("kind", ["list", "map"])
@pytest.mark.parametrize("field", ["claim", "amount", "extra"])
def test_deep_nesting_anywhere_never_raises(
    subprotocol: str, depth: int, kind: str, field: str
) -> None:
    frame = {"type": "return.approve", "id": "deep", "claim": "r1", "mode": "pvz"}
    frame["amount"] = {"value": 1, "currency": "RUB"}
    raw = splice(frame, field, subprotocol, deep_value(depth, subprotocol, kind))
    result = decode(raw, subprotocol)
    if field == "extra" and depth == 32:
        # An unknown field is ignored, whatever it holds, within the decoder's depth limit.
        assert result == f.ReturnApprove(
            id="deep", claim="r1", mode="pvz", amount=Money(value=1, currency="RUB")
        )
    else:
        assert isinstance(result, DecodeError), result
        if depth == 32:
            assert result.id == "deep", result


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("field", ["seq", "limit", "before"])
@pytest.mark.parametrize("digits", [20, 400, 5_000])
def test_integers_past_64_bits_are_decode_errors(subprotocol: str, field: str, digits: int) -> None:
    tag = {"seq": "read", "limit": "history", "before": "history"}[field]
    frame = {"type": tag, "chat": "c1"}
    raw = splice(frame, field, subprotocol, huge_integer(subprotocol, digits))
    assert isinstance(decode(raw, subprotocol), DecodeError)


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("digits", [20, 400, 5_000])
def test_an_amount_past_64_bits_never_raises(subprotocol: str, digits: int) -> None:
    """Money has no bound in the contract: JSON may carry a long integer (the rule, a full
    refund of the order's price, then refuses it with `amount_mismatch`)."""
    amount = splice({"currency": "RUB"}, "value", subprotocol, huge_integer(subprotocol, digits))
    frame = {"type": "return.approve", "claim": "r1", "mode": "pvz"}
    result = decode(splice(frame, "amount", subprotocol, amount), subprotocol)
    if not isinstance(result, DecodeError):
        assert isinstance(result, f.ReturnApprove) and result.amount.value >= 2**63


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), -0.0, 1.0, 2.0**53, True, False],
    ids=["nan", "inf", "-inf", "-0.0", "1.0", "2**53.0", "true", "false"],
)
def test_msgpack_floats_and_booleans_are_not_integers(value: float) -> None:
    raw = msgspec.msgpack.encode({"type": "read", "chat": "c1", "seq": value, "id": "f"})
    result = decode(raw, MSGPACK)
    assert isinstance(result, DecodeError) and result.id == "f", result


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"ping","type":"send","chat":"c"}',
        b'{"type":"send","chat":"c","type":"ping"}',
        b'\xef\xbb\xbf{"type":"ping"}',
        b'{"type":"ping"} {"type":"ping"}',
        b'{"type":"ping","n":NaN}',
        b'{"type":"ping","n":Infinity}',
        b'{"type":"read","chat":"c","seq":01}',
        b'{"type":"read","chat":"c","seq":1e3}',
        b'{"type":"ping",}',
        b"{'type':'ping'}",
        b'{"type":"ping"/*x*/}',
        b'"ping"',
        b"null",
        b"",
        b" ",
        b"\x00",
        b'{"type":"ping\\u0000"}',
        b'{"type":"\\ud800"}',
        b'{"type":"send","chat":"c","text":"\\udfff"}',
    ],
)
def test_json_oddities_are_decode_errors(raw: bytes) -> None:
    assert isinstance(decode(raw, JSON), DecodeError)


@pytest.mark.parametrize(
    "raw",
    [
        msgspec.msgpack.encode({"type": "ping", 1: 2}),
        msgspec.msgpack.encode({"type": "ping", "id": b"bytes"}),
        msgspec.msgpack.encode({"type": b"ping"}),
        msgspec.msgpack.encode({"type": "send", "chat": "c", "text": msgspec.msgpack.Ext(1, b"x")}),
        msgspec.msgpack.encode({"type": "read", "chat": "c", "seq": TIMESTAMP}),
        msgspec.msgpack.encode([{"type": "ping"}]),
        b"\xc1",
        b"\xdf\xff\xff\xff\xff",
        b"\xdd\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff",
        b"\x81\xa4type\xa4ping\xc0",
    ],
    ids=[
        "int_key", "bin_id", "bin_type", "ext_text", "timestamp_seq", "array", "never_used",
        "map32_claims_4g", "array32_claims_4g", "str32_claims_4g", "bin32_claims_4g", "trailing",
    ],
)  # fmt: skip
def test_msgpack_oddities_are_decode_errors(raw: bytes) -> None:
    assert isinstance(decode(raw, MSGPACK), DecodeError)


def test_a_text_frame_in_the_msgpack_subprotocol_is_a_decode_error() -> None:
    assert isinstance(decode('{"type":"ping"}', MSGPACK), DecodeError)


# ---- nothing raises ------------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_bytes_never_raise_and_what_decodes_round_trips(
    subprotocol: str, data: st.DataObject
) -> None:
    raw = data.draw(damaged_bytes(subprotocol=subprotocol))
    result = decode(raw, subprotocol)
    if isinstance(result, DecodeError):
        assert isinstance(result.message, str) and result.message
        assert result.id is None or (isinstance(result.id, str) and len(result.id) <= 64)
        # The error itself always encodes: the server can always answer `bad_frame`.
        error = f.Error(code="bad_frame", message=result.message, id=result.id)
        CODECS[subprotocol].decode_server(CODECS[subprotocol].encode(error))
    else:
        codec = CODECS[subprotocol]
        assert codec.decode_client(codec.encode(result)) == result


@settings(max_examples=200, deadline=None)
@given(junk=invalid_utf8, prefix=st.binary(max_size=8))
@example(junk=b"\xff", prefix=b"")
def test_invalid_utf8_anywhere_in_a_json_frame_never_raises(junk: bytes, prefix: bytes) -> None:
    for cut in range(0, 40, 3):
        raw = encode({"type": "send", "chat": "c1", "text": "привет", "id": "u"}, JSON)
        damaged = raw[:cut] + prefix + junk + raw[cut:]
        decode(damaged, JSON)
