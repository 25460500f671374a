"""Delivery across drops: server restarts, 1013 closes, expired tokens and unknown cursors,
with nothing lost and nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from chatd.client import ChatClient, CursorLost, Unauthorized, connect, mint
from protocol import frames as f
from tests.client.conftest import UNLIMITED, serve
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(90)


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def uid(prefix: str) -> str:
    # Letters only: a run of random digits in a message text can read as a phone number,
    # and the contacts filter then refuses the message.
    return f"{prefix}-{uuid.uuid4().hex[:8].translate(_NO_DIGITS)}"


def buyer_token(buyer: str, ttl: float = 3600) -> str:
    return mint(SECRET, role="buyer", sub=buyer, name=buyer, ttl=ttl)


def shop_token(shop: str, ttl: float = 3600) -> str:
    return mint(SECRET, role="seller", sub=f"op-{shop}", name="Анна", seller=shop, ttl=ttl)


async def collect(client: ChatClient, chat: str, last_seq: int, timeout: float = 30) -> list[int]:
    """The seqs of `chat` that `client` delivers, until `last_seq` arrives."""
    seqs: list[int] = []
    async with asyncio.timeout(timeout):
        async for event in client.events():
            if event.chat == chat:
                seqs.append(event.seq)
                if event.seq >= last_seq:
                    return seqs
    raise AssertionError(f"the events ended at {seqs[-1:]}")


async def writer(url: str, buyer: str, shop: str, count: int, chat: list[str]) -> int:
    """Sends `count` messages one after another, through whatever happens to the server."""
    async with connect(url, buyer_token(buyer)) as client:
        chat.append((await client.open(shop)).chat)
        last = 1
        for i in range(count):
            last = (await client.send(chat[0], f"{buyer} {i}")).seq
            await asyncio.sleep(0.005)
        return last


async def test_a_server_restart_loses_and_doubles_nothing(own_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(own_server.url, shop_token(shop)) as operator:
        chat: list[str] = []
        writing = asyncio.create_task(writer(own_server.url, buyer, shop, 150, chat))
        while not chat:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        own_server.kill()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(own_server.start)
        last = await asyncio.wait_for(writing, 60)
        assert last == 151, "the writer's sends with nonces were not doubled either"
        seqs = await collect(operator, chat[0], last)
        assert seqs == list(range(1, last + 1))
        assert operator.reconnects >= 1
        history = await operator.history(chat[0], limit=100)
        texts = [e.text for e in history.events]
        assert len(texts) == len(set(texts))


async def test_sends_in_flight_across_a_kill_are_applied_once(own_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(own_server.url, buyer_token(buyer)) as client:
        chat = (await client.open(shop)).chat
        sends = [asyncio.create_task(client.send(chat, f"в полёте {i}")) for i in range(40)]
        await asyncio.sleep(0.02)
        own_server.kill()
        await asyncio.to_thread(own_server.start)
        acks = await asyncio.wait_for(asyncio.gather(*sends), 60)
        assert sorted(a.seq for a in acks) == list(range(2, 42))
        events = (await client.history(chat, limit=100)).events
        texts = Counter(e.text for e in events[1:])
        assert texts == Counter(f"в полёте {i}" for i in range(40))


async def test_a_1013_close_resumes_without_loss(tmp_path: Path) -> None:
    server = serve(tmp_path / "chatd.db", *UNLIMITED, "--queue", "8")
    try:
        buyer, shop = uid("buyer"), uid("shop")
        # A small buffer: while nobody iterates, the client stops reading the socket.
        async with (
            connect(server.url, shop_token(shop), max_buffer=1) as slow,
            connect(server.url, buyer_token(buyer)) as fast,
        ):
            chat = (await fast.open(shop)).chat
            big = "ж" * 900
            last = 1
            while _queue_drops(server) == 0:
                acks = await asyncio.gather(*(fast.send(chat, big) for _ in range(50)))
                last = max(a.seq for a in acks)
                assert last < 20_000, "the slow reader was never dropped"
            seqs = await collect(slow, chat, last, timeout=60)
            assert seqs == list(range(1, last + 1))
            assert slow.reconnects >= 1
            assert any(code in (1013, None) for code in slow.close_codes), slow.close_codes
    finally:
        server.stop()


def _queue_drops(server: ServerProcess) -> float:
    for line in httpx.get(server.http + "/metrics", timeout=5).text.splitlines():
        if line.startswith("chatd_queue_drops_total "):
            return float(line.split()[1])
    raise AssertionError("no chatd_queue_drops_total metric")


async def test_an_expired_token_is_replaced_by_the_provider(shared_server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    issued: list[str] = []

    async def fresh() -> str:
        issued.append(shop)
        return shop_token(shop, ttl=3600)

    async with (
        connect(shared_server.url, shop_token(shop, ttl=2), token_provider=fresh) as operator,
        connect(shared_server.url, buyer_token(buyer)) as customer,
    ):
        chat = (await customer.open(shop)).chat
        await asyncio.sleep(3)  # the token expires: the server closes with 4001
        for i in range(5):
            await customer.send(chat, f"после {i}")
        assert await collect(operator, chat, 6) == [1, 2, 3, 4, 5, 6]
        assert issued, "the token provider was never asked"
        assert 4001 in operator.close_codes
        assert isinstance(await operator.ping(), f.Pong)


async def test_an_expired_token_without_a_provider_ends_the_client(
    shared_server: ServerProcess,
) -> None:
    async with connect(shared_server.url, buyer_token(uid("buyer"), ttl=2)) as client:
        with pytest.raises(Unauthorized):
            async with asyncio.timeout(10):
                async for _ in client.events():
                    pass
        with pytest.raises(Unauthorized):
            await client.ping()


async def test_an_unknown_cursor_is_surfaced_and_live_events_follow(
    shared_server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(shared_server.url, shop_token(shop), since="nope.1") as operator:
        with pytest.raises(CursorLost):
            async with asyncio.timeout(10):
                async for _ in operator.events():
                    pass
        async with connect(shared_server.url, buyer_token(buyer)) as customer:
            chat = (await customer.open(shop)).chat
            await customer.send(chat, "живое")
        assert await collect(operator, chat, 2) == [1, 2]


async def test_a_cursor_from_an_earlier_session_replays_what_was_missed(
    shared_server: ServerProcess,
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(shared_server.url, buyer_token(buyer)) as customer:
        chat = (await customer.open(shop)).chat
        await customer.send(chat, "раз")
        assert await collect(customer, chat, 2) == [1, 2]
        cursor = customer.cursor
    async with connect(shared_server.url, shop_token(shop)) as operator:
        await operator.send(chat, "два")
        await operator.send(chat, "три")
    async with connect(shared_server.url, buyer_token(buyer), since=cursor) as customer:
        frames: list[object] = []
        async with asyncio.timeout(10):
            async for frame in customer.frames():
                frames.append(frame)
                if isinstance(frame, f.Synced):
                    break
        welcome, first, second, synced = frames
        assert isinstance(welcome, f.Welcome) and isinstance(synced, f.Synced)
        assert isinstance(first, f.EventFrame) and isinstance(second, f.EventFrame)
        assert [(e.seq, e.text) for e in (first, second)] == [(3, "два"), (4, "три")]
        assert synced.cursor == second.cursor == customer.cursor
