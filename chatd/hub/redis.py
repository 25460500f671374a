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
- So do `typing` notices, at most once (one lost with Redis is lost: the next keystroke
  sends another), and presence notices (chatd.hub.redis_presence, which keeps who is online
  in Redis itself).

A node subscribes to the channel once at start, not per routing key, so a socket that
subscribes locally is never ahead of the node's Redis subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from chatd.hub.base import EventOut, Hub, HubStats, Outgoing, ReadOut, Subscriber
from chatd.hub.local import LocalHub
from chatd.hub.presence import DEFAULT_GRACE
from chatd.hub.redis_presence import (
    DEFAULT_HEARTBEAT,
    DEFAULT_TTL,
    PresenceLink,
    RedisPresence,
)
from chatd.observability.logs import fields
from chatd.store.base import Stored
from protocol.events import decode_event, encode_event
from protocol.frames import ReadMark, TypingNotice

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
    """One publish of one node: events (position, encoded event), read marks, the ids of
    revoked API keys, typing notices, or the parties whose presence changed on that node.
    (A node of an older chatd skips the trailing fields it does not know.)"""

    node: str
    keys: tuple[str, ...]
    events: tuple[tuple[int, bytes], ...] = ()
    reads: tuple[bytes, ...] = ()
    revoked: tuple[str, ...] = ()
    typing: tuple[bytes, ...] = ()
    presence: tuple[str, ...] = ()


_wire_encoder = msgspec.msgpack.Encoder()
_wire_decoder = msgspec.msgpack.Decoder(_Wire)
_mark_decoder = msgspec.msgpack.Decoder(ReadMark)
_typing_decoder = msgspec.msgpack.Decoder(TypingNotice)


