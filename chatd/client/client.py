"""`ChatClient`: typed requests and replies matched by `id`, the stream of pushed frames, and
delivery that survives reconnects (see `connect`).

>>> import asyncio
>>> async def main(url: str, token: str) -> None:
...     async with connect(url, token) as chat:
...         opened = await chat.open("shop-1")
...         await chat.send(opened.chat, "Здравствуйте!")
...         async for event in chat.events():
...             print(event.seq, event.kind, event.text)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from chatd.client.connection import (
    Backoff,
    Dropped,
    Link,
    LinkOptions,
    TokenProvider,
)
from chatd.client.errors import (
    ChatError,
    ClientError,
    ConnectionLost,
    CursorLost,
    ProtocolViolation,
)
from protocol import frames as f
from protocol.codec import Subprotocol
from protocol.codes import ErrorCode
from protocol.events import DATA_TYPES, Decision, Money, ReturnMode, parse_data

log = logging.getLogger(__name__)

# What the server pushes without being asked, in the order it arrived.
Pushed = (
    f.Welcome | f.EventFrame | f.Synced | f.ReadMark | f.Error | f.TypingNotice | f.PresenceChange
)

# Requests that may be sent again when the socket drops before their answer: reading ones,
# `open` (one chat per buyer and shop), `assign` (the chat ends with the same operator, the
# press merely logged twice), and `send` and `note` with a nonce (the server acks the
# original).
_REPEATABLE = (f.Open, f.History, f.Chats, f.Search, f.Attachments, f.Assign, f.Ping)
_WITH_NONCE = (f.Send, f.PrivateNote)
# Read marks whose answers (only errors) are still awaited.
_MAX_READS = 1024

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _End:
    error: ClientError | None


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[f.ServerFrame]
    generation: int


@dataclass(slots=True)
class _ReadMark:
    frame: f.Read
    confirm: bool
    error: f.Error | None = None


def event_data(event: f.EventFrame) -> msgspec.Struct:
    """The typed `data` of an event (`protocol.events`), e.g. `ReturnApproved` for
    `return.approved`; raises KeyError for a kind this version does not know."""
    if event.kind not in DATA_TYPES:
        raise KeyError(event.kind)
    return parse_data(event.kind, event.data)


class ChatClient:
    """One user's connection to chatd; see `connect`. Use it as an async context manager."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        subprotocol: Subprotocol = "chatd.v1.json",
        since: str | None = None,
        token_provider: TokenProvider | None = None,
        backoff: Backoff | None = None,
        request_timeout: float = 30.0,
        open_timeout: float = 10.0,
        max_buffer: int = 0,
    ) -> None:
        options = LinkOptions(
            subprotocol=subprotocol,
            backoff=backoff or Backoff(),
            open_timeout=open_timeout,
            token_provider=token_provider,
        )
        self._link = Link(url, token, self, options)
        self._request_timeout = request_timeout
        self._inbox: asyncio.Queue[Pushed | _End] = asyncio.Queue()
        # A bounded buffer stops reading the socket when full: a client that does not keep
        # up is then closed by the server (1013) and resumes from its cursor.
        self._room = asyncio.Semaphore(max_buffer) if max_buffer > 0 else None
        self._pending: dict[str, _Pending] = {}
        self._reads: OrderedDict[str, _ReadMark] = OrderedDict()
        self._seen: dict[str, int] = {}
        self._resume = since
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(3)
        self._pause_until = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.cursor: str | None = since
        self.welcome: f.Welcome | None = None
        self.synced: f.Synced | None = None
        self.reconnects = 0

    # ---- life ----------------------------------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        await self._link.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await self._link.aclose()
        closed = ConnectionLost("the client is closed")
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(closed)
        self._inbox.put_nowait(_End(None))

    @property
    def user(self) -> f.UserInfo:
        assert self.welcome is not None
        return self.welcome.user

    @property
    def subprotocol(self) -> str:
        return self._link.subprotocol

    @property
    def close_codes(self) -> list[int | None]:
        """The close code of every drop so far (None: the network failed without one)."""
        return list(self._link.close_codes)

    # ---- what the server pushes ------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Pushed]:
        """Every pushed frame in order: `welcome` (each connection), `event`, `synced`,
        `read`, and errors that answer no request (`bad_cursor`). Ends when the client is
        closed; raises when the connection is lost for good."""
        while True:
            item = await self._inbox.get()
            if isinstance(item, _End):
                self._inbox.put_nowait(item)  # every other iterator ends too
                if item.error is not None:
                    raise item.error
                return
            if self._room is not None:
                self._room.release()
            if isinstance(item, f.EventFrame):
                self.cursor = item.cursor
            yield item

    async def events(self) -> AsyncIterator[f.EventFrame]:
        """The events this user may see, each once, in order, across reconnects.

        Raises `CursorLost` when the server did not know the cursor (`bad_cursor`): reload
        what you show, then iterate again for the live events."""
        async for frame in self.frames():
            if isinstance(frame, f.EventFrame):
                yield frame
            elif isinstance(frame, f.Error) and frame.code == ErrorCode.BAD_CURSOR:
                error = ChatError.from_frame(frame)
                assert isinstance(error, CursorLost)
                raise error

    # ---- requests ------------------------------------------------------------------------------

    async def request(self, frame: f.ClientFrame) -> f.ServerFrame:
        """Sends a frame and returns the reply with its `id`; a refusal raises `ChatError`,
        no answer within `request_timeout` seconds `TimeoutError`.

        Waits out `rate_limited` and reconnects; a request that may be repeated is sent
        again after a drop, any other raises `ConnectionLost(maybe_applied=True)`."""
        rid = frame.id or self._next_id()
        frame = msgspec.structs.replace(frame, id=rid)
        repeatable = isinstance(frame, _REPEATABLE) or (
            isinstance(frame, _WITH_NONCE) and frame.nonce is not None
        )
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._request_timeout):
            while True:
                await self._wait_pause()
                generation = await self._link.wait_ready()
                future: asyncio.Future[f.ServerFrame] = loop.create_future()
                self._pending[rid] = _Pending(future, generation)
                try:
                    await self._link.send(frame, generation)
                    reply = await future
                except Dropped as dropped:
                    if dropped.sent and not repeatable:
                        raise ConnectionLost(
                            f"the connection dropped before the answer to {_tag(frame)}: "
                            "it may have been carried out",
                            maybe_applied=True,
                        ) from None
                    await asyncio.sleep(0)  # let the link notice the drop
                    continue
                finally:
                    self._pending.pop(rid, None)
                    _settle(future)
                if isinstance(reply, f.Error):
                    if reply.code == ErrorCode.RATE_LIMITED:
                        self._pause(reply)
                        continue
                    raise ChatError.from_frame(reply)
                return reply

    async def open(self, seller: str, order: str | None = None) -> f.Ack:
        """The buyer's chat with a shop (an existing one is returned): `ack.chat`."""
        return _expect(await self.request(f.Open(seller=seller, order=order)), f.Ack)

    async def send(
        self,
        chat: str,
        text: str,
        attachments: Iterable[str] = (),
        nonce: str | None = None,
    ) -> f.Ack:
        """Appends a message. The nonce (a fresh one unless given) makes repeats harmless:
        the server acks a repeated nonce with the original `seq`."""
        frame = f.Send(
            chat=chat, text=text, attachments=list(attachments), nonce=nonce or uuid.uuid4().hex
        )
        return _expect(await self.request(frame), f.Ack)

    async def read(self, chat: str, seq: int, *, confirm: bool = False) -> None:
        """Marks the chat read up to `seq`. There is no answer unless it is refused: with
        `confirm`, a ping follows and a refusal raises `ChatError`; without, a refusal comes
        through `frames()` as an `error`."""
        while True:
            await self._wait_pause()
            generation = await self._link.wait_ready()
            rid = self._next_id()
            mark = _ReadMark(f.Read(chat=chat, seq=seq, id=rid), confirm)
            self._reads[rid] = mark
            while len(self._reads) > _MAX_READS:
                self._reads.popitem(last=False)
            try:
                await self._link.send(mark.frame, generation)
            except Dropped:
                self._reads.pop(rid, None)
                continue
            if not confirm:
                return
            await self.ping()  # answered after the read mark: the server takes frames in order
            self._reads.pop(rid, None)
            if mark.error is None:
                return
            if mark.error.code != ErrorCode.RATE_LIMITED:
                raise ChatError.from_frame(mark.error)
            self._pause(mark.error)

    async def history(self, chat: str, before: int | None = None, limit: int = 50) -> f.HistoryPage:
        """Events of a chat before `seq` `before` (the newest without), ascending."""
        reply = await self.request(f.History(chat=chat, before=before, limit=limit))
        return _expect(reply, f.HistoryPage)

    async def chats(self, before: str | None = None, limit: int = 50) -> f.ChatsPage:
        """Chat summaries, most recent first; `page.before` asks for the next page."""
        return _expect(await self.request(f.Chats(before=before, limit=limit)), f.ChatsPage)

    async def search(self, q: str, chat: str | None = None) -> f.Results:
        return _expect(await self.request(f.Search(q=q, chat=chat)), f.Results)

    async def attachments(self, chat: str) -> f.AttachmentsPage:
        return _expect(await self.request(f.Attachments(chat=chat)), f.AttachmentsPage)

    async def request_return(
        self,
        chat: str,
        order: str,
        *,
        comment: str | None = None,
        attachments: Sequence[str] = (),
    ) -> f.Ack:
        """The buyer asks to return an order, with an optional comment and photos (ids of
        uploaded files): `ack.claim` is the claim."""
        frame = f.ReturnRequest(
            chat=chat, order=order, comment=comment, attachments=list(attachments)
        )
        return _expect(await self.request(frame), f.Ack)

    async def approve_return(self, claim: str, mode: ReturnMode, amount: Money) -> f.Ack:
        frame = f.ReturnApprove(claim=claim, mode=mode, amount=amount)
        return _expect(await self.request(frame), f.Ack)

    async def reject_return(self, claim: str, reason: str | None = None) -> f.Ack:
        return _expect(await self.request(f.ReturnReject(claim=claim, reason=reason)), f.Ack)

    async def withdraw_return(self, claim: str) -> f.Ack:
        """The shop withdraws the offer it made, while the buyer has not taken it up."""
        return _expect(await self.request(f.ReturnWithdraw(claim=claim)), f.Ack)

    async def initiate_return(self, chat: str, order: str) -> f.Ack:
        """The shop offers the buyer a return: a claim awaiting the buyer (`ack.claim`)."""
        return _expect(await self.request(f.ReturnInitiate(chat=chat, order=order)), f.Ack)

    async def dispute_return(self, claim: str) -> f.Ack:
        return _expect(await self.request(f.ReturnDispute(claim=claim)), f.Ack)

    async def resolve_return(
        self,
        claim: str,
        decision: Decision,
        mode: ReturnMode | None = None,
        comment: str | None = None,
    ) -> f.Ack:
        frame = f.ReturnResolve(claim=claim, decision=decision, mode=mode, comment=comment)
        return _expect(await self.request(frame), f.Ack)

    async def assign(self, chat: str, operator: str | None) -> f.Ack:
        """The shop gives the chat to one of its operators (`operator`, an id the shop is
        known to have: `HttpApi.operators`), to the one asking (their own id: "take"), or to
        nobody (None). Appends `chat.assigned`, which only the shop's side receives."""
        return _expect(await self.request(f.Assign(chat=chat, operator=operator)), f.Ack)

    async def note(self, chat: str, text: str, nonce: str | None = None) -> f.Ack:
        """A private note of the shop's in the chat: the buyer never sees it. The nonce (a
        fresh one unless given) makes repeats harmless, as for `send`."""
        frame = f.PrivateNote(chat=chat, text=text, nonce=nonce or uuid.uuid4().hex)
        return _expect(await self.request(frame), f.Ack)

    async def typing(self, chat: str) -> None:
        """Tells the other side that this user is typing in `chat`; no answer. The server
        passes on one every 2 s per chat at most: call it as the user types, at most that
        often. A refusal comes through `frames()` as an `error`. Not sent while the socket
        is down: a late "typing" is worse than none."""
        generation = await self._link.wait_ready()
        try:
            await self._link.send(f.Typing(chat=chat), generation)
        except Dropped:
            return

    async def ping(self) -> f.Pong:
        return _expect(await self.request(f.Ping()), f.Pong)

    # ---- the link's reports (connection.Sink) ------------------------------------------------

    def resume_cursor(self) -> str | None:
        return self._resume

    async def connected(self, welcome: f.Welcome, generation: int) -> None:
        if self.welcome is not None:
            self.reconnects += 1
        self.welcome = welcome
        if self._resume is None:
            # No cursor yet: everything after welcome.cursor comes live.
            self._resume = welcome.cursor
        await self._push(welcome)

    async def received(self, frame: f.ServerFrame) -> None:
        match frame:
            case f.EventFrame():
                # The replay after a reconnect may repeat what arrived before the drop. A seq
                # may also jump: the events a user may not see (the shop's notes, for a
                # buyer) leave gaps, which are no loss and are never asked for again.
                if frame.seq <= self._seen.get(frame.chat, 0):
                    return
                self._seen[frame.chat] = frame.seq
                self._resume = frame.cursor
                await self._push(frame)
            case f.Synced():
                self._resume = frame.cursor
                self.synced = frame
                await self._push(frame)
            case f.ReadMark() | f.TypingNotice() | f.PresenceChange():
                await self._push(frame)
            case f.Error() if frame.id is not None and frame.id in self._reads:
                await self._read_refused(frame)
            case f.Error() if frame.id is None or frame.id not in self._pending:
                await self._unasked_error(frame)
            case f.Welcome():
                log.warning("a second welcome on one connection: ignored")
            case _:
                rid = getattr(frame, "id", None)
                pending = self._pending.get(rid) if rid is not None else None
                if pending is None or pending.future.done():
                    log.debug("an answer nobody waits for: %s", frame)
                    return
                pending.future.set_result(frame)

    def dropped(self, generation: int) -> None:
        for pending in self._pending.values():
            if pending.generation == generation and not pending.future.done():
                pending.future.set_exception(Dropped(sent=True))

    async def failed(self, error: ClientError) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._inbox.put_nowait(_End(error))

    # ---- internals -----------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def _push(self, item: Pushed) -> None:
        if self._room is not None:
            await self._room.acquire()
        self._inbox.put_nowait(item)

    def _pause(self, error: f.Error) -> None:
        """After `rate_limited`: nothing more goes out until `retry_after` has passed."""
        retry_after = ChatError.from_frame(error).retry_after or 0.05
        loop = asyncio.get_running_loop()
        until = loop.time() + retry_after * (1 + random.random() / 10)
        self._pause_until = max(self._pause_until, until)

    async def _wait_pause(self) -> None:
        delay = self._pause_until - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _read_refused(self, error: f.Error) -> None:
        mark = self._reads[error.id or ""]
        if mark.confirm:
            mark.error = error
            return
        self._reads.pop(error.id or "", None)
        if error.code == ErrorCode.RATE_LIMITED:
            self._pause(error)
            task = asyncio.create_task(self.read(mark.frame.chat, mark.frame.seq))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._unasked_error(error)

    async def _unasked_error(self, error: f.Error) -> None:
        if error.code == ErrorCode.BAD_CURSOR:
            # Live events follow welcome.cursor, possibly of another log: seqs start over.
            assert self.welcome is not None
            self._resume = self.welcome.cursor
            self._seen.clear()
        else:
            log.warning("chatd error %s: %s", error.code, error.message)
        await self._push(error)


