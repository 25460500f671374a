"""The Hub contract: one test class that every hub backend subclasses unchanged.

A backend's test module subclasses `HubContract` and provides two fixtures: `log`, the open
EventStore that events are appended to before they are published (as the service does), and
`open_hub`, an async callable that starts a hub of that backend on the log. Everything here
goes through the Hub interface and the subscribers' `push`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest

from chatd import cursor
from chatd.hub.base import EventOut, Hub, Outgoing, ReadOut
from chatd.store.base import EventStore, Stored
from protocol.codec import codec_for
from protocol.frames import ReadMark
from tests.store.contract import plain_request

OpenHub = Callable[[], Awaitable[Hub]]
QUIET = 0.3  # seconds in which an item that should not come does not


class Inbox:
    """A subscriber that keeps what it is pushed."""

    def __init__(self) -> None:
        self.items: list[Outgoing] = []

    def push(self, item: Outgoing) -> None:
        self.items.append(item)

    async def wait_for(self, count: int, timeout: float = 5) -> list[Outgoing]:
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.items)} items of {count}: {self.places()}")
            await asyncio.sleep(0.005)
        return self.items

    def places(self) -> list[tuple[str, int]]:
        return [
            (item.stored.event.stream, item.stored.event.seq)
            for item in self.items
            if isinstance(item, EventOut)
        ]

    def positions(self) -> list[int]:
        return [item.pos for item in self.items if item.pos is not None]

    def marks(self) -> list[ReadMark]:
        return [item.frame for item in self.items if isinstance(item, ReadOut)]


class Chats:
    """Appends to streams of the log and publishes the events, as the service does."""

    def __init__(self, log: EventStore) -> None:
        self.log = log
        self.heads: dict[str, int] = {}

    async def write(self, stream: str, keys: tuple[str, ...], count: int = 1) -> list[Stored]:
        """Appends without publishing (as a node that died right after its commit)."""
        head = self.heads.get(stream, 0)
        appended = await self.log.append(plain_request(stream, head, count, keys=keys))
        self.heads[stream] = head + count
        return appended.events

    async def send(
        self, hub: Hub, stream: str, keys: tuple[str, ...], count: int = 1
    ) -> list[Stored]:
        stored = await self.write(stream, keys, count)
        await hub.publish([EventOut(item, self.log.log_id) for item in stored], keys)
        return stored


def read_out(chat: str, seq: int) -> ReadOut:
    return ReadOut(ReadMark(chat=chat, side="buyer", seq=seq))


class HubContract:
    """What every Hub backend must do. Subclasses provide `log` and `open_hub`."""

    @pytest.fixture
    def log(self) -> EventStore:
        raise NotImplementedError("a backend's test class provides `log`")

    @pytest.fixture
    def open_hub(self, log: EventStore) -> OpenHub:
        raise NotImplementedError("a backend's test class provides `open_hub`")

    @pytest.fixture
    async def hub(self, open_hub: OpenHub) -> AsyncIterator[Hub]:
        hub = await open_hub()
        yield hub
        await hub.stop()

    @pytest.fixture
    def chats(self, log: EventStore) -> Chats:
        return Chats(log)

    async def test_a_subscriber_gets_what_is_published_to_its_key_in_order(
        self, hub: Hub, chats: Chats
    ) -> None:
        inbox = Inbox()
        hub.subscribe(["b:u1"], inbox)

        first = await chats.send(hub, "c1", ("b:u1", "s:s1"), 2)
        second = await chats.send(hub, "c2", ("b:u1", "s:s2"))
        third = await chats.send(hub, "c1", ("b:u1", "s:s1"))

        await inbox.wait_for(4)
        assert inbox.places() == [("c1", 1), ("c1", 2), ("c2", 1), ("c1", 3)]
        assert inbox.positions() == [s.pos for s in (*first, *second, *third)]

    async def test_nothing_reaches_a_subscriber_of_other_keys(self, hub: Hub, chats: Chats) -> None:
        buyer, other_buyer, shop, managers = Inbox(), Inbox(), Inbox(), Inbox()
        hub.subscribe(["b:u1"], buyer)
        hub.subscribe(["b:u2"], other_buyer)
        hub.subscribe(["s:s1"], shop)
        hub.subscribe(["m"], managers)

        await chats.send(hub, "c1", ("b:u1", "s:s1"))
        await chats.send(hub, "c2", ("b:u2", "s:s2"))

        await shop.wait_for(1)
        await other_buyer.wait_for(1)
        await asyncio.sleep(QUIET)
        assert buyer.places() == [("c1", 1)]
        assert other_buyer.places() == [("c2", 1)]
        assert shop.places() == [("c1", 1)]
        assert managers.items == []

    async def test_a_subscriber_of_several_keys_gets_each_item_once(
        self, hub: Hub, chats: Chats
    ) -> None:
        operator = Inbox()
        hub.subscribe(["s:s1", "m"], operator)
        two_tabs = [Inbox(), Inbox()]
        for tab in two_tabs:
            hub.subscribe(["b:u1"], tab)

        await chats.send(hub, "c1", ("b:u1", "s:s1", "m"), 2)
        await hub.publish([read_out("c1", 2)], ("b:u1", "s:s1"))

        await operator.wait_for(3)
        for tab in two_tabs:
            await tab.wait_for(3)
        await asyncio.sleep(QUIET)
        assert operator.places() == [("c1", 1), ("c1", 2)]
        assert len(operator.items) == 3
        assert all(tab.places() == [("c1", 1), ("c1", 2)] for tab in two_tabs)

    async def test_unsubscribing_stops_delivery_to_that_subscriber_only(
        self, hub: Hub, chats: Chats
    ) -> None:
        leaving, staying = Inbox(), Inbox()
        hub.subscribe(["b:u1"], leaving)
        hub.subscribe(["b:u1"], staying)
        await chats.send(hub, "c1", ("b:u1",))
        await leaving.wait_for(1)

        hub.unsubscribe(["b:u1"], leaving)
        await chats.send(hub, "c1", ("b:u1",))

        await staying.wait_for(2)
        await asyncio.sleep(QUIET)
        assert leaving.places() == [("c1", 1)]
        assert staying.places() == [("c1", 1), ("c1", 2)]

    async def test_a_subscriber_gets_only_what_comes_after_it_subscribed(
        self, hub: Hub, chats: Chats
    ) -> None:
        early, late = Inbox(), Inbox()
        hub.subscribe(["b:u1"], early)
        await chats.send(hub, "c1", ("b:u1",))
        await early.wait_for(1)

        hub.subscribe(["b:u1"], late)
        await chats.send(hub, "c1", ("b:u1",))

        await late.wait_for(1)
        await asyncio.sleep(QUIET)
        assert late.places() == [("c1", 2)]
        assert early.places() == [("c1", 1), ("c1", 2)]

    async def test_read_marks_reach_both_sides(self, hub: Hub) -> None:
        buyer, shop, stranger = Inbox(), Inbox(), Inbox()
        hub.subscribe(["b:u1"], buyer)
        hub.subscribe(["s:s1"], shop)
        hub.subscribe(["b:u2"], stranger)

        await hub.publish([read_out("c1", 3)], ("b:u1", "s:s1"))

        await buyer.wait_for(1)
        await shop.wait_for(1)
        await asyncio.sleep(QUIET)
        expected = [ReadMark(chat="c1", side="buyer", seq=3)]
        assert buyer.marks() == shop.marks() == expected
        assert buyer.positions() == []
        assert stranger.items == []

    async def test_chats_written_at_once_each_arrive_in_seq_order(
        self, hub: Hub, chats: Chats
    ) -> None:
        shop = Inbox()
        hub.subscribe(["s:s1"], shop)

        async def chat(stream: str) -> None:
            for _ in range(15):
                await chats.send(hub, stream, ("s:s1",), count=2)

        await asyncio.gather(*(chat(f"c{n}") for n in range(6)))

        await shop.wait_for(6 * 30)
        await asyncio.sleep(QUIET)
        assert len(shop.items) == 6 * 30
        for n in range(6):
            assert [seq for stream, seq in shop.places() if stream == f"c{n}"] == list(range(1, 31))
        assert len(set(shop.positions())) == len(shop.items)

    async def test_an_item_renders_the_event_frame_with_a_cursor_of_the_log(
        self, hub: Hub, chats: Chats, log: EventStore
    ) -> None:
        inbox = Inbox()
        hub.subscribe(["b:u1"], inbox)
        codec = codec_for("chatd.v1.json")

        [stored] = await chats.send(hub, "c1", ("b:u1",))

        [item] = await inbox.wait_for(1)
        frame = msgspec.json.decode(item.encoded("buyer", codec))
        assert (frame["type"], frame["chat"], frame["seq"]) == ("event", "c1", 1)
        assert frame["text"] == stored.event.text
        assert cursor.parse(log.log_id, frame["cursor"]) == stored.pos
