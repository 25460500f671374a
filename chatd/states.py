"""The chats' current states, folded from their streams and kept in a bounded cache.

The write path decides every command against a state from here, and the reads check
visibility against it. Alone on the log, every append passes through this process, which
keeps the cache exact. When other processes append to the same log (`shared_log`), a cached
state is brought up to date before it is used, or it would refuse what the log allows (a
claim it has not heard of yet).
"""

from __future__ import annotations

from collections import OrderedDict

from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection, not_found
from chatd.domain.evolve import evolve, fold
from chatd.domain.model import ChatState
from chatd.store.base import EventStore
from protocol.events import Kind


class ChatStates:
    def __init__(self, store: EventStore, *, size: int = 20_000, shared_log: bool = False) -> None:
        self._store = store
        self._cache: OrderedDict[str, ChatState] = OrderedDict()
        self._size = size
        self._shared_log = shared_log

    async def get(self, chat: str) -> ChatState | None:
        """The chat's state after its last committed event; None for no such chat."""
        state = self._cache.get(chat)
        if state is not None:
            self._cache.move_to_end(chat)
            if self._shared_log:
                newer = await self._store.read_stream(chat, after=state.seq)
                if newer:
                    for stored in newer:
                        state = evolve(state, stored.event)
                    state = self._keep(state)
            return state
        events = await self._store.read_stream(chat)
        if not events or events[0].event.kind != Kind.CHAT_OPENED:
            return None
        state = fold([s.event for s in events])
        return None if state is None else self._keep(state)

    async def parties(self, chat: str) -> tuple[str, str] | None:
        """The chat's buyer and shop ids; None for no such chat. They never change, so a
        cached state answers even when other processes append to the log (no read then)."""
        state = self._cache.get(chat)
        if state is None:
            state = await self.get(chat)
        return None if state is None else (state.buyer.id, state.seller.id)

    async def visible(
        self, actor: Actor, chat: str, action: policy.Action
    ) -> ChatState | Rejection:
        """The state of a chat on which `actor` may do `action` (an action on a chat, see
        `chatd.domain.policy`); `not_found` alike for a missing chat and for someone else's."""
        state = await self.get(chat)
        if state is None:
            return not_found("chat")
        refused = policy.check(actor, action, state)
        return refused if refused is not None else state

    def remember(self, state: ChatState) -> None:
        """Keeps a state the write path just committed."""
        self._cache[state.chat] = state
        self._cache.move_to_end(state.chat)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def _keep(self, state: ChatState) -> ChatState:
        """Keeps a state read from the log, unless the cache holds a later one: a command may
        have committed and remembered its state while the read was on its way, and the slower
        read must not undo it. The state kept."""
        cached = self._cache.get(state.chat)
        if cached is not None and cached.seq >= state.seq:
            return cached
        self.remember(state)
        return state

    def forget(self, chat: str) -> None:
        """Drops a state another process has moved past."""
        self._cache.pop(chat, None)
