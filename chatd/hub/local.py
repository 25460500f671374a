"""The in-process hub: fan-out to the sockets of this process."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chatd.hub.base import Hub, Outgoing, Subscriber
from chatd.hub.presence import DEFAULT_GRACE, LocalPresence
from protocol.frames import TypingNotice


class LocalHub(Hub):
    def __init__(self, presence_grace: float = DEFAULT_GRACE) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._revocation_listeners: list[Callable[[str], None]] = []
        self._typing_listeners: list[Callable[[TypingNotice], None]] = []
        self.presence = LocalPresence(presence_grace)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._subscribers.clear()
        await self.presence.stop()

    def subscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None:
        for key in keys:
            self._subscribers.setdefault(key, set()).add(subscriber)

    def unsubscribe(self, keys: Iterable[str], subscriber: Subscriber) -> None:
        for key in keys:
            group = self._subscribers.get(key)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._subscribers[key]

    async def publish(self, items: list[Outgoing], keys: tuple[str, ...]) -> None:
        self.deliver(items, keys)

    def on_key_revoked(self, listener: Callable[[str], None]) -> None:
        self._revocation_listeners.append(listener)

    async def revoke_key(self, key: str) -> None:
        self.key_revoked(key)

    def key_revoked(self, key: str) -> None:
        """Tells this process's listeners (also what a cross-node hub calls on receipt)."""
        for listener in self._revocation_listeners:
            listener(key)

    def on_typing(self, listener: Callable[[TypingNotice], None]) -> None:
        self._typing_listeners.append(listener)

    async def typing(self, notice: TypingNotice) -> None:
        self.typed(notice)

    def typed(self, notice: TypingNotice) -> None:
        """Tells this process's typing listeners (also what a cross-node hub calls on receipt)."""
        for listener in self._typing_listeners:
            listener(notice)

    def deliver(self, items: list[Outgoing], keys: tuple[str, ...]) -> None:
        """Push to this process's subscribers (also what a cross-node hub calls on receipt)."""
        if len(keys) == 1:
            targets: Iterable[Subscriber] = tuple(self._subscribers.get(keys[0], ()))
        else:
            # A subscriber listening on several of the keys still gets each item once.
            merged: dict[int, Subscriber] = {}
            for key in keys:
                for subscriber in self._subscribers.get(key, ()):
                    merged[id(subscriber)] = subscriber
            targets = merged.values()
        for subscriber in targets:
            for item in items:
                subscriber.push(item)
