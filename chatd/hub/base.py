"""The hub: who is connected where, and the fan-out of committed events to them.

Publishers hand the hub `Outgoing` items with the routing keys that may see them
(`b:{buyer}`, `s:{shop}`, `m` for managers). An item renders its frame once per view and
subprotocol, however many sockets receive it, and a subscriber's `push` never waits: a
socket that cannot keep up is closed by its own connection, not waited for.

The hub also tells every node that a shop's API key was revoked (`revoke_key`), so that each
closes the sockets that key opened; the store stays the truth (each node also re-reads its
keys now and then, chatd.web.key_sockets), the hub makes it at once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Protocol

from chatd.render import View, event_frame
from chatd.store.base import Stored
from protocol.codec import Codec
from protocol.frames import ReadMark


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


class Hub(abc.ABC):
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
