"""Who is online (docs/protocol.md, "Typing and presence"): nothing of it is stored, all of it
is kept by the hub, beside who is connected where.

A *party* is one side as routing keys name it (chatd.routing): `b:{buyer}` is online while
any socket of that buyer is open, `s:{shop}` while any socket of an operator of that shop
is, on any node. A chat's `online` is its two parties'.

Each node counts its own sockets per party (`arrived`, `left`). A party that loses its last
socket is reported offline only after `grace` seconds without one: a page reload or a
client's reconnect must not flash "offline" to the other side, nor cost two `presence`
frames to everyone who has the chat open.

`on_change` listeners hear `(party, online)` when a party's state, as this node knows it,
changes: for the in-process hub that is every change; across nodes (chatd.hub.redis_presence)
only for the parties someone on this node `watch`es (has a chat of open), since a change of
any other party concerns no socket here.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection

Listener = Callable[[str, bool], None]

# Seconds a party without sockets still counts as online (see the module's docstring).
DEFAULT_GRACE = 2.0


class LocalCounts:
    """This node's open sockets per party, and the grace before a party's last one leaving
    counts. `changed(party, online)` is called when the node's own view of a party flips."""

    __slots__ = ("_changed", "_counts", "_grace", "_leaving")

    def __init__(self, grace: float, changed: Listener) -> None:
        self._grace = grace
        self._changed = changed
        self._counts: dict[str, int] = {}
        # Parties whose last socket closed less than `grace` ago: the timer that ends them.
        self._leaving: dict[str, asyncio.TimerHandle] = {}

    def arrived(self, party: str) -> None:
        count = self._counts.get(party, 0)
        self._counts[party] = count + 1
        if count:
            return
        timer = self._leaving.pop(party, None)
        if timer is not None:
            timer.cancel()  # back within the grace: it never went offline
            return
        self._changed(party, True)

    def left(self, party: str) -> None:
        if party not in self._counts:
            return  # forgotten already: the node is stopping (`close`)
        count = self._counts[party] - 1
        if count > 0:
            self._counts[party] = count
            return
        self._counts.pop(party, None)
        if self._grace <= 0:
            self._changed(party, False)
            return
        loop = asyncio.get_running_loop()
        self._leaving[party] = loop.call_later(self._grace, self._gone, party)

    def _gone(self, party: str) -> None:
        self._leaving.pop(party, None)
        if party not in self._counts:
            self._changed(party, False)

    def online(self, party: str) -> bool:
        return party in self._counts or party in self._leaving

    def parties(self) -> set[str]:
        """Every party this node counts as online."""
        return set(self._counts) | set(self._leaving)

    def close(self) -> None:
        """Forgets every party at once, without telling anyone (the node is stopping)."""
        for timer in self._leaving.values():
            timer.cancel()
        self._leaving.clear()
        self._counts.clear()


class Presence(abc.ABC):
    """The parties online, as one node sees them (see the module's docstring)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _tell(self, party: str, online: bool) -> None:
        for listener in self._listeners:
            listener(party, online)

    @abc.abstractmethod
    def arrived(self, party: str) -> None:
        """A socket of `party` opened on this node. O(1): called once per connection."""

    @abc.abstractmethod
    def left(self, party: str) -> None:
        """A socket of `party` on this node closed."""

    @abc.abstractmethod
    async def online(self, parties: Collection[str]) -> frozenset[str]:
        """Those of `parties` online now, on any node."""

    def watch(self, party: str) -> None:  # noqa: B027 (a hook: the in-process hub needs none)
        """Someone on this node has a chat of `party` open: report its changes (counted; as
        many `unwatch` calls end it)."""

    def unwatch(self, party: str) -> None:  # noqa: B027
        """One `watch` of `party` ended."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class LocalPresence(Presence):
    """One process: its own counts are the whole truth, and every change is told."""

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        super().__init__()
        self._counts = LocalCounts(grace, self._tell)

    def arrived(self, party: str) -> None:
        self._counts.arrived(party)

    def left(self, party: str) -> None:
        self._counts.left(party)

    async def online(self, parties: Collection[str]) -> frozenset[str]:
        return frozenset(party for party in parties if self._counts.online(party))

    async def stop(self) -> None:
        self._counts.close()
