"""The hub: who is connected where, and the fan-out of committed events to them.

Publishers hand the hub `Outgoing` items with the routing keys that may see them
(`b:{buyer}`, `s:{shop}`, `m` for managers). An item renders its frame once per view and
subprotocol, however many sockets receive it, and a subscriber's `push` never waits: a
socket that cannot keep up is closed by its own connection, not waited for.

The hub also tells every node that a shop's API key was revoked (`revoke_key`), so that each
closes the sockets that key opened; the store stays the truth (each node also re-reads its
keys now and then, chatd.web.key_sockets), the hub makes it at once.

What is never stored travels through the hub too (docs/protocol.md, version 1.1): `typing`
notices reach every node's listeners (chatd.web.watching picks the sockets), and `presence`
says who is online on any node (chatd.hub.presence).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from chatd.hub.presence import Presence
from chatd.render import View, event_frame
from chatd.store.base import Stored
from protocol.codec import Codec
from protocol.frames import ReadMark, TypingNotice


class Outgoing(abc.ABC):
    """A frame for many sockets, encoded lazily and at most once per (view, subprotocol)."""

    __slots__ = ("_cache", "pos")

    def __init__(self, pos: int | None) -> None:
        # The log position for events (connections skip what their replay already sent).
        self.pos = pos
        self._cache: dict[tuple[View, str], bytes] = {}

    def encoded(self, view: View, codec: Codec) -> bytes:
        key = (view, codec.subprotocol)
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = self._encode(view, codec)
        return data

    @abc.abstractmethod
    def _encode(self, view: View, codec: Codec) -> bytes: ...


class EventOut(Outgoing):
    __slots__ = ("log_id", "stored")

    def __init__(self, stored: Stored, log_id: str) -> None:
        super().__init__(stored.pos)
        self.stored = stored
        self.log_id = log_id

    def encoded(self, view: View, codec: Codec) -> bytes:
        if self.stored.event.text_buyer is None:
            # Only a text worded for the buyer tells the views apart: encode once for both.
            view = "seller"
        return super().encoded(view, codec)

    def _encode(self, view: View, codec: Codec) -> bytes:
        return codec.encode(event_frame(self.stored, self.log_id, view))


class ReadOut(Outgoing):
    __slots__ = ("frame",)

    def __init__(self, frame: ReadMark) -> None:
        super().__init__(None)
        self.frame = frame

    def _encode(self, view: View, codec: Codec) -> bytes:
        return codec.encode(self.frame)


class Subscriber(Protocol):
    def push(self, item: Outgoing) -> None:
        """Queue `item` for the socket; never blocks."""


@dataclass(frozen=True, slots=True)
class HubStats:
    """What a hub tells /metrics about itself (read at scrape time, chatd.web.metrics)."""

    connected: bool = True  # carrying events between nodes now
    reconnections: int = 0  # connections got back after a loss
    publish_failures: int = 0  # publishes the other nodes never got (they read the log)
    from_log: int = 0  # events delivered from the log because the hub had not brought them
    pending: int = 0  # events that wait for an earlier position
    oldest_pending: float | None = None  # time.monotonic() when the oldest of those arrived
    position: int | None = None  # delivered everything up to this log position


class Hub(abc.ABC):
    # Who is online (chatd.hub.presence); each hub makes its own.
    presence: Presence

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def subscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None: ...

    @abc.abstractmethod
    def unsubscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None: ...

    @abc.abstractmethod
    async def publish(self, items: list[Outgoing], keys: tuple[str, ...]) -> None:
        """Deliver `items`, in order, to every subscriber of any of `keys`, each once."""

    @abc.abstractmethod
    def on_key_revoked(self, listener: Callable[[str], None]) -> None:
        """Calls `listener(key id)` for each API key revoked on any node, this one included."""

    @abc.abstractmethod
    async def revoke_key(self, key: str) -> None:
        """Tells every node's listeners that the API key `key` (its id) is revoked."""

    @abc.abstractmethod
    def on_typing(self, listener: Callable[[TypingNotice], None]) -> None:
        """Calls `listener(notice)` for each `typing` notice sent on any node."""

    @abc.abstractmethod
    async def typing(self, notice: TypingNotice) -> None:
        """Hands `notice` to every node's typing listeners, this one's at once; at most once
        and never stored: a notice lost on the way is not sent again."""

    async def check(self) -> None:
        """Raises when the hub cannot carry events now (`/readyz`; the caller bounds the
        wait). The in-process hub always can."""
        return None

    def stats(self) -> HubStats:
        """Its figures for /metrics; cheap, called at every scrape."""
        return HubStats()
