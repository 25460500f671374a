"""The chats each socket of this node has in view: where `typing` and `presence` frames go.

Neither is stored nor replayed, and neither goes by routing key as events do: a shop's key
reaches every socket of every operator of the shop, and a buyer typing in one chat, or a
shop coming online in a thousand, would cost a frame per socket and chat that nobody looks
at. Instead each socket of a chat's two sides keeps the chats it has in view:

- a chat it named in a frame the server carried out (`history`, `read`, `send`,
  `attachments`, a `search` in it, `typing`, and the chat an `open` answered with), and the
  chats of a `chats` page it was answered;
- at most `MAX_IN_VIEW` of them, the one named longest ago dropped first (a page is 100 at
  most, so the latest page and the chats open beside it stay);
- only sockets of a buyer or a shop: a manager is no side of a chat, and receives neither.

`typing` then goes to the sockets of the chat's other side that have it in view, and a
party's presence change to every socket (of either side) that has one of its chats in view:
a frame per chat that is on someone's screen, whatever the size of the shop. The hub is told
which parties are in view here (`Presence.watch`), so that across nodes only their changes
are looked at. The current state itself is in the chats' summaries (`online`); these frames
report changes after it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from chatd.domain.actors import Actor
from chatd.hub.base import Hub, Outgoing, Subscriber
from chatd.render import View
from chatd.routing import buyer_key, keys_of, parse_key, shop_key
from protocol.codec import Codec
from protocol.events import Side
from protocol.frames import ChatSummary, PresenceChange, TypingNotice

# Chats one socket keeps in view (see the module's docstring).
MAX_IN_VIEW = 256
# Seconds between two `typing` frames of one socket and chat that are passed on.
TYPING_INTERVAL = 2.0


class FrameOut(Outgoing):
    """A frame that is no event (no position), encoded once per subprotocol however many
    sockets receive it."""

    __slots__ = ("frame",)

    def __init__(self, frame: Any) -> None:
        super().__init__(None)
        self.frame = frame

    def _encode(self, view: View, codec: Codec) -> bytes:
        return codec.encode(self.frame)


class InView:
    """One chat in one socket's view: its two parties, and when this socket's last `typing`
    in it was passed on (time.monotonic(); 0: never)."""

    __slots__ = ("buyer", "shop", "typed_at")

    def __init__(self, buyer: str, shop: str) -> None:
        self.buyer = buyer
        self.shop = shop
        self.typed_at = 0.0


class Viewer:
    """One socket of a buyer or a shop, and the chats it has in view."""

    __slots__ = ("chats", "side", "socket")

    def __init__(self, socket: Subscriber, side: Side) -> None:
        self.socket = socket
        self.side: Side = side
        # Made at the first chat: an idle socket keeps no dictionary.
        self.chats: OrderedDict[str, InView] | None = None

    def touch(self, chat: str) -> bool:
        """Whether `chat` is in view; if so, it is now the one last named."""
        chats = self.chats
        if chats is None or chat not in chats:
            return False
        chats.move_to_end(chat)
        return True

    def typing_due(self, chat: str, now: float) -> bool:
        """Whether a `typing` in `chat` now is passed on (`TYPING_INTERVAL` after the last)."""
        seen = self.chats.get(chat) if self.chats is not None else None
        return seen is None or now - seen.typed_at >= TYPING_INTERVAL

    def typed(self, chat: str, now: float) -> None:
        """A `typing` in `chat`, which is in view, was passed on at `now`."""
        if self.chats is not None and chat in self.chats:
            self.chats[chat].typed_at = now


def side_of_actor(actor: Actor) -> Side | None:
    """The side a socket of `actor` takes in its chats: none for a manager."""
    if actor.role == "buyer":
        return "buyer"
    if actor.role == "seller":
        return "seller"
    return None


def presence_party(actor: Actor) -> str | None:
    """The party a socket of `actor` makes online: a buyer, or a shop through one of its
    operators. A shop's API key makes no one online: a script holding a socket day and night
    is not someone there to answer."""
    side = side_of_actor(actor)
    if side is None or actor.scopes is not None:
        return None
    return keys_of(actor)[0]


class Watching:
    """This node's index of the chats in view, and the delivery of `typing` and `presence`
    to it. Registered with the hub as its typing and presence listener."""

    def __init__(self, hub: Hub) -> None:
        self._presence = hub.presence
        self._by_chat: dict[str, set[Viewer]] = {}
        # party -> the chats of that party in someone's view here.
        self._by_party: dict[str, set[str]] = {}
        hub.on_typing(self.typed)
        hub.presence.on_change(self.presence_changed)

    # ---- sockets -----------------------------------------------------------------------------

    def joined(self, socket: Subscriber, actor: Actor) -> Viewer | None:
        """A socket that passed `hello`; None for one that keeps no chats in view."""
        side = side_of_actor(actor)
        if side is None:
            return None
        return Viewer(socket, side)

    def left(self, viewer: Viewer) -> None:
        if viewer.chats is not None:
            for chat in list(viewer.chats):
                self._drop(viewer, chat)
            viewer.chats = None

    # ---- what a socket has in view -----------------------------------------------------------

    def see(self, viewer: Viewer, chat: str, buyer: str, shop: str) -> None:
        """`viewer` has `chat` (of the buyer and the shop ids given) in view, now last named."""
        chats = viewer.chats
        if chats is None:
            chats = viewer.chats = OrderedDict()
        if chat in chats:
            chats.move_to_end(chat)
            return
        chats[chat] = InView(buyer_key(buyer), shop_key(shop))
        viewers = self._by_chat.get(chat)
        if viewers is None:
            viewers = self._by_chat[chat] = set()
            self._add_party(chats[chat].buyer, chat)
            self._add_party(chats[chat].shop, chat)
        viewers.add(viewer)
        if len(chats) > MAX_IN_VIEW:
            oldest = next(iter(chats))
            self._drop(viewer, oldest)

    def see_page(self, viewer: Viewer, summaries: list[ChatSummary]) -> None:
        """The chats of a `chats` page `viewer` was answered, the newest last named."""
        for summary in reversed(summaries):
            self.see(viewer, summary.chat, summary.buyer.id, summary.seller.id)

    def _drop(self, viewer: Viewer, chat: str) -> None:
        assert viewer.chats is not None
        seen = viewer.chats.pop(chat, None)
        viewers = self._by_chat.get(chat)
        if seen is None or viewers is None:
            return
        viewers.discard(viewer)
        if not viewers:
            del self._by_chat[chat]
            self._remove_party(seen.buyer, chat)
            self._remove_party(seen.shop, chat)

    def _add_party(self, party: str, chat: str) -> None:
        self._by_party.setdefault(party, set()).add(chat)
        self._presence.watch(party)

    def _remove_party(self, party: str, chat: str) -> None:
        chats = self._by_party.get(party)
        if chats is not None:
            chats.discard(chat)
            if not chats:
                del self._by_party[party]
        self._presence.unwatch(party)

    # ---- delivery ----------------------------------------------------------------------------

    def typed(self, notice: TypingNotice) -> None:
        """To the sockets of the chat's other side that have it in view."""
        viewers = self._by_chat.get(notice.chat)
        if not viewers:
            return
        item = FrameOut(notice)
        for viewer in tuple(viewers):
            if viewer.side != notice.side:
                viewer.socket.push(item)

    def presence_changed(self, party: str, online: bool) -> None:
        """To every socket, of either side, that has one of the party's chats in view."""
        chats = self._by_party.get(party)
        if not chats:
            return
        side: Side = "buyer" if parse_key(party).kind == "b" else "seller"
        for chat in tuple(chats):
            item = FrameOut(PresenceChange(chat=chat, side=side, online=online))
            for viewer in tuple(self._by_chat.get(chat, ())):
                viewer.socket.push(item)
