"""The hub for several nodes: Redis pub/sub carries events between them, the log fills gaps.

Every node publishes what its service appended on one channel per log, and delivers to its
own sockets what any node appended. Redis is the fast path only; the log is the truth:

- A node hands events to its sockets strictly in position order, through its `Sequencer`.
  It knows the position `horizon` up to which it has handed out everything; an event at
  `horizon + 1` goes out at once, one further on waits while the node reads the missing
  positions from the log (`read_routed`: events with their routing keys). The store commits
  positions in order (see PostgresStore._lock_log), so when position p has arrived every
  position below it is readable. Position order gives every chat's `seq` order, on every
  node, whichever node's message arrives first; and each position goes out once, so a
  connection's skip of what its replay sent (`pos <= replayed`) stays exact.
- The same read runs every `poll_interval` seconds: events whose message was lost (Redis
  down, a node killed between its commit and its publish, an order registration that no
  one publishes) still arrive, a little later. Local delivery never waits for Redis.
- Read marks are no events of the log: they are delivered at once, and a mark lost with
  Redis stays lost until the client asks for its chats (their `unread` is in the store).
- A revoked API key travels the same way, to close the key's sockets on every node; one
  lost with Redis is found by each node's own re-reading of its keys in the store
  (chatd.web.key_sockets), a second or so later.

A node subscribes to the channel once at start, not per routing key, so a socket that
subscribes locally is never ahead of the node's Redis subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatd.hub.base import EventOut, Hub, Outgoing, ReadOut, Subscriber
from chatd.hub.local import LocalHub
from chatd.store.base import Stored
from protocol.events import decode_event, encode_event
from protocol.frames import ReadMark

log = logging.getLogger(__name__)

Routed = tuple[Stored, tuple[str, ...]]


class RoutedLog(Protocol):
    """What the hub reads from the store (chatd.store.postgres.PostgresStore has it)."""

    @property
    def log_id(self) -> str: ...

    async def last_position(self) -> int: ...

    async def read_routed(self, after: int, limit: int) -> list[Routed]:
        """Events after position `after`, ascending, each with the keys that may see it."""
        ...


class _Wire(msgspec.Struct, array_like=True, frozen=True):
    """One publish of one node: events (position, encoded event), read marks, or the ids of
    revoked API keys. (A node of an older chatd skips the trailing field it does not know.)"""

    node: str
    keys: tuple[str, ...]
    events: tuple[tuple[int, bytes], ...] = ()
    reads: tuple[bytes, ...] = ()
    revoked: tuple[str, ...] = ()


_wire_encoder = msgspec.msgpack.Encoder()
_wire_decoder = msgspec.msgpack.Decoder(_Wire)
_mark_decoder = msgspec.msgpack.Decoder(ReadMark)


@dataclass(frozen=True, slots=True)
class _Entry:
    item: EventOut
    keys: tuple[str, ...]


class Sequencer:
    """Hands events to `deliver` once each, in position order, from whichever source has
    them first: this node's publishes, other nodes' messages, or the log."""

    def __init__(
        self,
        log: RoutedLog,
        deliver: Callable[[EventOut, tuple[str, ...]], None],
        *,
        page: int = 500,
        max_pending: int = 50_000,
    ) -> None:
        self._log = log
        self._deliver = deliver
        self._page = page
        self._max_pending = max_pending
        self.horizon = 0
        self._pending: dict[int, _Entry] = {}
        self.gap = asyncio.Event()  # set when an event waits for positions below it

    async def start(self) -> None:
        self.horizon = await self._log.last_position()

    def offer(self, item: EventOut, keys: tuple[str, ...]) -> None:
        pos = item.stored.pos
        if pos <= self.horizon or pos in self._pending:
            return
        if len(self._pending) >= self._max_pending:
            # The log has all of these: forget them rather than grow without bound.
            log.warning("%d events wait for a gap; reading them from the log", len(self._pending))
            self._pending.clear()
        self._pending[pos] = _Entry(item, keys)
        self._drain()

    def _drain(self) -> None:
        while (entry := self._pending.pop(self.horizon + 1, None)) is not None:
            self.horizon += 1
            self._deliver(entry.item, entry.keys)
        if self._pending:
            self.gap.set()

    async def catch_up(self) -> int:
        """Delivers from the log every event past the horizon; how many it delivered."""
        delivered = 0
        while True:
            page = await self._log.read_routed(self.horizon, self._page)
            for stored, keys in page:
                if stored.pos <= self.horizon:
                    continue  # delivered meanwhile, from a message
                entry = self._pending.pop(stored.pos, None)
                self.horizon = stored.pos
                item = entry.item if entry is not None else EventOut(stored, self._log.log_id)
                self._deliver(item, keys)
                delivered += 1
            for stale in [pos for pos in self._pending if pos <= self.horizon]:
                del self._pending[stale]
            self._drain()
            if len(page) < self._page:
                return delivered


class RedisHub(Hub):
    def __init__(
        self,
        url: str,
        log: RoutedLog,
        *,
        prefix: str = "chatd",
        poll_interval: float = 1.0,
        gap_grace: float = 0.02,
        outbox: int = 10_000,
    ) -> None:
        self._url = url
        self._log = log
        self._prefix = prefix
        self._poll_interval = poll_interval
        self._gap_grace = gap_grace
        self.node = secrets.token_hex(6)
        self._local = LocalHub()
        self._sequencer = Sequencer(log, self._deliver)
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=outbox)
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.connected = asyncio.Event()

    @property
    def channel(self) -> str:
        # One channel per log: nodes of another database never hear each other.
        return f"{self._prefix}:{self._log.log_id}:events"

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=2.0, socket_keepalive=True
        )
        await self._sequencer.start()
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-hub-listen"),
            asyncio.create_task(self._send(), name="redis-hub-send"),
            asyncio.create_task(self._follow_log(), name="redis-hub-log"),
        ]

    async def stop(self) -> None:
        # The loops also check the flag: redis-py may turn a cancellation into a connection
        # error, which a loop would otherwise survive.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._local.stop()

    # ---- subscribers -------------------------------------------------------------------------

    def subscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None:
        self._local.subscribe(keys, subscriber)

    def unsubscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None:
        self._local.unsubscribe(keys, subscriber)

    def _deliver(self, item: EventOut, keys: tuple[str, ...]) -> None:
        # Runs inside the sequencer: whatever fails here must not stop the events after it.
        try:
            if keys:
                self._local.deliver([item], keys)
        except Exception:
            log.exception("delivering position %d failed", item.stored.pos)

    # ---- publishing --------------------------------------------------------------------------

    async def publish(self, items: list[Outgoing], keys: tuple[str, ...]) -> None:
        events: list[tuple[int, bytes]] = []
        reads: list[bytes] = []
        for item in items:
            if isinstance(item, EventOut):
                self._sequencer.offer(item, keys)
                events.append((item.stored.pos, encode_event(item.stored.event)))
                continue
            self._local.deliver([item], keys)
            if isinstance(item, ReadOut):
                reads.append(_wire_encoder.encode(item.frame))
        if events or reads:
            wire = _Wire(self.node, keys, tuple(events), tuple(reads))
            try:
                self._outbox.put_nowait(_wire_encoder.encode(wire))
            except asyncio.QueueFull:
                log.warning("redis outbox full: other nodes will read these events from the log")

    def on_key_revoked(self, listener: Callable[[str], None]) -> None:
        self._local.on_key_revoked(listener)

    async def revoke_key(self, key: str) -> None:
        self._local.key_revoked(key)
        wire = _Wire(self.node, (), revoked=(key,))
        try:
            self._outbox.put_nowait(_wire_encoder.encode(wire))
        except asyncio.QueueFull:
            log.warning("redis outbox full: other nodes will find the revoked key in the store")

    async def _send(self) -> None:
        """Publishes in order, never holding up the service: while Redis is away, messages
        are dropped, and other nodes find the events in the log."""
        failing = False
        while not self._stopping:
            data = await self._outbox.get()
            try:
                await self._require().publish(self.channel, data)
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("publishing to redis failed (%s); peers will poll the log", exc)
                failing = True
                continue
            failing = False

    # ---- receiving ---------------------------------------------------------------------------

    def _require(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("the hub is not started")
        return self._client

    async def _listen(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                async with self._require().pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.connected.set()
                    delay = 0.1
                    log.info("listening on redis channel %s", self.channel)
                    # Whatever was published while we were away is in the log.
                    self._sequencer.gap.set()
                    while not self._stopping:
                        message = await pubsub.get_message(timeout=self._poll_interval)
                        if message is not None and message.get("type") == "message":
                            self._receive(message["data"])
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("lost redis (%s); following the log until it is back", exc)
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _receive(self, data: bytes) -> None:
        try:
            wire = _wire_decoder.decode(data)
            if wire.node == self.node:
                return
            marks: list[Outgoing] = [ReadOut(_mark_decoder.decode(raw)) for raw in wire.reads]
            events = [
                EventOut(Stored(pos, decode_event(body)), self._log.log_id)
                for pos, body in wire.events
            ]
        except (msgspec.DecodeError, KeyError, ValueError) as exc:
            log.warning("dropped a message on %s that is not chatd's: %s", self.channel, exc)
            return
        if marks:
            self._local.deliver(marks, wire.keys)
        for key in wire.revoked:
            self._local.key_revoked(key)
        for event in events:
            self._sequencer.offer(event, wire.keys)

    async def _follow_log(self) -> None:
        """Fills gaps from the log: soon after one opens, and every `poll_interval` anyway."""
        sequencer = self._sequencer
        while not self._stopping:
            # (Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that comes
            # as the event is set, and stop() would wait forever.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await sequencer.gap.wait()
                # A message that is merely late usually lands within the grace.
                await asyncio.sleep(self._gap_grace)
            sequencer.gap.clear()
            try:
                caught = await sequencer.catch_up()
            except Exception:
                log.exception("reading the log to fill a gap failed; retrying")
                await asyncio.sleep(self._poll_interval)
                sequencer.gap.set()
                continue
            if caught:
                log.debug("delivered %d events from the log", caught)
