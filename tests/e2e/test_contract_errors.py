"""Bad input over real sockets (docs/protocol.md sections 1, 3, 7, 9): every malformed, mistyped or
out-of-range frame gets `bad_frame`, echoes a valid request `id`, keeps the connection open
and writes nothing; both subprotocols; the contacts filter."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import websockets

from tests.e2e.harness import (
    Client,
    ServerProcess,
    connect,
    module_server,
    next_reply,
    open_claim,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)

ERROR_KEYS = {"type", "id", "code", "message", "details"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "errors") as process:
        yield process


@dataclass
class Pair:
    """A buyer socket read step by step (`read=False`), a reading shop socket, and their chat
    with one message in it."""

    buyer: Client
    shop: Client
    chat: str
    seq: int


@contextlib.asynccontextmanager
async def pair_of(srv: ServerProcess, binary: bool) -> AsyncIterator[Pair]:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer_id, "Покупатель")
    shop_token = token("seller", uid("op"), "Оператор", seller=shop_id)
    async with (
        connect(srv, buyer_token, binary=binary, read=False) as buyer,
        connect(srv, shop_token, binary=binary) as shop,
    ):
        await buyer.send_raw(buyer.encode({"type": "open", "seller": shop_id, "id": "o"}))
        opened = await next_reply(buyer)
        assert opened["type"] == "ack", opened
        chat = opened["chat"]
        await buyer.send_raw(buyer.encode({"type": "send", "chat": chat, "text": "Добрый день"}))
        sent = await next_reply(buyer)
        assert sent["type"] == "ack" and sent["seq"] == 2, sent
        events = await shop.wait_events(2)
        assert [e["seq"] for e in events] == [1, 2]
        shop.events.clear()
        while not shop.frames.empty():
            shop.frames.get_nowait()
        yield Pair(buyer, shop, chat, 2)


@pytest.fixture(params=[False, True], ids=["json", "msgpack"])
async def pair(srv: ServerProcess, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    async with pair_of(srv, request.param) as made:
        yield made


async def ask(client: Client, frame: dict[str, Any] | str | bytes) -> dict[str, Any]:
    await client.send_raw(frame if isinstance(frame, str | bytes) else client.encode(frame))
    return await next_reply(client)


def assert_bad_frame(reply: dict[str, Any], rid: str | None, *, check_id: bool = True) -> None:
    assert reply["type"] == "error", reply
    assert reply["code"] == "bad_frame", reply
    assert isinstance(reply["message"], str) and reply["message"], reply
    assert set(reply) <= ERROR_KEYS, reply
    if not check_id:
        return
    if rid is None:
        assert "id" not in reply, reply
    else:
        assert reply.get("id") == rid, reply


async def assert_alive_and_unwritten(pair: Pair) -> None:
    """The socket still answers; the chat's log did not grow; the shop got nothing."""
    pong = await ask(pair.buyer, {"type": "ping", "id": "alive"})
    assert pong == {"type": "pong", "id": "alive"}
    page = await ask(pair.buyer, {"type": "history", "chat": pair.chat, "id": "h"})
    assert page["type"] == "history", page
    assert [e["seq"] for e in page["events"]] == list(range(1, pair.seq + 1))
    # The next message takes the next seq, and it is the first thing the shop hears.
    sent = await ask(pair.buyer, {"type": "send", "chat": pair.chat, "text": "Ещё вопрос"})
    assert sent["type"] == "ack" and sent["seq"] == pair.seq + 1, sent
    event = await pair.shop.next_frame()
    assert event["type"] == "event" and event["seq"] == pair.seq + 1, event
    assert event["text"] == "Ещё вопрос"


