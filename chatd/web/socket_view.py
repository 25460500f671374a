"""One socket's part in what is never stored (docs/protocol.md, "Typing and presence"): it
makes its user's side online while it is open, keeps the chats it has in view
(chatd.web.watching), and passes its `typing` frames on, at most one per chat every 2 s.

Typing frames count against the connection's frame rate limit like any frame: the limit is
what keeps a socket's frames cheap, and an exempt frame would be a free flood. A client that
sends one `typing` every 2 s at most while its user types (all the server passes on anyway)
spends a tiny part of its budget; the frames it sends in between are dropped without an
answer and without a look-up.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.hub.base import Subscriber
from chatd.service import ChatService
from chatd.web.watching import Viewer, Watching, presence_party
from protocol import frames as f

log = logging.getLogger(__name__)


class SocketView:
    """Made once the socket's `hello` passed; `arrive` when it is served, `depart` when it
    ends (always, once)."""

    __slots__ = ("_actor", "_party", "_service", "_viewer", "_watching")

    def __init__(
        self, service: ChatService, watching: Watching, socket: Subscriber, actor: Actor
    ) -> None:
        self._service = service
        self._watching = watching
        self._actor = actor
        self._party = presence_party(actor)
        self._viewer: Viewer | None = watching.joined(socket, actor)

    def arrive(self) -> None:
        if self._party is not None:
            self._service.hub.presence.arrived(self._party)

    def depart(self) -> None:
        if self._viewer is not None:
            self._watching.left(self._viewer)
            self._viewer = None
        if self._party is not None:
            self._service.hub.presence.left(self._party)
            self._party = None

    def answered(self, frame: f.ClientFrame, reply: Any) -> str | None:
        """The socket's `frame` was carried out with `reply` (not an error): the chat it
        names is in view now. O(1), and no look-up, for a chat in view already (every `send`
        but a chat's first on this socket); else the chat, for `bring_into_view`."""
        viewer = self._viewer
        if viewer is None:
            return None
        chat: str | None
        if isinstance(reply, f.Ack):  # first: every `send`
            chat = reply.chat  # send, open, and the returns' buttons
        elif isinstance(frame, f.History | f.Read | f.Attachments | f.Search):
            chat = frame.chat
        elif isinstance(reply, f.ChatsPage):
            self._watching.see_page(viewer, reply.chats)
            return None
        else:
            return None
        if chat is None or viewer.touch(chat):
            return None
        return chat

    async def bring_into_view(self, chat: str) -> None:
        """`chat`, which the socket may see, into its view: its parties looked up."""
        viewer = self._viewer
        try:
            parties = await self._service.states.parties(chat)
        except Exception:
            # The frame was answered already; the chat comes into view at its next one.
            log.exception("looking up the parties of %s failed", chat)
            return
        if viewer is not None and parties is not None:
            self._watching.see(viewer, chat, *parties)

    async def typing(self, frame: f.Typing) -> Rejection | None:
        """Passes the frame on (None), drops it for coming within 2 s of the last one passed
        on in its chat (None too: no answer either way), or says why not."""
        viewer = self._viewer
        now = time.monotonic()
        if viewer is not None and not viewer.typing_due(frame.chat, now):
            return None
        state = await self._service.typing(self._actor, frame.chat)
        if isinstance(state, Rejection):
            return state
        if viewer is not None:
            self._watching.see(viewer, frame.chat, state.buyer.id, state.seller.id)
            viewer.typed(frame.chat, now)
        return None
