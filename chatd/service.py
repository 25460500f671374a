"""The one path every command takes, from a socket or from HTTP:

    authorize -> load stream state -> domain.decide -> store.append -> result -> hub.publish

This is the only module that writes: it sees the store, the hub and the domain together and
returns domain results (`Done`, `Rejection`); the web layer owns the sockets. The read
answers are `ChatViews` (chatd.views), which the service holds as `views`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chatd import cursor
from chatd.domain import commands as cmd
from chatd.domain import policy
from chatd.domain.access import side_of
from chatd.domain.actors import Actor, system_author
from chatd.domain.decide import decide
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame, not_found
from chatd.domain.ids import chat_id, claim_id, order_stream
from chatd.domain.model import ChatState
from chatd.domain.orders import photo_problem
from chatd.domain.returns import overlong, role_refusal, text_refusal
from chatd.domain.rules import Rules
from chatd.files import FileRefused, FileStore, Upload
from chatd.hub.base import EventOut, Hub, Outgoing, ReadOut
from chatd.keyed_lock import KeyedLocks
from chatd.operators import Operators
from chatd.projection import chat_rows, order_rows
from chatd.routing import (
    MARKETPLACE,
    RoutingKey,
    audiences_of,
    buyer_key,
    keys_of,
    receivers,
    shop_key,
    uploader_key,
)
from chatd.states import ChatStates
from chatd.store.base import AppendRequest, Audience, Conflict, EventStore, Stored
from chatd.views import ChatViews
from protocol.codes import ErrorCode
from protocol.events import Attachment, GoodsState, OrderCard, OrderRegistered, Party
from protocol.frames import ReadMark, TypingNotice

log = logging.getLogger(__name__)

# How often a command is decided again after another node appended to its chat first. Two
# nodes writing into one chat at once each lose about every other race; with 5 tries a
# send lost five in a row several times in a hundred under such load and was refused with
# `conflict` (`python -m chatd.proof.races`). Each retry waits a little, at random, so that
# the nodes fall out of step; 40 tries end only under contention nothing could serve.
_MAX_RETRIES = 40
_RETRY_PAUSE = 0.002  # seconds, times the try's number, at most


def utc_now() -> datetime:
    return datetime.now(UTC)


# The letter of each role in a user key; a seller's key also names the shop.
_ROLE_KEYS = {"buyer": "b", "manager": "m", "system": "sys"}


def user_key(actor: Actor) -> str:
    """The one name of a user for everything kept per user (nonces, connection caps, rate
    buckets). A token's `sub` alone names nobody: buyer `42` and operator `42` of a shop are
    two people, and so are operators `42` of two shops. `b:42`, `s:shopA:42`, `m:42`; a `:`
    or `%` in a shop id is escaped so that no two (shop, sub) pairs spell the same key."""
    if actor.role == "seller":
        shop = (actor.shop or "").replace("%", "%25").replace(":", "%3A")
        return f"s:{shop}:{actor.id}"
    return f"{_ROLE_KEYS[actor.role]}:{actor.id}"


# Who acts when a deadline passes: the server itself, for the marketplace (`deadline` in
# chatd.domain.policy). Its events are authored by the marketplace like every system event.
DEADLINES = Actor(role="system", id="deadlines", name="deadlines")


@dataclass(frozen=True, slots=True)
class Done:
    """A command was carried out: the first event it appended (or the one it stands for)."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None
    # A repeated nonce: nothing was appended, and this is the first answer again.
    repeated: bool = False


