"""The read answers: a user's feed, a chat's history, the chat list with unread counts and
reply deadlines, search, a chat's attachments, balances and files.

Every answer is what one actor may see: a chat that is not theirs is `not_found`, as a
missing one is, and the shop's own events (notes, assignments) are left out for whoever may
not see them (`chatd.domain.access.hidden_kinds`), who then sees gaps in `seq`. Nothing here
writes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from chatd import cursor
from chatd.domain import policy
from chatd.domain.access import hidden_kinds, sees_shop_events, side_of
from chatd.domain.actors import Actor
from chatd.domain.deadlines import claim_due, reply_due
from chatd.domain.errors import Rejection, bad_frame, not_found
from chatd.domain.ids import chat_id
from chatd.domain.returns import claim_state_label
from chatd.domain.rules import Rules
from chatd.files import FileStore, Upload
from chatd.hub.presence import Presence
from chatd.render import View, event_frame, view_of
from chatd.routing import buyer_key, keys_of, shop_key
from chatd.search_text import query_words
from chatd.states import ChatStates
from chatd.store.base import ChatListEntry, EventStore, SearchTooBroad, Stored
from protocol.events import SHOP_ONLY_KINDS, OrderCard, Party
from protocol.frames import (
    AttachmentsPage,
    ChatsPage,
    ChatSummary,
    ClaimSummary,
    FileEntry,
    HistoryPage,
    Online,
    OrderEntry,
    Results,
)

SEARCH_LIMIT = 50
# A search's bounds (protocol/DECISIONS.md, "Search"): every word is one more prefix FTS
# expands over the whole index, and a one-letter prefix expands to nearly all of it.
SEARCH_MAX_WORDS = 8
SEARCH_MIN_WORD = 2
_card_decoder = msgspec.msgpack.Decoder(OrderCard)


def search_words(query: str) -> list[str]:
    """The words a search looks for: each once, and a one-letter word only when it is the
    whole query (beside other words it narrows almost nothing and costs the most)."""
    words = list(dict.fromkeys(query_words(query)))
    if len(words) > 1:
        words = [w for w in words if len(w) >= SEARCH_MIN_WORD]
    return words


class ChatViews:
    def __init__(
        self,
        store: EventStore,
        states: ChatStates,
        rules: Rules,
        files: FileStore | None = None,
        *,
        presence: Presence | None = None,
    ) -> None:
        self.store = store
        self.states = states
        self.rules = rules
        self.files = files
        # Who is online, for the summaries' `online` (chatd.hub.presence); none: nobody.
        self.presence = presence

    def frame_of(self, stored: Stored, view: View) -> Any:
        return event_frame(stored, self.store.log_id, view)

    async def order(self, order_id: str) -> OrderCard | None:
        card = await self.store.order_card(order_id)
        return _card_decoder.decode(card) if card is not None else None

    async def feed(self, actor: Actor, after: int, limit: int) -> list[Stored]:
        """Events of every chat `actor` may see, after position `after`, in log order."""
        keys: list[str] = list(keys_of(actor))
        if not keys:
            return []
        return await self.store.read_feed(keys, after, limit)

    async def history(
        self, actor: Actor, chat: str, before: int | None, limit: int
    ) -> HistoryPage | Rejection:
        state = await self.states.visible(actor, chat, "history")
        if isinstance(state, Rejection):
            return state
        # A manager's feed starts at the dispute; the history is there in full (docs/protocol.md 2).
        page = await self.store.read_stream(
            chat, before=before, limit=limit + 1, hide_kinds=hidden_kinds(actor, state)
        )
        more = len(page) > limit
        if more:
            page = page[1:]
        view = view_of(actor.role)
        return HistoryPage(chat=chat, events=[self.frame_of(s, view) for s in page], more=more)

    async def chats(self, actor: Actor, before: str | None, limit: int) -> ChatsPage | Rejection:
        refused = policy.check(actor, "chats")
        if refused is not None:
            return refused
        keys = keys_of(actor)
        before_pos: int | None = None
        if before is not None:
            before_pos = cursor.parse(self.store.log_id, before)
            if before_pos is None:
                return bad_frame("`before` is not a page mark of this server")
        entries = await self.store.list_chats(keys[0], before_pos, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        view = view_of(actor.role)
        # Every party of the page at once: one look across the nodes, not one per chat.
        online = await self._online(entries)
        summaries = [await self._summary(actor, entry.chat, view, online) for entry in entries]
        next_page = None
        if more and entries:
            next_page = cursor.make(self.store.log_id, entries[-1].last_pos)
        return ChatsPage(chats=[s for s in summaries if s is not None], before=next_page)

    async def _online(self, entries: list[ChatListEntry]) -> frozenset[str]:
        """Those of the chats' parties (routing keys) online now."""
        if self.presence is None or not entries:
            return frozenset()
        parties = {buyer_key(e.buyer_id) for e in entries}
        parties.update(shop_key(e.seller_id) for e in entries)
        return await self.presence.online(parties)

    async def _summary(
        self, actor: Actor, chat: str, view: View, online: frozenset[str] = frozenset()
    ) -> ChatSummary | None:
        entry = await self.store.chat_entry(chat)
        state = await self.states.get(chat)
        if entry is None or state is None:
            return None
        last = await self.store.read_stream(
            chat, after=entry.last_seq - 1, before=entry.last_seq + 1
        )
        unread = 0
        side = side_of(state, actor)
        if side is not None:
            marks = await self.store.read_marks(chat)
            # Never the shop's own events, for either side: the buyer may not see them, and
            # for the shop they are its own work, not something to read.
            unread = await self.store.count_unread(
                chat, side, marks.get(side, 0), hide_kinds=SHOP_ONLY_KINDS
            )
        buyer_name = await self.store.party_name(buyer_key(entry.buyer_id)) or entry.buyer_name
        seller_name = await self.store.party_name(shop_key(entry.seller_id)) or entry.seller_name
        rules = self.rules
        claims = [
            ClaimSummary(
                claim=c.id, order=c.order.id, state=claim_state_label(c), due=claim_due(c, rules)
            )
            for c in state.claims.values()
        ]
        return ChatSummary(
            chat=chat,
            buyer=Party(id=entry.buyer_id, name=buyer_name),
            seller=Party(id=entry.seller_id, name=seller_name),
            last=self.frame_of(last[-1], view) if last else None,
            unread=unread,
            reply_due=reply_due(entry.waiting_since, state.claims.values(), rules),
            claims=claims,
            assignee=state.assignee if sees_shop_events(actor, state) else UNSET,
            online=Online(
                buyer=buyer_key(entry.buyer_id) in online,
                seller=shop_key(entry.seller_id) in online,
            ),
        )

    async def search(self, actor: Actor, query: str, chat: str | None) -> Results | Rejection:
        refused = policy.check(actor, "search")
        if refused is not None:
            return refused
        keys = keys_of(actor)
        # Without `chat`, for every chat the actor's key reaches: the policy answers alike for
        # all of them (a shop's own chats; a manager's disputed ones).
        hide = hidden_kinds(actor)
        if chat is not None:
            visible = await self.states.visible(actor, chat, "search")
            if isinstance(visible, Rejection):
                return visible
            hide = hidden_kinds(actor, visible)
        words = search_words(query)
        if not words:
            return Results(events=[])
        if len(words) > SEARCH_MAX_WORDS:
            return bad_frame(
                f"search too broad: at most {SEARCH_MAX_WORDS} words"
                f" of {SEARCH_MIN_WORD} or more letters"
            )
        try:
            found = await self.store.search(keys[0], words, chat, SEARCH_LIMIT, hide_kinds=hide)
        except SearchTooBroad:
            return bad_frame("search too broad: use more or longer words, or search one chat")
        view = view_of(actor.role)
        return Results(events=[self.frame_of(s, view) for s in found])

    async def attachments(self, actor: Actor, chat: str) -> AttachmentsPage | Rejection:
        state = await self.states.visible(actor, chat, "attachments")
        if isinstance(state, Rejection):
            return state
        orders: list[OrderEntry] = []
        for raw in await self.store.orders_between(state.buyer.id, state.seller.id):
            card = _card_decoder.decode(raw)
            claim = state.claim_for_order(card.id)
            orders.append(
                OrderEntry(
                    order=card,
                    claim=claim.id if claim else None,
                    state=claim_state_label(claim) if claim else None,
                )
            )
        photos: list[FileEntry] = []
        files: list[FileEntry] = []
        for row in await self.store.files_of_chat(chat):
            entry = FileEntry(
                id=row.file, name=row.name, mime=row.mime, size=row.size, seq=row.seq, at=row.at
            )
            (photos if row.mime.startswith("image/") else files).append(entry)
        return AttachmentsPage(chat=chat, orders=orders, photos=photos, files=files)

    async def download(self, actor: Actor, file_id: str) -> tuple[Upload, str] | Rejection:
        """A file for the buyer or shop that uploaded it, and for whoever the policy's
        `download` row lets read it: in a chat it was sent in (its participants; a manager
        once the chat is disputed), or as an order's photo (the order's buyer and shop; a
        manager once the chat between them is disputed)."""
        refused = policy.check(actor, "download")
        if refused is not None:
            return refused
        upload = await self.files.get(file_id) if self.files is not None else None
        if upload is None or self.files is None:
            return not_found("file")
        if upload.owner not in keys_of(actor) and not await self._may_read(actor, file_id):
            return not_found("file")
        return upload, str(self.files.blob_path(upload))

    async def _may_read(self, actor: Actor, file_id: str) -> bool:
        """Whether the log gives `actor` the file: through a chat it was sent in, or an order
        naming it as its photo."""
        for chat in await self.store.chats_with_file(file_id):
            state = await self.states.get(chat)
            if state is not None and policy.check(actor, "download", state) is None:
                return True
        for order_id in await self.store.orders_with_file(file_id):
            card = await self.order(order_id)
            if card is None:
                continue
            # The one chat of the order's buyer and shop: a manager may read the photo once
            # it is disputed, as the manager then sees that chat's orders.
            between = await self.states.get(chat_id(card.buyer.id, card.seller.id))
            if policy.check_order(actor, "download", card, between) is None:
                return True
        return False

    async def balance(self, actor: Actor) -> dict[str, int] | Rejection:
        refused = policy.check(actor, "balance")
        if refused is not None:
            return refused
        return await self.store.balances(keys_of(actor)[0])
