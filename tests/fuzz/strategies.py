"""Hypothesis strategies for client frames: valid ones of every type, and ways to break them.

A frame is built as a plain dict, then encoded to JSON or MessagePack bytes. Breakage that a
dict cannot carry (integers past 64 bits, nesting deeper than any encoder recurses, bytes that
are not UTF-8) is spliced into the encoded bytes in place of a marker string.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from hypothesis import strategies as st

from protocol.codec import JSON, MSGPACK

Frame = dict[str, Any]
MARKER = "\u2603marker\u2603"


@dataclass(frozen=True)
class FieldSpec:
    kind: str
    required: bool


# Every client frame of docs/protocol.md section 3, with its fields and their kinds.
FRAMES: dict[str, dict[str, FieldSpec]] = {
    "hello": {"token": FieldSpec("token", True), "since": FieldSpec("since", False)},
    "open": {"seller": FieldSpec("ref", True), "order": FieldSpec("ref", False)},
    "send": {
        "chat": FieldSpec("ref", True),
        "text": FieldSpec("text", False),
        "attachments": FieldSpec("refs", False),
        "nonce": FieldSpec("nonce", False),
    },
    "read": {"chat": FieldSpec("ref", True), "seq": FieldSpec("seq", True)},
    "history": {
        "chat": FieldSpec("ref", True),
        "before": FieldSpec("before_seq", False),
        "limit": FieldSpec("limit", False),
    },
    "chats": {"before": FieldSpec("page", False), "limit": FieldSpec("limit", False)},
    "search": {"q": FieldSpec("query", True), "chat": FieldSpec("ref", False)},
    "attachments": {"chat": FieldSpec("ref", True)},
    "return.request": {
        "chat": FieldSpec("ref", True),
        "order": FieldSpec("ref", True),
        "comment": FieldSpec("note", False),
        "attachments": FieldSpec("refs", False),
    },
    "return.approve": {
        "claim": FieldSpec("ref", True),
        "mode": FieldSpec("mode", True),
        "amount": FieldSpec("money", True),
    },
    "return.reject": {"claim": FieldSpec("ref", True), "reason": FieldSpec("note", False)},
    "return.initiate": {"chat": FieldSpec("ref", True), "order": FieldSpec("ref", True)},
    "return.dispute": {"claim": FieldSpec("ref", True)},
    "return.resolve": {
        "claim": FieldSpec("ref", True),
        "decision": FieldSpec("decision", True),
        "mode": FieldSpec("mode", False),
        "comment": FieldSpec("note", False),
    },
    "return.withdraw": {"claim": FieldSpec("ref", True)},
    # The operator's day (version 1.1): `operator` must be sent, and may be null.
    "assign": {"chat": FieldSpec("ref", True), "operator": FieldSpec("operator", True)},
    "note": {
        "chat": FieldSpec("ref", True),
        "text": FieldSpec("text", True),
        "nonce": FieldSpec("nonce", False),
    },
    # Typing (version 1.1): relayed, never stored; no answer when it passes.
    "typing": {"chat": FieldSpec("ref", True)},
    "ping": {},
}
TYPES = sorted(FRAMES)


@dataclass(frozen=True)
class World:
    """Ids that name real things on the server under test, so valid frames do real work."""

    chats: tuple[str, ...] = ("c1",)
    claims: tuple[str, ...] = ("r1",)
    orders: tuple[str, ...] = ("o1",)
    shops: tuple[str, ...] = ("shop1",)
    words: tuple[str, ...] = ("юбка",)


NO_WORLD = World()

short_text = st.text(min_size=1, max_size=24)


def _ref(pool: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(pool) | st.text(min_size=1, max_size=128)


def valid_value(kind: str, world: World = NO_WORLD) -> st.SearchStrategy[Any]:
    """A value that the contract accepts for a field of `kind`."""
    refs = {
        "ref": world.chats + world.claims + world.orders + world.shops,
    }
    match kind:
        case "token":
            return st.text(min_size=1, max_size=200)
        case "since" | "page":
            return st.text(max_size=120)
        case "ref":
            return _ref(refs["ref"])
        case "operator":
            return st.none() | _ref(refs["ref"])
        case "text":
            return st.sampled_from(world.words) | st.text(max_size=300)
        case "note":
            return st.sampled_from(world.words) | st.text(max_size=600)
        case "refs":
            return st.lists(st.text(min_size=1, max_size=40), max_size=10)
        case "nonce":
            return st.text(min_size=1, max_size=64)
        case "seq":
            return st.integers(min_value=0, max_value=2**53)
        case "before_seq":
            return st.integers(min_value=1, max_value=2**53)
        case "limit":
            return st.integers(min_value=1, max_value=100)
        case "query":
            return st.sampled_from(world.words) | st.text(min_size=1, max_size=256)
        case "mode":
            return st.sampled_from(["pvz", "no_return"])
        case "decision":
            return st.sampled_from(["approve", "reject"])
        case "money":
            return st.fixed_dictionaries(
                {
                    "value": st.integers(min_value=-(2**63), max_value=2**63 - 1),
                    "currency": st.sampled_from(["RUB", "BYN", "KZT", "USD"]),
                }
            )
    raise ValueError(kind)


# Values of a JSON type that no field of that kind accepts (null is left out: optional fields
# take it).
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "str": st.text(max_size=8),
    "list": st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
    "dict": st.dictionaries(st.text(max_size=4), st.booleans(), max_size=3),
}
_ACCEPTS: dict[str, set[str]] = {
    "token": {"str"},
    "since": {"str"},
    "page": {"str"},
    "ref": {"str"},
    "operator": {"str"},
    "text": {"str"},
    "note": {"str"},
    "refs": {"list"},
    "nonce": {"str"},
    "seq": {"int"},
    "before_seq": {"int"},
    "limit": {"int"},
    "query": {"str"},
    "mode": {"str"},
    "decision": {"str"},
    "money": {"dict"},
}


def wrong_value(kind: str) -> st.SearchStrategy[Any]:
    """A value of a JSON type the field never accepts."""
    others = [s for name, s in _SCALARS.items() if name not in _ACCEPTS[kind]]
    return st.one_of(*others)


# Values of the right JSON type that lie outside the contract's range for the field.
def out_of_range(kind: str) -> st.SearchStrategy[Any] | None:
    match kind:
        case "ref" | "operator":
            return st.just("") | st.text(min_size=129, max_size=300)
        case "nonce":
            return st.just("") | st.text(min_size=65, max_size=100)
        case "token":
            return st.just("") | st.just("t" * 4097)
        case "since":
            return st.just("s" * 257)
        case "page":
            return st.just("p" * 129)
        case "query":
            return st.just("") | st.just("q" * 257)
        case "text" | "note":
            return st.just("ж" * 16_001)
        case "refs":
            return st.lists(st.just("f1"), min_size=11, max_size=20)
        case "seq":
            return st.integers(min_value=-(2**63), max_value=-1) | st.integers(
                min_value=2**53 + 1, max_value=2**63
            )
        case "before_seq":
            return st.integers(min_value=-(2**63), max_value=0) | st.integers(
                min_value=2**53 + 1, max_value=2**63
            )
        case "limit":
            return st.integers(min_value=-(2**63), max_value=0) | st.integers(
                min_value=101, max_value=2**63
            )
        case "mode":
            return st.sampled_from(["", "PVZ", "post", "no-return", "pvz "])
        case "decision":
            return st.sampled_from(["", "Approve", "yes", "reject!"])
        case "money":
            return st.sampled_from(
                [
                    {"value": 1},
                    {"currency": "RUB"},
                    {"value": "100", "currency": "RUB"},
                    {"value": 1.5, "currency": "RUB"},
                    {"value": 1, "currency": "rub"},
                    {"value": 1, "currency": "RUBL"},
                ]
            )
    return None


request_ids = st.none() | st.text(max_size=64)


@st.composite
def valid_frames(draw: st.DrawFn, world: World = NO_WORLD, tag: str | None = None) -> Frame:
    """A frame the contract accepts, with optional fields present or not and unknown ones."""
    tag = tag or draw(st.sampled_from(TYPES))
    frame: Frame = {"type": tag}
    rid = draw(request_ids)
    if rid is not None:
        frame["id"] = rid
    for name, spec in FRAMES[tag].items():
        if spec.required or draw(st.booleans()):
            frame[name] = draw(valid_value(spec.kind, world))
    if tag == "return.resolve" and frame["decision"] == "approve" and "mode" not in frame:
        frame["mode"] = draw(valid_value("mode"))
    if draw(st.booleans()):
        extra = draw(
            st.dictionaries(
                st.text(max_size=10).filter(
                    lambda k: k not in FRAMES[tag] and k not in ("type", "id")
                ),
                json_values,
                max_size=3,
            )
        )
        frame.update(extra)
    return frame


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Broken:
    """A frame with one thing wrong, and what was wrong."""

    frame: Frame
    how: str


def _fields(tag: str, required: bool | None = None) -> list[str]:
    return [n for n, s in FRAMES[tag].items() if required is None or s.required == required]


@st.composite
def broken_frames(draw: st.DrawFn, world: World = NO_WORLD) -> Broken:
    """A frame the contract refuses: a field of the wrong type, a required field missing, a
    value out of range, an unknown or missing `type`, or a bad `id`."""
    tag = draw(st.sampled_from(TYPES))
    frame = draw(valid_frames(world, tag))
    choices = ["tag", "id"]
    if FRAMES[tag]:
        choices += ["wrong_type", "out_of_range"]
    if _fields(tag, required=True):
        choices.append("missing")
    how = draw(st.sampled_from(choices))
    if how == "tag":
        frame["type"] = draw(
            st.text(max_size=20).filter(lambda t: t not in FRAMES) | wrong_value("ref")
        )
        if draw(st.booleans()):
            del frame["type"]
    elif how == "id":
        frame["id"] = draw(st.text(min_size=65, max_size=100) | wrong_value("ref"))
    elif how == "missing":
        del frame[draw(st.sampled_from(_fields(tag, required=True)))]
    else:
        name = draw(st.sampled_from(_fields(tag)))
        kind = FRAMES[tag][name].kind
        bad = out_of_range(kind) if how == "out_of_range" else None
        frame[name] = draw(bad if bad is not None else wrong_value(kind))
        how = f"{how}:{name}"
    return Broken(frame, how)


# ---- encoding, and breakage spliced into the bytes ---------------------------------------


def encode(frame: Any, subprotocol: str) -> bytes:
    if subprotocol == MSGPACK:
        return msgspec.msgpack.encode(frame)
    return json.dumps(frame, ensure_ascii=False).encode()


def _marker_bytes(subprotocol: str) -> bytes:
    return encode(MARKER, subprotocol)


def splice(frame: Frame, field: str, subprotocol: str, raw: bytes) -> bytes:
    """`frame` encoded with the value of `field` replaced by the encoded bytes `raw`."""
    encoded = encode({**frame, field: MARKER}, subprotocol)
    marker = _marker_bytes(subprotocol)
    assert encoded.count(marker) == 1
    return encoded.replace(marker, raw)


def deep_value(depth: int, subprotocol: str, kind: str = "list") -> bytes:
    """A value nested `depth` levels deep, as encoded bytes."""
    if subprotocol == MSGPACK:
        opener = b"\x91" if kind == "list" else b"\x81\xa1k"
        return opener * depth + b"\xc0"
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"k":' * depth + b"null" + b"}" * depth


def non_utf8_string(subprotocol: str, junk: bytes) -> bytes:
    """A string whose bytes are not UTF-8, as encoded bytes."""
    if subprotocol == MSGPACK:
        assert len(junk) < 32
        return bytes([0xA0 | len(junk)]) + junk
    return b'"' + junk + b'"'


def huge_integer(subprotocol: str, digits: int) -> bytes:
    """An integer literal far past 64 bits (JSON), or the largest MessagePack uint64."""
    if subprotocol == MSGPACK:
        return b"\xcf" + b"\xff" * 8
    return b"9" * digits


invalid_utf8 = st.sampled_from(
    [
        b"\xff",
        b"\xc3\x28",
        b"\xa0\xa1",
        b"\xe2\x28\xa1",
        b"\xf0\x28\x8c\xbc",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
    ]
)


def mutate_bytes(data: bytes, draw: st.DrawFn) -> bytes:
    """Byte-level damage: flips, cuts, insertions and duplications."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "truncate"]))
        if not buf:
            buf.extend(draw(st.binary(min_size=1, max_size=4)))
            continue
        at = draw(st.integers(min_value=0, max_value=len(buf) - 1))
        if op == "flip":
            buf[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "cut":
            del buf[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            buf[at:at] = buf[at : at + draw(st.integers(min_value=1, max_value=16))]
        else:
            del buf[at:]
    return bytes(buf)


@st.composite
def damaged_bytes(draw: st.DrawFn, world: World = NO_WORLD, subprotocol: str = JSON) -> bytes:
    """Any kind of bad input as bytes: a mutated valid frame, random bytes, deep nesting,
    invalid UTF-8 in a string, or an integer past 64 bits."""
    frame = draw(valid_frames(world))
    how = draw(st.sampled_from(["mutate", "random", "deep", "utf8", "huge_int", "huge_str"]))
    if how == "mutate":
        return mutate_bytes(encode(frame, subprotocol), draw)
    if how == "random":
        return draw(st.binary(max_size=600))
    field = draw(st.sampled_from([*FRAMES[frame["type"]], "id", "extra"]))
    if how == "deep":
        depth = draw(st.sampled_from([64, 500, 5_000, 50_000]))
        kind = draw(st.sampled_from(["list", "map"]))
        return splice(frame, field, subprotocol, deep_value(depth, subprotocol, kind))
    if how == "utf8":
        junk = draw(st.binary(max_size=6)) + draw(invalid_utf8)
        return splice(frame, field, subprotocol, non_utf8_string(subprotocol, junk))
    if how == "huge_int":
        digits = draw(st.sampled_from([20, 40, 400, 4_300]))
        return splice(frame, field, subprotocol, huge_integer(subprotocol, digits))
    size = draw(st.sampled_from([20_000, 70_000, 200_000]))
    return splice(frame, field, subprotocol, encode("ъ" * size, subprotocol))


def encoder_for(subprotocol: str) -> Callable[[Any], bytes]:
    return lambda frame: encode(frame, subprotocol)
