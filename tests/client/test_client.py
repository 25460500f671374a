"""The SDK against a real server: typed requests and replies, events, refusals, read marks,
nonces and the rate limit, over both subprotocols."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chatd.client import ChatClient, ChatError, connect, event_data, mint
from chatd.client.http import HttpApi
from protocol import frames as f
from protocol.codes import ErrorCode
from protocol.events import ChatOpened, MessagePosted, Money, OrderCard, Party
from tests.client.conftest import serve
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(60)
SUBPROTOCOLS = ["chatd.v1.json", "chatd.v1.msgpack"]


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def uid(prefix: str) -> str:
    # Letters only: a run of random digits in a message text can read as a phone number,
    # and the contacts filter then refuses the message.
    return f"{prefix}-{uuid.uuid4().hex[:8].translate(_NO_DIGITS)}"


def buyer_token(buyer: str) -> str:
    return mint(SECRET, role="buyer", sub=buyer, name=buyer.title())


def shop_token(shop: str, operator: str = "op") -> str:
    return mint(SECRET, role="seller", sub=f"{operator}-{shop}", name="Анна", seller=shop)


async def take_events(
    client: ChatClient, count: int, chat: str | None = None
) -> list[f.EventFrame]:
    got: list[f.EventFrame] = []
    async with asyncio.timeout(20):
        async for event in client.events():
            if chat is None or event.chat == chat:
                got.append(event)
            if len(got) == count:
                return got
    raise AssertionError(f"the events ended after {len(got)} of {count}")


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_typed_requests_and_replies(shared_server: ServerProcess, subprotocol: str) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(shared_server.url, buyer_token(buyer), subprotocol=subprotocol) as chat:  # type: ignore[arg-type]
        assert chat.subprotocol == subprotocol
        assert chat.welcome is not None and chat.user.id == buyer and chat.user.role == "buyer"

        opened = await chat.open(shop)
        assert isinstance(opened, f.Ack) and opened.seq == 1
        again = await chat.open(shop)
        assert (again.chat, again.seq) == (opened.chat, 1)

        sent = await chat.send(opened.chat, "Здравствуйте! Есть размер S?")
        assert isinstance(sent, f.Ack) and (sent.chat, sent.seq) == (opened.chat, 2)

        history = await chat.history(opened.chat)
        assert isinstance(history, f.HistoryPage) and history.more is False
        assert [(e.seq, e.kind) for e in history.events] == [(1, "chat.opened"), (2, "message")]
        assert history.events[1].text == "Здравствуйте! Есть размер S?"
        assert isinstance(event_data(history.events[0]), ChatOpened)
        assert isinstance(event_data(history.events[1]), MessagePosted)

        older = await chat.history(opened.chat, before=2, limit=1)
        assert [e.seq for e in older.events] == [1]

        chats = await chat.chats()
        assert isinstance(chats, f.ChatsPage)
        assert [c.chat for c in chats.chats] == [opened.chat]
        assert chats.chats[0].seller.id == shop

        found = await chat.search("размер")
        assert isinstance(found, f.Results)
        assert [(e.chat, e.seq) for e in found.events] == [(opened.chat, 2)]

        files = await chat.attachments(opened.chat)
        assert isinstance(files, f.AttachmentsPage) and files.photos == [] and files.files == []

        assert isinstance(await chat.ping(), f.Pong)
        # Typed frames in, typed frames out.
        reply = await chat.request(f.History(chat=opened.chat, limit=1))
        assert isinstance(reply, f.HistoryPage) and [e.seq for e in reply.events] == [2]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_events_arrive_once_and_in_order(
    shared_server: ServerProcess, subprotocol: str
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with (
        connect(shared_server.url, shop_token(shop), subprotocol=subprotocol) as operator,  # type: ignore[arg-type]
        connect(shared_server.url, buyer_token(buyer)) as customer,
    ):
        chat = (await customer.open(shop)).chat
        for i in range(20):
            await customer.send(chat, f"сообщение {i}")
        events = await take_events(operator, 21)
        assert [(e.chat, e.seq) for e in events] == [(chat, seq) for seq in range(1, 22)]
        assert [e.text for e in events[1:]] == [f"сообщение {i}" for i in range(20)]
        assert events[1].author.role == "buyer" and events[1].author.id == buyer
        assert operator.cursor == events[-1].cursor
        # The writer's own connection gets its events too.
        mine = await take_events(customer, 21)
        assert [e.seq for e in mine] == list(range(1, 22))


async def test_frames_expose_welcome_and_read_marks(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with (
        connect(shared_server.url, shop_token(shop)) as operator,
        connect(shared_server.url, buyer_token(buyer)) as customer,
    ):
        chat = (await customer.open(shop)).chat
        answer = await operator.send(chat, "Здравствуйте!")
        await customer.read(chat, answer.seq, confirm=True)
        seen: list[f.Welcome | f.EventFrame | f.Synced | f.ReadMark | f.Error] = []
        async with asyncio.timeout(10):
            async for frame in operator.frames():
                seen.append(frame)
                if isinstance(frame, f.ReadMark):
                    break
        assert isinstance(seen[0], f.Welcome)
        assert [type(x).__name__ for x in seen[1:]] == ["EventFrame", "EventFrame", "ReadMark"]
        mark = seen[-1]
        assert isinstance(mark, f.ReadMark)
        assert (mark.chat, mark.side, mark.seq) == (chat, "buyer", answer.seq)


async def test_refusals_raise_typed_errors(shared_server: ServerProcess) -> None:
    buyer, shop, order = uid("buyer"), uid("shop"), uid("order")
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    card = OrderCard(
        non_returnable=False,
        id=order,
        buyer=Party(id=buyer, name="Тимур"),
        seller=Party(id=shop, name="ИП Кунченко С.А."),
        article="140158860",
        name="Юбка короткая плиссе со складками",
        brand="SK - Line",
        price=Money(value=118600, currency="RUB"),
        purchased_at=received - timedelta(days=7),
        received_at=received,
    )
    system = mint(SECRET, role="system", sub="marketplace", name="Wildberries")
    async with HttpApi(shared_server.http, system) as api:
        assert (await api.register_order(card)).id == order
    async with connect(shared_server.url, buyer_token(buyer)) as chat:
        opened = await chat.open(shop, order)
        with pytest.raises(ChatError) as early:
            await chat.request_return(opened.chat, order)
        assert early.value.code == ErrorCode.RETURN_TOO_EARLY
        opens_at = datetime.fromisoformat(early.value.details["opens_at"])
        # Midnight in Moscow (UTC+3 all year) of the 14th calendar day after the purchase.
        moscow = timezone(timedelta(hours=3))
        opens_on = card.purchased_at.astimezone(moscow).date() + timedelta(days=14)
        assert opens_at == datetime(opens_on.year, opens_on.month, opens_on.day, tzinfo=moscow)

        with pytest.raises(ChatError) as contacts:
            await chat.send(opened.chat, "пишите на anna@example.com")
        assert contacts.value.code == ErrorCode.CONTACTS_FORBIDDEN
        assert contacts.value.details["spans"] == [[10, 26]]

        with pytest.raises(ChatError) as missing:
            await chat.history("no-such-chat")
        assert missing.value.code == ErrorCode.NOT_FOUND

        with pytest.raises(ChatError) as forbidden:
            await chat.reject_return("no-such-claim")
        assert forbidden.value.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND)

        with pytest.raises(ChatError) as unread:
            await chat.read("no-such-chat", 1, confirm=True)
        assert unread.value.code == ErrorCode.NOT_FOUND
        # The connection is still there after refusals.
        assert isinstance(await chat.ping(), f.Pong)


async def test_a_repeated_nonce_never_doubles_a_message(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(shared_server.url, buyer_token(buyer)) as chat:
        room = (await chat.open(shop)).chat
        first = await chat.send(room, "один раз", nonce="fixed-nonce")
        again = await chat.send(room, "один раз", nonce="fixed-nonce")
        assert (again.chat, again.seq) == (first.chat, first.seq)
        other = await chat.send(room, "один раз")
        assert other.seq == first.seq + 1
        history = await chat.history(room)
        assert [e.text for e in history.events[1:]] == ["один раз", "один раз"]


async def test_rate_limited_requests_are_waited_out(tmp_path: Path) -> None:
    server = serve(tmp_path / "chatd.db", "--rate", "20", "--burst", "5")
    try:
        buyer, shop = uid("buyer"), uid("shop")
        async with connect(server.url, buyer_token(buyer)) as chat:
            room = (await chat.open(shop)).chat
            started = time.monotonic()
            acks = await asyncio.gather(*(chat.send(room, f"m{i}") for i in range(30)))
            took = time.monotonic() - started
            assert sorted(a.seq for a in acks) == list(range(2, 32))
            # 30 frames at 20 a second after a burst of 5 cannot take much less than a second.
            assert took > 0.8
            pongs = await asyncio.gather(*(chat.ping() for _ in range(15)))
            assert len(pongs) == 15
            history = await chat.history(room, limit=100)
            assert len(history.events) == 31
    finally:
        server.stop()


async def test_an_uploaded_photo_travels_as_an_attachment(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    async with HttpApi(shared_server.http, buyer_token(buyer)) as api:
        uploaded = await api.upload("defect.png", photo, "image/png")
        with pytest.raises(ChatError) as refused:
            await api.upload("notes.txt", b"plain text", "text/plain")
        assert refused.value.status is not None and refused.value.status >= 400
    assert uploaded.mime == "image/png" and uploaded.size == len(photo)
    async with connect(shared_server.url, buyer_token(buyer)) as chat:
        room = (await chat.open(shop)).chat
        sent = await chat.send(room, "", attachments=[uploaded.id])
        page = await chat.attachments(room)
        assert [(p.id, p.seq) for p in page.photos] == [(uploaded.id, sent.seq)]
        history = await chat.history(room)
        data = event_data(history.events[-1])
        assert isinstance(data, MessagePosted) and data.attachments[0].id == uploaded.id