@dataclass(frozen=True, slots=True)
class _Entry:
    item: EventOut
    keys: tuple[str, ...]
    arrived: float  # time.monotonic(): how long it waits is the hub's lag (/metrics)


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
        self.from_log = 0  # events the log delivered because no message had brought them

    async def start(self) -> None:
        self.horizon = await self._log.last_position()

    def offer(self, item: EventOut, keys: tuple[str, ...]) -> None:
        pos = item.stored.pos
        if pos <= self.horizon or pos in self._pending:
            return
        if pos == self.horizon + 1:
            # The next position, as nearly always: out at once, with what waited behind it.
            self.horizon = pos
            self._deliver(item, keys)
            if self._pending:
                self._drain()
            return
        if len(self._pending) >= self._max_pending:
            # The log has all of these: forget them rather than grow without bound.
            log.warning(
                "%d events wait for a gap; reading them from the log",
                len(self._pending),
                extra=fields(event="hub_gap_overflow", pending=len(self._pending)),
            )
            self._pending.clear()
        # Only an event that must wait is timed: the clock is read off the common path.
        self._pending[pos] = _Entry(item, keys, time.monotonic())
        self.gap.set()

    def oldest_pending(self) -> float | None:
        """When the longest-waiting event arrived (time.monotonic()), or None."""
        return min((entry.arrived for entry in self._pending.values()), default=None)

    @property
    def pending(self) -> int:
        return len(self._pending)

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
                if entry is None:
                    self.from_log += 1
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
        presence_grace: float = DEFAULT_GRACE,
        presence_ttl: float = DEFAULT_TTL,
        presence_heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        self._url = url
        self._log = log
        self._prefix = prefix
        self._poll_interval = poll_interval
        self._gap_grace = gap_grace
        self.node = secrets.token_hex(6)
        self._local = LocalHub()
        self._presence = RedisPresence(
            self.node, grace=presence_grace, ttl=presence_ttl, heartbeat=presence_heartbeat
        )
        self.presence = self._presence
        self._sequencer = Sequencer(log, self._deliver)
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=outbox)
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.connected = asyncio.Event()
        # For /metrics (`stats`): subscriptions got back after a loss, publishes lost.
        self.reconnections = 0
        self.publish_failures = 0

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
        namespace = f"{self._prefix}:{self._log.log_id}"
        link = PresenceLink(self._require(), namespace, self.channel, self._presence_notice)
        await self._presence.connect(link)

    async def stop(self) -> None:
        # The loops also check the flag: redis-py may turn a cancellation into a connection
        # error, which a loop would otherwise survive.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        # While the client is still open: the node's presence leaves Redis at once.
        await self.presence.stop()
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
                self.publish_failures += 1
                log.warning("redis outbox full: other nodes will read these events from the log")

    def on_key_revoked(self, listener: Callable[[str], None]) -> None:
        self._local.on_key_revoked(listener)

    async def revoke_key(self, key: str) -> None:
        self._local.key_revoked(key)
        wire = _Wire(self.node, (), revoked=(key,))
        try:
            self._outbox.put_nowait(_wire_encoder.encode(wire))
        except asyncio.QueueFull:
            self.publish_failures += 1
            log.warning("redis outbox full: other nodes will find the revoked key in the store")

    def on_typing(self, listener: Callable[[TypingNotice], None]) -> None:
        self._local.on_typing(listener)

    async def typing(self, notice: TypingNotice) -> None:
        self._local.typed(notice)
        wire = _Wire(self.node, (), typing=(_wire_encoder.encode(notice),))
        try:
            self._outbox.put_nowait(_wire_encoder.encode(wire))
        except asyncio.QueueFull:
            # Never stored, never repeated: a notice that cannot go now is dropped.
            self.publish_failures += 1

    def _presence_notice(self, parties: tuple[str, ...]) -> bytes:
        return _wire_encoder.encode(_Wire(self.node, (), presence=parties))

    async def _send(self) -> None:
        """Publishes in order, never holding up the service: while Redis is away, messages
        are dropped, and other nodes find the events in the log."""
        failing = False
        while not self._stopping:
            data = await self._outbox.get()
            try:
                await self._require().publish(self.channel, data)
            except (RedisError, OSError) as exc:
                self.publish_failures += 1
                if not failing:
                    log.warning(
                        "publishing to redis failed (%s); peers will poll the log",
                        exc,
                        extra=fields(event="hub_publish_failed", error=str(exc)),
                    )
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
        lost = False
        while not self._stopping:
            try:
                async with self._require().pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.connected.set()
                    delay = 0.1
                    if lost:
                        self.reconnections += 1
                        lost = False
                    log.info(
                        "listening on redis channel %s",
                        self.channel,
                        extra=fields(event="hub_connected", reconnections=self.reconnections),
                    )
                    # Whatever was published while we were away is in the log.
                    self._sequencer.gap.set()
                    await self._messages(pubsub)
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning(
                        "lost redis (%s); following the log until it is back",
                        exc,
                        extra=fields(event="hub_lost", error=str(exc)),
                    )
                    lost = True
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _messages(self, pubsub: PubSub) -> None:
        """Receives until the connection fails, or says nothing even when asked.

        A partition says nothing, and neither does a connection that Redis dropped while
        one swallowed the close (Redis restarted, or gave up on the node): the node would
        listen to it for ever, and read marks, typing and presence notices, which only Redis
        carries, would never reach it again. So after `silence` seconds without a message
        the hub sends a PING, and gives up on the connection when the answer does not come
        within as long again (`python -m chatd.proof.partitions`;
        tests/hub/test_redis_partition.py)."""
        silence = max(2 * self._poll_interval, 1.0)
        heard = time.monotonic()
        asked = False
        while not self._stopping:
            message = await pubsub.get_message(timeout=self._poll_interval)
            if message is not None:
                heard, asked = time.monotonic(), False
                if message.get("type") == "message":
                    self._receive(message["data"])
            elif time.monotonic() - heard > silence:
                if asked:
                    raise ConnectionError(f"no answer from redis for {silence:.0f} s")
                await pubsub.ping()
                heard, asked = time.monotonic(), True

    def _receive(self, data: bytes) -> None:
        try:
            wire = _wire_decoder.decode(data)
            if wire.node == self.node:
                return
            marks: list[Outgoing] = [ReadOut(_mark_decoder.decode(raw)) for raw in wire.reads]
            typed = [_typing_decoder.decode(raw) for raw in wire.typing]
            events = [
                EventOut(Stored(pos, decode_event(body)), self._log.log_id)
                for pos, body in wire.events
            ]
        except (msgspec.DecodeError, KeyError, ValueError) as exc:
            log.warning(
                "dropped a message on %s that is not chatd's: %s",
                self.channel,
                exc,
                extra=fields(event="hub_bad_message", error=str(exc)),
            )
            return
        if marks:
            self._local.deliver(marks, wire.keys)
        for key in wire.revoked:
            self._local.key_revoked(key)
        for notice in typed:
            self._local.typed(notice)
        if wire.presence:
            self._presence.noticed(wire.node, wire.presence)
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
            except Exception as exc:
                log.exception(
                    "reading the log to fill a gap failed; retrying",
                    extra=fields(event="hub_log_read_failed", error=str(exc)),
                )
                await asyncio.sleep(self._poll_interval)
                sequencer.gap.set()
                continue
            if caught:
                log.debug("delivered %d events from the log", caught)

    # ---- for /readyz and /metrics ------------------------------------------------------------

    async def check(self) -> None:
        """A PING answered now (a node whose Redis is down still delivers its own events
        and follows the log, but events of other nodes come a second late)."""
        await self._require().ping()

    def stats(self) -> HubStats:
        sequencer = self._sequencer
        return HubStats(
            connected=self.connected.is_set(),
            reconnections=self.reconnections,
            publish_failures=self.publish_failures,
            from_log=sequencer.from_log,
            pending=sequencer.pending,
            oldest_pending=sequencer.oldest_pending(),
            position=sequencer.horizon,
        )