Outcome = Done | Rejection


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
        self._shared_log = shared_log
        self.states = ChatStates(store, size=cache_size, shared_log=shared_log)
        self.views = ChatViews(store, self.states, rules, files, presence=hub.presence)
        self.operators = Operators(store, clock)
        self._locks = KeyedLocks()

    @property
    def log_id(self) -> str:
        return self.store.log_id

    def now(self) -> datetime:
        return self._clock()

    def cursor(self, pos: int) -> str:
        return cursor.make(self.store.log_id, pos)

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
            tries = 0
            for _ in range(_MAX_RETRIES):
                state = await self.states.get(chat)
                command = make(state)
                if isinstance(command, Rejection):
                    return command
                events = decide(state, command, self.now(), self.rules)
                if isinstance(events, Rejection):
                    return events
                if not events:
                    return await self._existing(chat)
                # The state after the events and their projection rows, in one pass.
                after, rows = chat_rows(state, events)
                assert after is not None
                audiences = audiences_of(after)
                request = AppendRequest(
                    stream=after.chat,
                    expected_seq=state.seq if state is not None else 0,
                    events=events,
                    audiences=audiences,
                    rows=rows,
                    nonce=nonce,
                )
                # From here on the command must not be cancelled: the store may commit what
                # it was handed even so, and only this command publishes it to the sockets.
                # Deadlines give up on a command's answer, never on its work
                # (chatd.web.frame_watch, chatd.web.http_deadline).
                try:
                    appended = await self.store.append(request)
                except Conflict:
                    # Another process wrote to the chat: decide again on what it wrote. With
                    # a shared log the cached state catches up from the store by itself (a
                    # read of the new events, not of the whole chat); else it is forgotten.
                    if not self._shared_log:
                        self.states.forget(chat)
                    tries += 1
                    await asyncio.sleep(random.uniform(0, _RETRY_PAUSE * tries))
                    continue
                if appended.duplicate:
                    return Done(
                        appended.stream, appended.seq, self.cursor(appended.pos), repeated=True
                    )
                self.states.remember(after)
                await self._publish(appended.events, after.chat, audiences)
                first = appended.events[0]
                return Done(chat, first.event.seq, self.cursor(first.pos), claim=claim)
            return Rejection(ErrorCode.CONFLICT, "the chat is too busy; try again")

        return await self._locks.run(chat, attempt)

    async def _existing(self, chat: str) -> Done:
        first = await self.store.read_stream(chat, after=0, before=2)
        return Done(chat, 1, self.cursor(first[0].pos))

    async def _publish(
        self, stored: list[Stored], chat: str, audiences: tuple[Audience, ...]
    ) -> None:
        # Each event to the keys the feed gives it to (a note never to the buyer's); a run of
        # events with the same keys, which is every append but the rarest, in one publish.
        runs: list[tuple[tuple[str, ...], list[Outgoing]]] = []
        for item in stored:
            keys = receivers(audiences, item.event)
            if not runs or runs[-1][0] != keys:
                runs.append((keys, []))
            runs[-1][1].append(EventOut(item, self.store.log_id))
        for keys, items in runs:
            try:
                await self.hub.publish(items, keys)
            except Exception:
                # The events are committed; clients that missed them catch up with their cursor.
                log.exception("publishing %d events of %s failed", len(items), chat)

    # ---- chats and messages ------------------------------------------------------------------

    async def _party(self, key: RoutingKey, ident: str) -> Party:
        name = await self.store.party_name(key)
        return Party(id=ident, name=name or ident)

    async def open_chat(self, actor: Actor, seller: str, order_id: str | None) -> Outcome:
        refused = policy.check(actor, "open")
        if refused is not None:
            return refused
        order: OrderCard | None = None
        if order_id is not None:
            order = await self.views.order(order_id)
            if order is None or order.buyer.id != actor.id or order.seller.id != seller:
                return not_found("order")
        buyer = await self._party(buyer_key(actor.id), actor.id)
        shop = await self._party(shop_key(seller), seller)
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
        refused = policy.check(actor, "send")
        if refused is not None:
            # Before any look-up: the answer must not tell a foreign chat from a missing one.
            return refused
        attachments = await self._uploads_of(actor, attachment_ids)
        if isinstance(attachments, Rejection):
            return attachments

        def make(state: ChatState | None) -> cmd.Command | Rejection:
            return cmd.PostMessage(actor=actor, text=text, attachments=attachments)

        # Per user key, not per `sub`: a nonce of operator 42 of a shop is not buyer 42's.
        key = (user_key(actor), nonce) if nonce is not None else None
        return await self._execute(chat, make, nonce=key)

    async def mark_read(self, actor: Actor, chat: str, seq: int) -> Rejection | None:
        state = await self.states.visible(actor, chat, "read")
        if isinstance(state, Rejection):
            return state
        if seq > state.seq and self._locks.held(chat):
            # A command on the chat may have committed events it has not yet put in the cache:
            # a reconnecting socket's replay reads the log itself and can show them first, and
            # its client marks them read. Once the command lets go of the chat they are there.
            state = await self._locks.run(chat, lambda: self.states.visible(actor, chat, "read"))
            if isinstance(state, Rejection):
                return state
        side = side_of(state, actor)
        assert side is not None, "the policy lets only the chat's two sides keep read marks"
        if seq > state.seq:
            return bad_frame(f"seq {seq} is past the chat's last event ({state.seq})")
        mark = await self.store.set_read_mark(chat, side, seq)
        frame = ReadMark(chat=chat, side=side, seq=mark)
        keys = (buyer_key(state.buyer.id), shop_key(state.seller.id))
        await self.hub.publish([ReadOut(frame)], keys)
        return None

    # ---- the shop's own work: assignment and notes --------------------------------------------

    async def assign(self, actor: Actor, chat: str, operator: str | None) -> Outcome:
        """Gives the chat to `operator` of the actor's shop (None: to nobody). The chat is
        checked before the operator is looked up, so a foreign chat is `not_found` alike
        whoever it names; an operator the shop is not known to have is `not_found` too."""
        refused = policy.check(actor, "assign")
        if refused is not None:
            return refused
        visible = await self.states.visible(actor, chat, "assign")
        if isinstance(visible, Rejection):
            return visible
        target = await self.operators.resolve(actor, operator)
        if isinstance(target, Rejection):
            return target
        command = cmd.AssignChat(actor=actor, operator=target)
        return await self._execute(chat, lambda _state: command)

    async def note(self, actor: Actor, chat: str, text: str, nonce: str | None) -> Outcome:
        """A private note of the shop's. Its nonce is kept with the messages' (one user,
        one nonce, whichever frame carried it first)."""
        refused = policy.check(actor, "note")
        if refused is not None:
            return refused
        command = cmd.PostNote(actor=actor, text=text)
        key = (user_key(actor), nonce) if nonce is not None else None
        return await self._execute(chat, lambda _state: command, nonce=key)

    # ---- typing: relayed, never stored ----------------------------------------------------------

    async def typing(self, actor: Actor, chat: str) -> ChatState | Rejection:
        """Tells the other side of `chat` that `actor` is typing (through the hub, to every
        node; nothing is written); the chat's state, or why not. The buyer is named as the
        chat names them, an operator by their own name, as in `author.operator`. How often a
        socket may do this is the socket's business (chatd.web.socket_view)."""
        refused = policy.check(actor, "typing")
        if refused is not None:
            return refused
        state = await self.states.visible(actor, chat, "typing")
        if isinstance(state, Rejection):
            return state
        side = side_of(state, actor)
        assert side is not None, "the policy lets only the chat's two sides type in it"
        name = state.buyer.name if side == "buyer" else actor.name
        try:
            await self.hub.typing(TypingNotice(chat=chat, side=side, name=name))
        except Exception:
            # Nothing to catch up on: a typing notice lost is lost, and the next one follows.
            log.exception("relaying typing in %s failed", chat)
        return state

    # ---- returns -----------------------------------------------------------------------------

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
        visible = await self.states.visible(actor, chat, policy.COMMAND_ACTIONS[command_type])
        if isinstance(visible, Rejection):
            return visible
        order = await self.views.order(order_id)
        if order is None:
            return not_found("order")
        return await self._execute(chat, lambda _s: build(order), claim=claim_id(order_id))

    async def _uploads_of(
        self, actor: Actor, ids: list[str] | None
    ) -> tuple[Attachment, ...] | Rejection:
        """The files `actor` uploaded under these ids, to be sent; `not_found` for any other."""
        if not ids:
            return ()
        owner = keys_of(actor)
        if self.files is None or not owner:
            return not_found("file")
        return await self.files.describe(ids, owner[0])

    async def request_return(
        self,
        actor: Actor,
        chat: str,
        order: str,
        comment: str | None = None,
        attachment_ids: list[str] | None = None,
    ) -> Outcome:
        refused = text_refusal("comment", comment, self.rules.max_comment)
        if refused is not None:
            return refused
        attachments: tuple[Attachment, ...] = ()
        if attachment_ids:
            # As for `send`: the role first, then files only the buyer uploaded.
            refused = role_refusal(cmd.RequestReturn, actor)
            if refused is not None:
                return refused
            found = await self._uploads_of(actor, attachment_ids)
            if isinstance(found, Rejection):
                return found
            attachments = found
        return await self._order_command(
            actor,
            chat,
            order,
            lambda card: cmd.RequestReturn(
                actor=actor, order=card, comment=comment, attachments=attachments
            ),
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
        refused = overlong(command, self.rules) or role_refusal(type(command), command.actor)
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

    async def withdraw_return(self, command: cmd.WithdrawReturn) -> Outcome:
        return await self._claim_command(command.claim, command)

    # ---- deadlines: what the server itself does when a claim's wait ends ----------------------

    async def escalate_claim(self, claim: str) -> Outcome:
        """The shop's deadline for deciding on `claim` has passed: the managers take it over.
        Refused (`conflict`) when the claim no longer waits or is not due yet, so a deadline
        fired twice, or by two nodes at once, appends one `return.escalated`."""
        return await self._claim_command(claim, cmd.EscalateClaim(actor=DEADLINES, claim=claim))

    async def expire_offer(self, claim: str) -> Outcome:
        """The buyer's deadline for taking up the shop's offer has passed: the offer ends.
        Refused like `escalate_claim` when the offer no longer waits or is not due yet."""
        return await self._claim_command(claim, cmd.ExpireOffer(actor=DEADLINES, claim=claim))

    async def report_logistics(
        self, actor: Actor, order_id: str, step: GoodsState, defect: bool
    ) -> Outcome:
        claim = claim_id(order_id)
        command = cmd.ReportLogistics(actor=actor, claim=claim, step=step, defect=defect)
        return await self._claim_command(claim, command)

    # ---- orders ------------------------------------------------------------------------------

    async def register_order(self, actor: Actor, card: OrderCard) -> tuple[int, OrderCard]:
        """Registers an order; (201, card) when new, (200, card) for the same body again.

        Raises OrderMismatch for another body under an id already registered, and
        OrderRefused for a new order whose photo is no image the marketplace uploaded.
        """
        refused = policy.check(actor, "register_order")
        if refused is not None:
            raise PermissionError(refused.message)
        stream = order_stream(card.id)
        for _ in range(_MAX_RETRIES):
            existing = await self.views.order(card.id)
            if existing is not None:
                if existing == card:
                    return 200, existing
                raise OrderMismatch(card.id)
            photo = await self._order_photo(card)
            author = system_author(self.rules.marketplace)
            registered = OrderRegistered(order=card, photo=photo)
            events = stamp(stream, 0, self.now(), [Draft(registered, author)])
            request = AppendRequest(
                stream=stream, expected_seq=0, events=events, rows=order_rows(events)
            )
            try:
                await self.store.append(request)
            except Conflict:
                continue
            return 201, card
        raise OrderMismatch(card.id)

    async def _order_photo(self, card: OrderCard) -> Attachment | None:
        """The file a new order names as its photo. OrderRefused unless it is a JPEG or PNG
        the marketplace itself uploaded (chatd.domain.orders), so that no order can show,
        or hand its buyer and shop, a file of someone else's."""
        if card.photo is None:
            return None
        upload = await self.files.get(card.photo) if self.files is not None else None
        mine = upload if upload is not None and upload.owner == MARKETPLACE else None
        problem = photo_problem(card.photo, mine.mime if mine is not None else None)
        if problem is not None:
            raise OrderRefused(problem)
        assert mine is not None and self.files is not None
        # Before the append, as a `send` does: once the order is registered, the quota finds
        # the photo kept and counts it no more.
        await self.files.offer(MARKETPLACE, [mine.id])
        return mine.attachment()

    # ---- files -------------------------------------------------------------------------------

    async def upload(
        self, actor: Actor, data: bytes, name: str | None
    ) -> Upload | FileRefused | Rejection:
        refused = policy.check(actor, "upload")
        if refused is not None:
            return refused
        if self.files is None:
            return Rejection(ErrorCode.UNAVAILABLE, "this server keeps no files")
        return await self.files.save(data, name, uploader_key(actor))


class OrderMismatch(Exception):
    def __init__(self, order: str) -> None:
        super().__init__(f"order {order} is already registered with another body")
        self.order = order


class OrderRefused(Exception):
    """An order that names what it may not (a photo that is no image of the marketplace's):
    nothing of it is kept. The message says what, for the error's `message`."""