# Frames that decode but break the frame schema: (name, build(chat, rid), id to echo).
Build = Callable[[str, str], dict[str, Any]]
SCHEMA_CASES: list[tuple[str, Build, bool]] = [
    ("empty_object", lambda chat, rid: {}, False),
    ("no_type", lambda chat, rid: {"id": rid, "chat": chat, "text": "привет"}, True),
    ("type_not_string", lambda chat, rid: {"type": 7, "id": rid}, True),
    ("unknown_type", lambda chat, rid: {"type": "shout", "id": rid}, True),
    ("send_without_chat", lambda chat, rid: {"type": "send", "id": rid, "text": "привет"}, True),
    ("read_without_seq", lambda chat, rid: {"type": "read", "id": rid, "chat": chat}, True),
    ("history_without_chat", lambda chat, rid: {"type": "history", "id": rid}, True),
    ("open_without_seller", lambda chat, rid: {"type": "open", "id": rid}, True),
    ("search_without_q", lambda chat, rid: {"type": "search", "id": rid, "chat": chat}, True),
    (
        "approve_without_amount",
        lambda chat, rid: {"type": "return.approve", "id": rid, "claim": "r1", "mode": "pvz"},
        True,
    ),
    (
        "send_text_not_string",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": 5},
        True,
    ),
    (
        "send_chat_not_string",
        lambda chat, rid: {"type": "send", "id": rid, "chat": 123, "text": "привет"},
        True,
    ),
    (
        "send_attachments_not_list",
        lambda chat, rid: {
            "type": "send",
            "id": rid,
            "chat": chat,
            "text": "фото",
            "attachments": "f1",
        },
        True,
    ),
    (
        "read_seq_string",
        lambda chat, rid: {"type": "read", "id": rid, "chat": chat, "seq": "2"},
        True,
    ),
    (
        "read_seq_fraction",
        lambda chat, rid: {"type": "read", "id": rid, "chat": chat, "seq": 1.5},
        True,
    ),
    (
        "history_limit_string",
        lambda chat, rid: {"type": "history", "id": rid, "chat": chat, "limit": "10"},
        True,
    ),
    (
        "approve_amount_not_money",
        lambda chat, rid: {
            "type": "return.approve",
            "id": rid,
            "claim": "r1",
            "mode": "pvz",
            "amount": 118600,
        },
        True,
    ),
    (
        "approve_unknown_mode",
        lambda chat, rid: {
            "type": "return.approve",
            "id": rid,
            "claim": "r1",
            "mode": "cash",
            "amount": {"value": 118600, "currency": "RUB"},
        },
        True,
    ),
    (
        "resolve_unknown_decision",
        lambda chat, rid: {"type": "return.resolve", "id": rid, "claim": "r1", "decision": "maybe"},
        True,
    ),
    (
        "history_limit_0",
        lambda chat, rid: {"type": "history", "id": rid, "chat": chat, "limit": 0},
        True,
    ),
    (
        "history_limit_101",
        lambda chat, rid: {"type": "history", "id": rid, "chat": chat, "limit": 101},
        True,
    ),
    (
        "chats_limit_0",
        lambda chat, rid: {"type": "chats", "id": rid, "limit": 0},
        True,
    ),
    (
        "chats_limit_101",
        lambda chat, rid: {"type": "chats", "id": rid, "limit": 101},
        True,
    ),
    (
        "read_negative_seq",
        lambda chat, rid: {"type": "read", "id": rid, "chat": chat, "seq": -1},
        True,
    ),
    ("id_65_chars", lambda chat, rid: {"type": "ping", "id": "i" * 65}, False),
    ("id_not_string", lambda chat, rid: {"type": "ping", "id": 17}, False),
    (
        "nonce_65_chars",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": "x", "nonce": "n" * 65},
        True,
    ),
    (
        "nonce_not_string",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": "x", "nonce": 5},
        True,
    ),
    (
        "text_empty",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": ""},
        True,
    ),
    (
        "text_missing_no_attachments",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat},
        True,
    ),
    (
        "text_whitespace_only",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": "  \n\t \u00a0 "},
        True,
    ),
    (
        "text_1001_chars",
        lambda chat, rid: {"type": "send", "id": rid, "chat": chat, "text": "я" * 1001},
        True,
    ),
    (
        "text_1001_chars_inside_spaces",
        lambda chat, rid: {
            "type": "send",
            "id": rid,
            "chat": chat,
            "text": "  " + "я" * 1001 + " ",
        },
        True,
    ),
]


@pytest.mark.parametrize(("build", "echo"), [(b, e) for _, b, e in SCHEMA_CASES],
                         ids=[name for name, _, _ in SCHEMA_CASES])  # fmt: skip
