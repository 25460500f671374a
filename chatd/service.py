"""The one path every command takes, from a socket or from HTTP:

    authorize -> load stream state -> domain.decide -> store.append -> result -> hub.publish

This is the only module that sees the store, the hub and the domain together. It returns
domain results (`Done`, `Rejection`) and reply frames; the web layer owns the sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from chatd import cursor
from chatd.domain import commands as cmd
from chatd.domain.access import first_visible_seq, side_of
from chatd.domain.actors import Actor, system_author
from chatd.domain.decide import decide
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame, forbidden, not_found
from chatd.domain.evolve import evolve, fold
from chatd.domain.ids import chat_id, claim_id, order_stream
from chatd.domain.model import ChatState
from chatd.domain.returns import claim_state_label, role_refusal
from chatd.domain.rules import Rules
from chatd.files import FileRefused, FileStore, Upload
from chatd.hub.base import EventOut, Hub, Outgoing, ReadOut
from chatd.projection import for_chat, order_rows
from chatd.render import View, event_frame, view_of
from chatd.search_text import query_words
from chatd.store.base import AppendRequest, Audience, Conflict, EventStore, Stored
from protocol.codes import ErrorCode
from protocol.events import Attachment, GoodsState, OrderCard, OrderRegistered, Party
from protocol.frames import (
    AttachmentsPage,
    ChatsPage,
    ChatSummary,
    ClaimSummary,
    FileEntry,
    HistoryPage,
    OrderEntry,
    ReadMark,
    Results,
)

log = logging.getLogger(__name__)

_card_decoder = msgspec.msgpack.Decoder(OrderCard)
_MAX_RETRIES = 5
T = TypeVar("T")
SEARCH_LIMIT = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Done:
    """A command was carried out: the first event it appended (or the one it stands for)."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None


Outcome = Done | Rejection


def keys_of(actor: Actor) -> tuple[str, ...]:
    """The routing keys whose events `actor` may see."""
    if actor.role == "buyer":
        return ("b:" + actor.id,)
    if actor.role == "seller":
        return ("s:" + (actor.shop or ""),)
    if actor.role == "manager":
        return ("m",)
    return ()


def audiences_of(state: ChatState) -> tuple[Audience, ...]:
    audiences = [Audience("b:" + state.buyer.id), Audience("s:" + state.seller.id)]
    if state.managers_from is not None:
        audiences.append(Audience("m", state.managers_from))
    return tuple(audiences)


