"""Presence across nodes (chatd.hub.presence), kept in Redis beside the Redis hub.

Each node keeps in Redis the set of parties it has sockets for
(`{namespace}:presence:{node}`), and its name with the time of its last heartbeat in a
sorted set of nodes (`{namespace}:presence-nodes`). A party is online while this node
counts it, or the set of another live node has it. The node's set expires `ttl` seconds
after its last heartbeat (every `heartbeat` seconds), and a node whose heartbeat is older
than `ttl` is no longer read: the parties of a node killed without a word drop out within
`ttl + heartbeat` seconds (15 + 5 by default), and the other nodes, noticing a node gone at
their next heartbeat, look again at every party they watch.

A change travels as a notice on the hub's channel (the names of the parties that changed on
one node), written after the node's set, in the same pipeline. A node that hears one looks
again only at the parties it `watch`es, and tells its listeners only what differs from what
it last told: it never holds a copy of the whole cluster's presence, and a notice about
parties nobody here has open costs a set look-up. Changes of this node's own sockets are
batched (`flush_delay`): a node's restart, with thousands of reconnects in a second, writes
and notices them in a few pipelines, not one per socket.

Redis is not the truth of anything lasting here, and its loss costs only presence: while it
is away, summaries say what this node alone knows, and when it is back this node writes its
whole set again (its key may be gone with a restarted Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatd.hub.presence import DEFAULT_GRACE, LocalCounts, Presence
from chatd.observability.logs import fields

log = logging.getLogger(__name__)

DEFAULT_TTL = 15.0
DEFAULT_HEARTBEAT = 5.0
# The pause after a failed Redis call before the next try.
_RETRY = 1.0
# How long a summary waits for Redis to say who is online elsewhere. Redis silent (a
# partition: nothing refused, nothing closed) would otherwise hold every chat list for
# redis-py's socket timeout, 5 s, and then its connect timeout, 2 s, each time
# (`python -m chatd.proof.partitions`; tests/multinode/test_silent_peers.py).
ONLINE_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class PresenceLink:
    """What the Redis hub lends its presence once it is connected."""

    client: aioredis.Redis
    namespace: str  # `{prefix}:{log id}`: nodes of another log never share presence
    channel: str  # the hub's channel, where notices travel
    notice: Callable[[tuple[str, ...]], bytes]  # a notice of these parties, as the hub sends it


class RedisPresence(Presence):
    def __init__(
        self,
        node: str,
        *,
        grace: float = DEFAULT_GRACE,
        ttl: float = DEFAULT_TTL,
        heartbeat: float = DEFAULT_HEARTBEAT,
        flush_delay: float = 0.02,
    ) -> None:
        super().__init__()
        self.node = node
        self._ttl = ttl
        self._heartbeat = heartbeat
        self._flush_delay = flush_delay
        self._counts = LocalCounts(grace, self._changed_here)
        self._link: PresenceLink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # This node's changes not yet in its Redis set: party -> online.
        self._unwritten: dict[str, bool] = {}
        # Write the whole set again (Redis lost it, or a write failed).
        self._rewrite = False
        self._write_wanted = asyncio.Event()
        # The parties watched here (how many times), what was last told of each, and those
        # to look at again.
        self._interest: Counter[str] = Counter()
        self._told: dict[str, bool] = {}
        self._dirty: set[str] = set()
        self._check_wanted = asyncio.Event()
        # The other nodes alive at the last heartbeat, or heard from since.
        self._others: set[str] = set()

    # ---- keys --------------------------------------------------------------------------------

    def _require(self) -> PresenceLink:
        if self._link is None:
            raise RuntimeError("presence is not connected")
        return self._link

    def _set_of(self, node: str) -> str:
        return f"{self._require().namespace}:presence:{node}"

    @property
    def _nodes(self) -> str:
        return f"{self._require().namespace}:presence-nodes"

    # ---- life cycle --------------------------------------------------------------------------

    async def connect(self, link: PresenceLink) -> None:
        """Starts the writer, the checker and the heartbeat on the hub's Redis."""
        self._link = link
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="presence-write"),
            asyncio.create_task(self._check_loop(), name="presence-check"),
            asyncio.create_task(self._beat_loop(), name="presence-heartbeat"),
        ]

    async def stop(self) -> None:
        """Leaves at once rather than by expiry: the set and the node go, and a notice tells
        the other nodes to look again at every party this node had."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        parties = tuple(self._counts.parties() | set(self._unwritten))
        self._counts.close()
        link = self._link
        if link is None:
            return
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                pipe = link.client.pipeline(transaction=False)
                pipe.delete(self._set_of(self.node))
                pipe.zrem(self._nodes, self.node)
                if parties:
                    pipe.publish(link.channel, link.notice(parties))
                await pipe.execute()

    # ---- this node's sockets -----------------------------------------------------------------

    def arrived(self, party: str) -> None:
        self._counts.arrived(party)

    def left(self, party: str) -> None:
        self._counts.left(party)

    def _changed_here(self, party: str, online: bool) -> None:
        self._unwritten[party] = online
        self._write_wanted.set()
        if party not in self._interest:
            return
        told = self._told.get(party)
        if online and told is False:
            # Online here is online everywhere: no need to ask the others.
            self._told[party] = True
            self._tell(party, True)
        elif not online or told is None:
            # Offline here: another node may still have the party.
            self._look_again(party)

    # ---- interest ----------------------------------------------------------------------------

    def watch(self, party: str) -> None:
        self._interest[party] += 1
        if self._interest[party] == 1:
            self._look_again(party)  # learns its state, silently (nothing was told yet)

    def unwatch(self, party: str) -> None:
        left = self._interest[party] - 1
        if left > 0:
            self._interest[party] = left
            return
        del self._interest[party]
        self._told.pop(party, None)

    def _look_again(self, party: str) -> None:
        self._dirty.add(party)
        self._check_wanted.set()

    def noticed(self, node: str, parties: tuple[str, ...]) -> None:
        """A notice from `node` (the hub hands it over): these parties changed there."""
        if node == self.node:
            return
        self._others.add(node)
        for party in parties:
            if party in self._interest:
                self._look_again(party)

    # ---- reading -----------------------------------------------------------------------------

    async def online(self, parties: Collection[str]) -> frozenset[str]:
        try:
            async with asyncio.timeout(ONLINE_TIMEOUT):
                return await self._online(parties)
        except (RedisError, OSError, RuntimeError, TimeoutError) as exc:
            # A summary must not fail for presence: without Redis, what this node knows.
            log.debug("presence without redis: %s", exc)
            return frozenset(p for p in parties if self._counts.online(p))

    async def _online(self, parties: Collection[str]) -> frozenset[str]:
        found = {party for party in parties if self._counts.online(party)}
        rest = [party for party in parties if party not in found]
        others = sorted(self._others)
        if not rest or not others:
            return frozenset(found)
        pipe = self._require().client.pipeline(transaction=False)
        for node in others:
            pipe.smismember(self._set_of(node), rest)
        for hits in await pipe.execute():
            found.update(party for party, hit in zip(rest, hits, strict=True) if hit)
        return frozenset(found)

    # ---- the loops ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while not self._stopping:
            await self._write_wanted.wait()
            # A burst of arrivals (a node's restart) goes out in one pipeline.
            await asyncio.sleep(self._flush_delay)
            self._write_wanted.clear()
            unwritten, self._unwritten = self._unwritten, {}
            rewrite, self._rewrite = self._rewrite, False
            try:
                await self._write(unwritten, rewrite)
            except (RedisError, OSError) as exc:
                log.warning(
                    "writing presence to redis failed (%s); writing it all again later",
                    exc,
                    extra=fields(event="presence_write_failed", error=str(exc)),
                )
                self._rewrite = True
                self._unwritten = {**unwritten, **self._unwritten}
                await asyncio.sleep(_RETRY)
                self._write_wanted.set()

    async def _write(self, unwritten: dict[str, bool], rewrite: bool) -> None:
        link = self._require()
        key = self._set_of(self.node)
        pipe = link.client.pipeline(transaction=False)
        changed = set(unwritten)
        if rewrite:
            present = self._counts.parties()
            changed |= present
            pipe.delete(key)
            if present:
                pipe.sadd(key, *present)
        else:
            added = [party for party, online in unwritten.items() if online]
            removed = [party for party, online in unwritten.items() if not online]
            if added:
                pipe.sadd(key, *added)
            if removed:
                pipe.srem(key, *removed)
        # The set never outlives the node's heartbeat, even when it was just made.
        pipe.expire(key, int(self._ttl) + 1)
        pipe.zadd(self._nodes, {self.node: time.time()})
        if changed:
            pipe.publish(link.channel, link.notice(tuple(changed)))
        await pipe.execute()

    async def _check_loop(self) -> None:
        while not self._stopping:
            await self._check_wanted.wait()
            self._check_wanted.clear()
            batch = {party for party in self._dirty if party in self._interest}
            self._dirty = set()
            if not batch:
                continue
            try:
                online = await self._online(batch)
            except (RedisError, OSError) as exc:
                log.debug("presence check failed: %s", exc)
                self._dirty |= batch
                await asyncio.sleep(_RETRY)
                self._check_wanted.set()
                continue
            for party in batch:
                if party not in self._interest:
                    continue  # unwatched meanwhile
                now = party in online
                before = self._told.get(party)
                self._told[party] = now
                if before is not None and before != now:
                    self._tell(party, now)

    async def _beat_loop(self) -> None:
        failing = False
        while not self._stopping:
            try:
                await self._beat()
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning(
                        "presence heartbeat failed (%s)",
                        exc,
                        extra=fields(event="presence_heartbeat_failed", error=str(exc)),
                    )
                failing = True
                self._rewrite = True
            await asyncio.sleep(self._heartbeat)

    async def _beat(self) -> None:
        link = self._require()
        now = time.time()
        pipe = link.client.pipeline(transaction=False)
        pipe.zadd(self._nodes, {self.node: now})
        pipe.expire(self._set_of(self.node), int(self._ttl) + 1)
        pipe.zrangebyscore(self._nodes, now - self._ttl, "+inf")
        # Nodes silent for long are forgotten (a killed node never says goodbye).
        pipe.zremrangebyscore(self._nodes, "-inf", now - 4 * self._ttl)
        _, kept, live, _ = await pipe.execute()
        if self._rewrite or (not kept and self._counts.parties()):
            # The set is gone (a restarted Redis): this node's parties are written again.
            self._rewrite = True
            self._write_wanted.set()
        others = {raw.decode() if isinstance(raw, bytes) else str(raw) for raw in live}
        others.discard(self.node)
        if self._others - others:
            # A node went silent: whatever it had may be offline now.
            for party in self._interest:
                self._look_again(party)
        self._others = others