async def test_bad_frame(pair: Pair, build: Build, echo: bool) -> None:
    rid = uid("req")
    reply = await ask(pair.buyer, build(pair.chat, rid))
    assert_bad_frame(reply, rid if echo else None)
    await assert_alive_and_unwritten(pair)


# Frames that do not decode at all, per subprotocol.
JSON_GARBAGE: dict[str, str] = {
    "truncated_json": '{"type": "send", "chat": "c1", "text": "hi"',
    "not_json": "hello there",
    "array": '[{"type": "ping"}]',
    "string": '"ping"',
    "number": "42",
    "null": "null",
    "trailing_garbage": '{"type": "ping"} {"type": "ping"}',
}
MSGPACK_GARBAGE: dict[str, bytes] = {
    "reserved_byte": b"\xc1",
    "truncated_map": b"\x82\xa4type\xa4ping\xa2id",
    "array": msgspec.msgpack.encode([{"type": "ping"}]),
    "string": msgspec.msgpack.encode("ping"),
    "number": msgspec.msgpack.encode(42),
    "nil": msgspec.msgpack.encode(None),
    "empty": b"",
}


@pytest.mark.parametrize("payload", JSON_GARBAGE.values(), ids=JSON_GARBAGE.keys())
async def test_undecodable_json_frame(srv: ServerProcess, payload: str) -> None:
    await _undecodable(srv, payload, binary=False)


@pytest.mark.parametrize("payload", MSGPACK_GARBAGE.values(), ids=MSGPACK_GARBAGE.keys())
async def test_undecodable_msgpack_frame(srv: ServerProcess, payload: bytes) -> None:
    await _undecodable(srv, payload, binary=True)


async def _undecodable(srv: ServerProcess, payload: str | bytes, *, binary: bool) -> None:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    async with (
        connect(srv, token("buyer", buyer_id), binary=binary, read=False) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop_id), binary=binary) as shop,
    ):
        opened = await ask(buyer, {"type": "open", "seller": shop_id, "id": "o"})
        assert opened["type"] == "ack", opened
        await shop.wait_events(1)
        shop.frames.get_nowait()
        reply = await ask(buyer, payload)
        assert_bad_frame(reply, None, check_id=False)
        await assert_alive_and_unwritten(Pair(buyer, shop, opened["chat"], 1))


async def test_msgpack_bin_where_str_belongs_is_bad_frame(srv: ServerProcess) -> None:
    async with pair_of(srv, True) as pair:
        frame = {"type": "send", "id": "b1", "chat": pair.chat, "text": b"hi"}
        assert_bad_frame(await ask(pair.buyer, msgspec.msgpack.encode(frame)), "b1")
        await assert_alive_and_unwritten(pair)


async def test_several_bad_frames_in_a_row_keep_the_socket(pair: Pair) -> None:
    for n in range(10):
        reply = await ask(pair.buyer, {"type": "nonsense", "id": f"n{n}"})
        assert_bad_frame(reply, f"n{n}")
    await assert_alive_and_unwritten(pair)


async def test_unknown_fields_are_ignored(pair: Pair) -> None:
    reply = await ask(pair.buyer, {"type": "ping", "id": "u", "colour": "green", "x": [1, 2]})
    assert reply == {"type": "pong", "id": "u"}
    sent = await ask(
        pair.buyer, {"type": "send", "id": "s", "chat": pair.chat, "text": "ок", "extra": {}}
    )
    assert sent["type"] == "ack" and sent["seq"] == pair.seq + 1 and sent["id"] == "s", sent


async def test_id_of_64_chars_is_echoed(pair: Pair) -> None:
    rid = "i" * 64
    assert await ask(pair.buyer, {"type": "ping", "id": rid}) == {"type": "pong", "id": rid}
    reply = await ask(pair.buyer, {"type": "shout", "id": rid})
    assert_bad_frame(reply, rid)


async def test_request_without_id_gets_answers_without_id(pair: Pair) -> None:
    assert await ask(pair.buyer, {"type": "ping"}) == {"type": "pong"}
    reply = await ask(pair.buyer, {"type": "shout"})
    assert_bad_frame(reply, None)
    sent = await ask(pair.buyer, {"type": "send", "chat": pair.chat, "text": "без id"})
    assert sent["type"] == "ack" and "id" not in sent, sent