class _KeyedLocks:
    """One lock per chat while anyone holds or waits for it: commands on one chat queue up
    instead of racing to the same seq. The store still settles races between processes."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextmanager
    def _count(self, key: str) -> Iterator[asyncio.Lock]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            yield lock
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        with self._count(key) as lock:
            async with lock:
                return await work()


class ChatService:
    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        rules: Rules,
        *,
        files: FileStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        cache_size: int = 20_000,
        shared_log: bool = False,
    ) -> None:
        self.store = store
        self.hub = hub
        self.rules = rules
        self.files = files
        self._clock = clock
        self._cache: OrderedDict[str, ChatState] = OrderedDict()
        self._cache_size = cache_size
        # Other processes append to the same log: a cached state is brought up to date
        # before it is used, or it would refuse what the log allows (a claim it has not
        # heard of yet). Alone on the log, every append passes through this cache.
        self._shared_log = shared_log
        self._locks = _KeyedLocks()

    @property
    def log_id(self) -> str:
        return self.store.log_id

    def now(self) -> datetime:
        return self._clock()

    def cursor(self, pos: int) -> str:
        return cursor.make(self.store.log_id, pos)

    # ---- state -------------------------------------------------------------------------------

    async def state(self, chat: str) -> ChatState | None:
        state = self._cache.get(chat)
        if state is not None:
            self._cache.move_to_end(chat)
            if self._shared_log:
                newer = await self.store.read_stream(chat, after=state.seq)
                if newer:
                    for stored in newer:
                        state = evolve(state, stored.event)
                    self._remember(state)
            return state
        events = await self.store.read_stream(chat)
        if not events or events[0].event.kind != "chat.opened":
            return None
        state = fold([s.event for s in events])
        if state is not None:
            self._remember(state)
        return state

    def _remember(self, state: ChatState) -> None:
        self._cache[state.chat] = state
        self._cache.move_to_end(state.chat)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def visible_state(self, actor: Actor, chat: str) -> ChatState | Rejection:
        state = await self.state(chat)
        if state is None or first_visible_seq(state, actor) is None:
            return not_found("chat")
        return state

    # ---- the write path ----------------------------------------------------------------------

    async def _execute(
        self,
        chat: str,
        make: Callable[[ChatState | None], cmd.Command | Rejection],
        *,
        nonce: tuple[str, str] | None = None,
        claim: str | None = None,
    ) -> Outcome:
        async def attempt() -> Outcome:
            for _ in range(_MAX_RETRIES):
                state = await self.state(chat)
                command = make(state)
                if isinstance(command, Rejection):
                    return command
                events = decide(state, command, self.now(), self.rules)
                if isinstance(events, Rejection):
                    return events
                if not events:
                    return await self._existing(chat)
                after = state
                for event in events:
                    after = evolve(after, event)
                assert after is not None
                request = AppendRequest(
                    stream=after.chat,
                    expected_seq=state.seq if state is not None else 0,
                    events=events,
                    audiences=audiences_of(after),
                    project=for_chat(state),
                    nonce=nonce,
                )
                try:
                    appended = await self.store.append(request)
                except Conflict:
                    # Another process wrote to the chat: forget what we knew and decide again.
                    self._cache.pop(chat, None)
                    continue
                if appended.duplicate:
                    return Done(appended.stream, appended.seq, self.cursor(appended.pos))
                self._remember(after)
                await self._publish(appended.events, after)
                first = appended.events[0]
                return Done(chat, first.event.seq, self.cursor(first.pos), claim=claim)
            return Rejection(ErrorCode.CONFLICT, "the chat is too busy; try again")

        return await self._locks.run(chat, attempt)

    async def _existing(self, chat: str) -> Done:
        first = await self.store.read_stream(chat, after=0, before=2)
        return Done(chat, 1, self.cursor(first[0].pos))

    async def _publish(self, stored: list[Stored], state: ChatState) -> None:
        keys = tuple(a.key for a in audiences_of(state))
        items: list[Outgoing] = [EventOut(s, self.store.log_id) for s in stored]
        try:
            await self.hub.publish(items, keys)
        except Exception:
            # The events are committed; clients that missed them catch up with their cursor.
            log.exception("publishing %d events of %s failed", len(items), state.chat)

    # ---- chats and messages ------------------------------------------------------------------

    async def _party(self, key: str, ident: str) -> Party:
        name = await self.store.party_name(key)
        return Party(id=ident, name=name or ident)

    async def open_chat(self, actor: Actor, seller: str, order_id: str | None) -> Outcome:
        if actor.role != "buyer":
            return forbidden("only a buyer opens a chat")
        order: OrderCard | None = None
        if order_id is not None:
            order = await self.order(order_id)
            if order is None or order.buyer.id != actor.id or order.seller.id != seller:
                return not_found("order")
        buyer = await self._party("b:" + actor.id, actor.id)
        shop = await self._party("s:" + seller, seller)
        command = cmd.OpenChat(actor=actor, buyer=buyer, seller=shop, order=order)
        return await self._execute(chat_id(actor.id, seller), lambda _state: command)

    async def send(
        self,
        actor: Actor,
        chat: str,
        text: str,
        attachment_ids: list[str],
        nonce: str | None,
    ) -> Outcome:
        if actor.role not in ("buyer", "seller"):
            # Before any look-up: the answer must not tell a foreign chat from a missing one.
            return forbidden("only the buyer and the shop write in a chat")
        attachments: tuple[Attachment, ...] = ()
        if attachment_ids:
            owner = keys_of(actor)
            if self.files is None or not owner:
                return not_found("file")
            found = await self.files.describe(attachment_ids, owner[0])
            if isinstance(found, Rejection):
                return found
            attachments = found

        def make(state: ChatState | None) -> cmd.Command | Rejection:
            return cmd.PostMessage(actor=actor, text=text, attachments=attachments)

        key = (actor.id, nonce) if nonce is not None else None
        return await self._execute(chat, make, nonce=key)

    async def mark_read(self, actor: Actor, chat: str, seq: int) -> Rejection | None:
        state = await self.visible_state(actor, chat)
        if isinstance(state, Rejection):
            return state
        side = side_of(state, actor)
        if side is None:
            return forbidden("only the buyer and the shop keep read marks")
        if seq > state.seq:
            return bad_frame(f"seq {seq} is past the chat's last event ({state.seq})")
        mark = await self.store.set_read_mark(chat, side, seq)
        frame = ReadMark(chat=chat, side=side, seq=mark)
        keys = ("b:" + state.buyer.id, "s:" + state.seller.id)
        await self.hub.publish([ReadOut(frame)], keys)
        return None

    # ---- returns -----------------------------------------------------------------------------

    async def order(self, order_id: str) -> OrderCard | None:
        card = await self.store.order_card(order_id)
        return _card_decoder.decode(card) if card is not None else None

    async def _order_command(
        self,
        actor: Actor,
        chat: str,
        order_id: str,
        build: Callable[[OrderCard], cmd.ReturnCommand],
        command_type: type[cmd.ReturnCommand],
    ) -> Outcome:
        refused = role_refusal(command_type, actor)
        if refused is not None:
            return refused
        visible = await self.visible_state(actor, chat)
        if isinstance(visible, Rejection):
            return visible
        order = await self.order(order_id)
        if order is None:
            return not_found("order")
        return await self._execute(chat, lambda _s: build(order), claim=claim_id(order_id))

    async def request_return(self, actor: Actor, chat: str, order: str) -> Outcome:
        return await self._order_command(
            actor,
            chat,
            order,
            lambda card: cmd.RequestReturn(actor=actor, order=card),
            cmd.RequestReturn,
        )

    async def initiate_return(self, actor: Actor, chat: str, order: str) -> Outcome:
        return await self._order_command(
            actor,
            chat,
            order,
            lambda card: cmd.InitiateReturn(actor=actor, order=card),
            cmd.InitiateReturn,
        )

    async def _claim_command(self, claim: str, command: cmd.ReturnCommand) -> Outcome:
        refused = role_refusal(type(command), command.actor)
        if refused is not None:
            return refused
        chat = await self.store.chat_of_claim(claim)
        if chat is None:
            return not_found("claim")
        return await self._execute(chat, lambda _s: command, claim=claim)

    async def approve_return(self, command: cmd.ApproveReturn) -> Outcome:
        return await self._claim_command(command.claim, command)

    async def reject_return(self, command: cmd.RejectReturn) -> Outcome:
        return await self._claim_command(command.claim, command)

    async def dispute_return(self, command: cmd.DisputeReturn) -> Outcome:
        return await self._claim_command(command.claim, command)

    async def resolve_return(self, command: cmd.ResolveReturn) -> Outcome:
        if command.decision == "approve" and command.mode is None:
            return bad_frame("`mode` is required to approve")
        return await self._claim_command(command.claim, command)

    async def report_logistics(
        self, actor: Actor, order_id: str, step: GoodsState, defect: bool
    ) -> Outcome:
        claim = claim_id(order_id)
        command = cmd.ReportLogistics(actor=actor, claim=claim, step=step, defect=defect)
        return await self._claim_command(claim, command)

    # ---- orders ------------------------------------------------------------------------------

    async def register_order(self, actor: Actor, card: OrderCard) -> tuple[int, OrderCard]:
        """Registers an order; (201, card) when new, (200, card) for the same body again.

        Raises OrderMismatch for another body under an id already registered.
        """
        if actor.role != "system":
            raise PermissionError("only the marketplace back end registers orders")
        stream = order_stream(card.id)
        for _ in range(_MAX_RETRIES):
            existing = await self.order(card.id)
            if existing is not None:
                if existing == card:
                    return 200, existing
                raise OrderMismatch(card.id)
            author = system_author(self.rules.marketplace)
            events = stamp(stream, 0, self.now(), [Draft(OrderRegistered(order=card), author)])
            request = AppendRequest(
                stream=stream, expected_seq=0, events=events, project=order_rows
            )
            try:
                await self.store.append(request)
            except Conflict:
                continue
            return 201, card
        raise OrderMismatch(card.id)

    # ---- reads -------------------------------------------------------------------------------

    async def feed(self, actor: Actor, after: int, limit: int) -> list[Stored]:
        keys = list(keys_of(actor))
        if not keys:
            return []
        return await self.store.read_feed(keys, after, limit)

    def frame_of(self, stored: Stored, view: View) -> Any:
        return event_frame(stored, self.store.log_id, view)

    async def history(
        self, actor: Actor, chat: str, before: int | None, limit: int
    ) -> HistoryPage | Rejection:
        state = await self.visible_state(actor, chat)
        if isinstance(state, Rejection):
            return state
        # A manager's feed starts at the dispute; the history is there in full (PROTOCOL.md 2).
        page = await self.store.read_stream(chat, before=before, limit=limit + 1)
        more = len(page) > limit
        if more:
            page = page[1:]
        view = view_of(actor.role)
        return HistoryPage(chat=chat, events=[self.frame_of(s, view) for s in page], more=more)

    async def chats(self, actor: Actor, before: str | None, limit: int) -> ChatsPage | Rejection:
        keys = keys_of(actor)
        if not keys:
            return forbidden("this role has no chat list")
        before_pos: int | None = None
        if before is not None:
            before_pos = cursor.parse(self.store.log_id, before)
            if before_pos is None:
                return bad_frame("`before` is not a page mark of this server")
        entries = await self.store.list_chats(keys[0], before_pos, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        view = view_of(actor.role)
        summaries = [await self._summary(actor, entry.chat, view) for entry in entries]
        next_page = self.cursor(entries[-1].last_pos) if more and entries else None
        return ChatsPage(chats=[s for s in summaries if s is not None], before=next_page)

    async def _summary(self, actor: Actor, chat: str, view: View) -> ChatSummary | None:
        entry = await self.store.chat_entry(chat)
        state = await self.state(chat)
        if entry is None or state is None:
            return None
        last = await self.store.read_stream(
            chat, after=entry.last_seq - 1, before=entry.last_seq + 1
        )
        unread = 0
        side = side_of(state, actor)
        if side is not None:
            marks = await self.store.read_marks(chat)
            unread = await self.store.count_unread(chat, side, marks.get(side, 0))
        buyer_name = await self.store.party_name("b:" + entry.buyer_id) or entry.buyer_name
        seller_name = await self.store.party_name("s:" + entry.seller_id) or entry.seller_name
        reply_due = (
            entry.waiting_since + self.rules.reply_window
            if entry.waiting_since is not None
            else None
        )
        claims = [
            ClaimSummary(claim=c.id, order=c.order.id, state=claim_state_label(c))
            for c in state.claims.values()
        ]
        return ChatSummary(
            chat=chat,
            buyer=Party(id=entry.buyer_id, name=buyer_name),
            seller=Party(id=entry.seller_id, name=seller_name),
            last=self.frame_of(last[-1], view) if last else None,
            unread=unread,
            reply_due=reply_due,
            claims=claims,
        )

    async def search(self, actor: Actor, query: str, chat: str | None) -> Results | Rejection:
        keys = keys_of(actor)
        if not keys:
            return forbidden("this role cannot search")
        if chat is not None:
            visible = await self.visible_state(actor, chat)
            if isinstance(visible, Rejection):
                return visible
        words = query_words(query)
        if not words:
            return Results(events=[])
        found = await self.store.search(keys[0], words, chat, SEARCH_LIMIT)
        view = view_of(actor.role)
        return Results(events=[self.frame_of(s, view) for s in found])

    async def attachments(self, actor: Actor, chat: str) -> AttachmentsPage | Rejection:
        state = await self.visible_state(actor, chat)
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

    # ---- files -------------------------------------------------------------------------------

    async def upload(
        self, actor: Actor, data: bytes, name: str | None
    ) -> Upload | FileRefused | Rejection:
        if actor.role not in ("buyer", "seller"):
            return forbidden("only buyers and shops upload files")
        if self.files is None:
            return Rejection(ErrorCode.UNAVAILABLE, "this server keeps no files")
        return await self.files.save(data, name, keys_of(actor)[0])

    async def download(self, actor: Actor, file_id: str) -> tuple[Upload, str] | Rejection:
        """A file for its uploader and for whoever may see a chat it was sent in."""
        upload = await self.files.get(file_id) if self.files is not None else None
        if upload is None or self.files is None:
            return not_found("file")
        if upload.owner not in keys_of(actor):
            for chat in await self.store.chats_with_file(file_id):
                state = await self.state(chat)
                if state is not None and first_visible_seq(state, actor) is not None:
                    break
            else:
                return not_found("file")
        return upload, str(self.files.blob_path(upload))

    async def balance(self, actor: Actor) -> dict[str, int] | Rejection:
        if actor.role == "buyer":
            return await self.store.balances("b:" + actor.id)
        if actor.role == "seller":
            return await self.store.balances("s:" + (actor.shop or ""))
        return forbidden("only buyers and shops have a balance")


class OrderMismatch(Exception):
    def __init__(self, order: str) -> None:
        super().__init__(f"order {order} is already registered with another body")
        self.order = order