def connect(
    url: str,
    token: str,
    *,
    subprotocol: Subprotocol = "chatd.v1.json",
    since: str | None = None,
    token_provider: TokenProvider | None = None,
    backoff: Backoff | None = None,
    request_timeout: float = 30.0,
    open_timeout: float = 10.0,
    max_buffer: int = 0,
) -> ChatClient:
    """A client for `url` (`ws://host:port/ws`); `async with` opens it and says hello.

    - `subprotocol`: `chatd.v1.json` or `chatd.v1.msgpack`.
    - `since`: a cursor from an earlier session (`chat.cursor`): what came after it is
      replayed first. Without it, events after `welcome.cursor` arrive.
    - `token_provider`: called for a fresh token when the server closes with 4001 (expired);
      without it, 4001 ends the client with `Unauthorized`.
    - `max_buffer`: events held for `events()` before the client stops reading the socket
      (0: no bound).
    """
    return ChatClient(
        url,
        token,
        subprotocol=subprotocol,
        since=since,
        token_provider=token_provider,
        backoff=backoff,
        request_timeout=request_timeout,
        open_timeout=open_timeout,
        max_buffer=max_buffer,
    )


def _expect(reply: f.ServerFrame, kind: type[R]) -> R:
    if not isinstance(reply, kind):
        raise ProtocolViolation(f"expected {kind.__name__}, got {type(reply).__name__}")
    return reply


def _tag(frame: f.ClientFrame) -> str:
    return str(type(frame).__struct_config__.tag)


def _settle(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()  # retrieved: no "never retrieved" warning


__all__ = ["ChatClient", "Pushed", "connect", "event_data"]