# ---- the length of a message ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "я" * 1000,
        "  \n" + "я" * 1000 + "\t ",
        "a",
        "  a  ",
    ],
    ids=["1000", "1000_inside_spaces", "1", "1_inside_spaces"],
)
async def test_text_length_counts_after_trimming(pair: Pair, text: str) -> None:
    sent = await ask(pair.buyer, {"type": "send", "id": "t", "chat": pair.chat, "text": text})
    assert sent["type"] == "ack" and sent["seq"] == pair.seq + 1, sent
    event = await pair.shop.next_frame()
    assert event["type"] == "event" and event["kind"] == "message", event
    assert event["seq"] == pair.seq + 1
    assert len(event["text"]) == len(text.strip())


async def test_nonce_of_64_chars_is_accepted(pair: Pair) -> None:
    frame = {"type": "send", "chat": pair.chat, "text": "раз", "nonce": "n" * 64}
    first = await ask(pair.buyer, {**frame, "id": "1"})
    again = await ask(pair.buyer, {**frame, "id": "2"})
    assert first["type"] == again["type"] == "ack", (first, again)
    assert first["seq"] == again["seq"] == pair.seq + 1
    assert again["id"] == "2"


# ---- return.resolve approve without mode ---------------------------------------------------


async def test_resolve_approve_without_mode_is_bad_frame(srv: ServerProcess) -> None:
    buyer_id, shop_id, order_id = uid("buyer"), uid("shop"), uid("order")
    async with (
        connect(srv, token("buyer", buyer_id)) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop_id)) as shop,
    ):
        chat, claim = await open_claim(srv, buyer, buyer_id, shop_id, order_id)
        rejected = await shop.request({"type": "return.reject", "claim": claim})
        assert rejected["type"] == "ack", rejected
        disputed = await buyer.request({"type": "return.dispute", "claim": claim})
        assert disputed["type"] == "ack", disputed
        async with connect(srv, token("manager", uid("mgr"), "Менеджер")) as manager:
            before = await manager.request({"type": "history", "chat": chat})
            assert before["type"] == "history", before
            seqs = [e["seq"] for e in before["events"]]
            rid = uid("req")
            for frame in (
                {"type": "return.resolve", "claim": claim, "decision": "approve"},
                {"type": "return.resolve", "claim": claim, "decision": "approve", "mode": None},
            ):
                await manager.ws.send(json.dumps({**frame, "id": rid}))
                reply = await manager.next_frame("error")
                assert_bad_frame(reply, rid)
            pong = await manager.request({"type": "ping"})
            assert pong["type"] == "pong", pong
            after = await manager.request({"type": "history", "chat": chat})
            assert [e["seq"] for e in after["events"]] == seqs
            assert [e["kind"] for e in after["events"]][-1] == "return.disputed"
            # The claim is still disputed: a decision with a mode goes through.
            done = await manager.request(
                {"type": "return.resolve", "claim": claim, "decision": "approve", "mode": "pvz"}
            )
            assert done["type"] == "ack" and done["seq"] == seqs[-1] + 1, done


# ---- subprotocols --------------------------------------------------------------------------


async def test_no_subprotocol_gets_json_text_frames(srv: ServerProcess) -> None:
    async with websockets.connect(srv.url) as ws:
        assert ws.subprotocol is None
        await ws.send(json.dumps({"type": "hello", "token": token("buyer", uid("buyer"))}))
        welcome = await ws.recv()
        assert isinstance(welcome, str)
        assert json.loads(welcome)["type"] == "welcome"
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        pong = await ws.recv()
        assert isinstance(pong, str) and json.loads(pong) == {"type": "pong", "id": "p"}
        await ws.send("{not json")
        error = await ws.recv()
        assert isinstance(error, str) and json.loads(error)["code"] == "bad_frame"


@pytest.mark.parametrize(
    ("offered", "chosen", "binary"),
    [
        (["chatd.v1.json"], "chatd.v1.json", False),
        (["chatd.v1.msgpack"], "chatd.v1.msgpack", True),
    ],
    ids=["json", "msgpack"],
)
async def test_subprotocol_frames(
    srv: ServerProcess, offered: list[Any], chosen: str, binary: bool
) -> None:
    async with websockets.connect(srv.url, subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        hello = {"type": "hello", "token": token("buyer", uid("buyer"))}
        await ws.send(msgspec.msgpack.encode(hello) if binary else json.dumps(hello))
        welcome = await ws.recv()
        assert isinstance(welcome, bytes if binary else str)
        decoded = msgspec.msgpack.decode(welcome) if binary else json.loads(welcome)
        assert decoded["type"] == "welcome", decoded
        ping = {"type": "ping", "id": "p"}
        await ws.send(msgspec.msgpack.encode(ping) if binary else json.dumps(ping))
        pong = await ws.recv()
        assert isinstance(pong, bytes if binary else str)
        assert (msgspec.msgpack.decode(pong) if binary else json.loads(pong)) == {
            "type": "pong",
            "id": "p",
        }


# ---- contacts ------------------------------------------------------------------------------

CONTACTS: list[tuple[str, list[str]]] = [
    ("Позвоните мне: +7 912 345-67-89, спасибо", ["+7 912 345-67-89"]),
    ("Мой номер 8 (912) 345 67 89 звоните", ["8 (912) 345 67 89"]),
    ("пишите 9123456789 вечером", ["9123456789"]),
    ("звоните 8/912/345_67_89", ["8/912/345_67_89"]),
    ("почта ivan.petrov@example.com жду ответа", ["ivan.petrov@example.com"]),
    ("Подробнее тут t.me/ivan_shop_2024 ок?", ["t.me/ivan_shop_2024"]),
    ("Ссылка https://t.me/ivanshop ок?", ["https://t.me/ivanshop"]),
    (
        "   Телефон +7 912 345-67-89 или ivan@example.com",
        ["+7 912 345-67-89", "ivan@example.com"],
    ),
]


@pytest.mark.parametrize(("text", "found"), CONTACTS, ids=[f"c{i}" for i in range(len(CONTACTS))])
async def test_contacts_are_refused_with_spans(pair: Pair, text: str, found: list[str]) -> None:
    rid = uid("req")
    reply = await ask(pair.buyer, {"type": "send", "id": rid, "chat": pair.chat, "text": text})
    assert reply["type"] == "error" and reply["code"] == "contacts_forbidden", reply
    assert reply["id"] == rid
    assert set(reply) <= ERROR_KEYS
    spans = reply["details"]["spans"]
    assert isinstance(spans, list) and spans, reply
    assert all(isinstance(s, list) and len(s) == 2 for s in spans), spans
    assert [text[start:end] for start, end in spans] == found
    await assert_alive_and_unwritten(pair)


@pytest.mark.parametrize(
    "text",
    [
        "Здравствуйте, артикул 140158860, размер S не подошёл",
        "артикул 140158860",
        "Артикул: 9123456789",
        "номер заказа 89123456789",
        "номер заказа 8912345678901",
        "трек 9123456789",
    ],
)
async def test_article_numbers_pass(pair: Pair, text: str) -> None:
    sent = await ask(pair.buyer, {"type": "send", "id": "a", "chat": pair.chat, "text": text})
    assert sent["type"] == "ack" and sent["seq"] == pair.seq + 1, sent
    event = await pair.shop.next_frame()
    assert event["text"] == text


async def test_shop_contacts_are_refused_too(srv: ServerProcess) -> None:
    buyer_id, shop_id = uid("buyer"), uid("shop")
    async with (
        connect(srv, token("buyer", buyer_id)) as buyer,
        connect(srv, token("seller", uid("op"), seller=shop_id)) as shop,
    ):
        chat = (await buyer.request({"type": "open", "seller": shop_id}))["chat"]
        text = "Напишите нам на shop@example.com"
        reply = await shop.request({"type": "send", "chat": chat, "text": text})
        assert reply["type"] == "error" and reply["code"] == "contacts_forbidden", reply
        assert [text[s:e] for s, e in reply["details"]["spans"]] == ["shop@example.com"]
        page = await buyer.request({"type": "history", "chat": chat})
        assert [e["kind"] for e in page["events"]] == ["chat.opened"]
