"""`GET /ws`: the handshake, `hello`, the replay after a cursor, and the frame loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from chatd import cursor
from chatd.auth import Identity, TokenError
from chatd.credentials import Credentials
from chatd.domain import commands as cmd
from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.observability.logs import fields
from chatd.render import view_of
from chatd.routing import keys_of
from chatd.service import ChatService, Done, user_key
from chatd.store.base import StoreError, StoreUnavailable
from chatd.web import socket_log
from chatd.web.answer_deadline import ANSWER_DEADLINE, AnswerDeadline, TooLate
from chatd.web.connection import Connection
from chatd.web.expiries import Expiries
from chatd.web.frame_watch import FrameWatch
from chatd.web.key_sockets import KeySockets
from chatd.web.lifecycle import Answer, CheckHello, Lifecycle, Refusal, Request
from chatd.web.metrics import Metrics
from chatd.web.origin import origin_allowed
from chatd.web.ratelimit import TokenBucket
from chatd.web.socket_view import SocketView
from chatd.web.watching import Watching
from protocol import PROTOCOL_REVISION, PROTOCOL_VERSION
from protocol import frames as f
from protocol.codec import SUBPROTOCOLS, codec_for
from protocol.codes import CloseCode, ErrorCode

log = logging.getLogger(__name__)

REPLAY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class SocketSettings:
    secret: str
    allow_origins: tuple[str, ...] = ()
    hello_timeout: float = 10.0
    rate: float = 20.0
    burst: float = 40.0
    user_rate: float = 50.0
    user_burst: float = 100.0
    max_connections_per_user: int = 32
    max_queue: int = 2048
    # A frame not done within this is answered `unavailable` (chatd.web.answer_deadline).
    answer_deadline: float = ANSWER_DEADLINE


class Sockets:
    """Serves every WebSocket of one app and knows them all (to close them at shutdown)."""

    def __init__(
        self,
        service: ChatService,
        settings: SocketSettings,
        metrics: Metrics,
        credentials: Credentials | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.credentials = credentials or Credentials(settings.secret, service.store)
        # The sockets opened with an API key, closed on any node's revocation of it.
        self.keys = KeySockets(service.store)
        service.hub.on_key_revoked(self.keys.revoked)
        # The chats each socket has in view, where `typing` and `presence` go.
        self.watching = Watching(service.hub)
        self.open: set[Connection] = set()
        self.accepting = True
        # Per user (`user_key`: role, shop and id, never the `sub` alone, which operators of
        # two shops may share): open connections, and the rate budget they share.
        self._users: dict[str, tuple[int, TokenBucket]] = {}
        # Frames are answered even when the log does not answer: `in_time(work)` for the
        # steps of a hello, the `frames` watch for the frames after it.
        self.in_time = AnswerDeadline(settings.answer_deadline).run
        self.frames = FrameWatch(settings.answer_deadline)
        # Tokens that expire while their socket is open: 4001 (one timer for all sockets).
        self.expiries = Expiries()

    def join(self, actor: Actor) -> TokenBucket | None:
        """Counts a user's new connection; None when the user has too many open."""
        key = user_key(actor)
        count, bucket = self._users.get(key, (0, None))
        if count >= self.settings.max_connections_per_user:
            return None
        if bucket is None:
            bucket = TokenBucket(self.settings.user_rate, self.settings.user_burst)
        self._users[key] = (count + 1, bucket)
        return bucket

    def leave(self, actor: Actor) -> None:
        key = user_key(actor)
        count, bucket = self._users[key]
        if count <= 1:
            del self._users[key]
        else:
            self._users[key] = (count - 1, bucket)

    async def close_all(self, code: int = CloseCode.GOING_AWAY) -> None:
        """Closes every socket after what is queued for it (SIGTERM: 1001)."""
        self.accepting = False
        connections = list(self.open)
        for connection in connections:
            connection.close(code, "server going away")
        if connections:
            await asyncio.wait(
                [asyncio.create_task(c.wait_closed()) for c in connections], timeout=5
            )

    async def serve(self, websocket: WebSocket) -> None:
        headers = websocket.headers
        peer = websocket.client.host if websocket.client else None
        if not self.accepting or not origin_allowed(
            headers.get("origin"), headers.get("host"), self.settings.allow_origins
        ):
            reason = "origin" if self.accepting else "stopping"
            socket_log.handshake_refused(self.metrics, reason, peer, headers.get("origin"))
            await websocket.close(CloseCode.POLICY)  # before accept: HTTP 403
            return
        offered = websocket.scope.get("subprotocols") or []
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        await websocket.accept(subprotocol=chosen)
        life = Lifecycle(
            codec_for(chosen),
            TokenBucket(self.settings.rate, self.settings.burst),
            session=secrets.token_hex(8),
        )
        connection = Connection(
            websocket, life, max_queue=self.settings.max_queue, metrics=self.metrics
        )
        self.open.add(connection)
        self.metrics.connections.inc()
        self.metrics.accepted += 1
        session = Session(self, connection, peer)
        try:
            await session.run()
        finally:
            self.open.discard(connection)
            self.metrics.connections.dec()
            session.ended()


class Session:
    """The shell around one connection's `Lifecycle`: reads the socket, asks the service,
    and hands what is to be sent to the `Connection`."""

    def __init__(self, sockets: Sockets, connection: Connection, peer: str | None) -> None:
        self.sockets = sockets
        self.service = sockets.service
        self.connection = connection
        self.life = connection.life
        self.metrics = sockets.metrics
        self.actor: Actor | None = None
        # Its presence, typing and chats in view, once its hello passed.
        self.view: SocketView | None = None
        # For the connection's closing line (chatd.web.socket_log).
        self.session = connection.life.session or secrets.token_hex(8)
        self.peer = peer
        self.started = time.monotonic()
        self.frames_in = 0
        self.errors: Counter[str] | None = None  # error frames sent, by code
        self.refused: str | None = None  # why its hello was refused
        self.peer_close: int | None = None  # the close code, when the close came from the peer
        # Frames past their deadline (`too_late`): the frame being carried out, the readers'
        # generation (each reader given up on leaves the socket to a new one), those readers,
        # and the end of the last one.
        self._frame_id: str | None = None
        self._generation = 0
        self._reader: asyncio.Task[None] | None = None  # the one reading now, if not the first
        # Readers after a frame was given up on, held until they end: made when the first
        # is (an empty set is 216 bytes, and most sockets never need one).
        self._readers: set[asyncio.Task[None]] | None = None
        self._frames_over: asyncio.Future[None] | None = None

    def ended(self) -> None:
        """Counts and logs how the connection ended (once, after it is closed)."""
        life = self.life
        by_peer = self.peer_close is not None
        socket_log.ended(
            self.metrics,
            socket_log.Ending(
                session=self.session,
                actor=self.actor,
                subprotocol=self.life.codec.subprotocol,
                peer=self.peer,
                code=self.peer_close if by_peer else life.close_code,
                by=socket_log.PEER if by_peer else socket_log.SERVER,
                reason=None if by_peer else life.close_reason,
                refused=self.refused,
                frames_in=self.frames_in,
                frames_out=self.connection.frames_out,
                seconds=time.monotonic() - self.started,
                errors=self.errors,
            ),
        )

    # ---- error frames: each names the session, and is counted by code ------------------------

    def _counted(self, code: str) -> None:
        self.metrics.errors[("ws", code)] += 1
        if self.errors is None:
            self.errors = Counter()
        self.errors[code] += 1

    def _error(
        self, code: ErrorCode, message: str, request_id: str | None = None, **details: object
    ) -> f.Error:
        self._counted(code.value)
        return self.life.error(code, message, request_id, **details)

    def _rejected(self, rejection: Rejection, request_id: str | None) -> f.Error:
        self._counted(rejection.code.value)
        return f.Error(
            code=rejection.code.value,
            message=rejection.message,
            id=request_id,
            details={**(rejection.details or {}), "session": self.session},
        )

    async def run(self) -> None:
        websocket = self.connection.websocket
        hello = await self._hello()
        if hello is None:
            return
        identity, frame = hello
        hello_id = frame.id
        actor = identity.actor
        self.actor = actor  # for its closing line, a refusal for too many connections too
        user_bucket = self.sockets.join(actor)
        if user_bucket is None:
            await self._refuse(
                self.life.too_many(self.sockets.settings.max_connections_per_user, frame.id)
            )
            return
        self.life.accept(user_bucket)
        self.connection.view = view_of(actor.role)
        keys = keys_of(actor)
        hub = self.service.hub
        # An API key does not expire (`expiries` leaves it be): it ends when revoked
        # (`Sockets.keys`).
        self.sockets.expiries.add(self.connection, identity.expires_at)
        if identity.key is not None:
            self.sockets.keys.add(identity.key, self.connection)
        try:
            live = self.sockets.keys.still_live
            if identity.key is not None and not await self.sockets.in_time(live(identity.key)):
                await self._refuse(self.life.refuse("the API key is unknown or revoked", frame.id))
                return
            socket_log.opened(
                session=self.session,
                actor=actor,
                subprotocol=self.life.codec.subprotocol,
                peer=self.peer,
                resumed=frame.since is not None,
                key=identity.key,
            )
            # A shop's operator signing in becomes one its chats may be assigned to.
            await self.sockets.in_time(self.service.operators.seen(actor))
            self.view = SocketView(self.service, self.sockets.watching, self.connection, actor)
            self.view.arrive()
            await self._welcome(actor, frame)
            # The socket may stay open for hours: its hello (the token, the decoded frame)
            # is not kept that long; `hello_id` is what is needed of it.
            del hello, frame
            await self._frames(websocket, actor)
        except WebSocketDisconnect:
            pass
        except (TooLate, StoreUnavailable):
            # Its log or a store look-up did not answer in time: try again later.
            message = "the server cannot reach its log now: try again later"
            await self.connection.send_now(self._error(ErrorCode.UNAVAILABLE, message, hello_id))
            self.connection.close(CloseCode.TRY_AGAIN_LATER, "unavailable")
        finally:
            self.sockets.expiries.remove(self.connection)
            if identity.key is not None:
                self.sockets.keys.remove(identity.key, self.connection)
            hub.unsubscribe(keys, self.connection)
            if self.view is not None:
                self.view.depart()
            self.sockets.leave(actor)
            await self.connection.finish()

    def _data_of(self, message: Message) -> bytes | str | None:
        """A received message's data; None when the socket ended. Not a coroutine: a reader
        idle in `await websocket.receive()` keeps one frame fewer suspended."""
        if message["type"] == "websocket.disconnect":
            if not self.life.closing:  # else chatd closed first, and its code stands
                self.peer_close = message.get("code", CloseCode.NORMAL)
            return None
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
        return data if data is not None else b""

    # ---- hello -------------------------------------------------------------------------------

    async def _refuse(self, refusal: Refusal) -> None:
        self.refused = refusal.frame.message
        self._counted(refusal.frame.code)
        await self.connection.send_now(refusal.frame)
        await self.connection.websocket.close(refusal.code, refusal.reason)

    async def _hello(self) -> tuple[Identity, f.Hello] | None:
        websocket = self.connection.websocket
        try:
            async with asyncio.timeout(self.sockets.settings.hello_timeout):
                data = self._data_of(await websocket.receive())
        except TimeoutError:
            await self._refuse(self.life.refuse("no hello within the time allowed"))
            return None
        except WebSocketDisconnect as exc:
            self.peer_close = exc.code
            return None
        if data is None:
            return None
        self.frames_in += 1
        received = self.life.receive(data)
        if isinstance(received, Refusal):
            await self._refuse(received)
            return None
        assert isinstance(received, CheckHello)
        frame = received.hello
        self.metrics.count_in("hello")
        try:
            identity = await self.sockets.in_time(self.sockets.credentials.identify(frame.token))
        except TokenError as exc:
            await self._refuse(self.life.refuse(str(exc), frame.id))
            return None
        except (StoreError, TooLate):
            # An API key cannot be looked up now (the store is closing or does not answer):
            # not the key's fault.
            self.life.close(CloseCode.TRY_AGAIN_LATER, "unavailable")
            refusal = Refusal(
                self.life.error(ErrorCode.UNAVAILABLE, "cannot check the API key now", frame.id),
                CloseCode.TRY_AGAIN_LATER,
                "unavailable",
            )
            await self._refuse(refusal)
            return None
        refused = policy.check(identity.actor, "hello")
        if refused is not None:
            await self._refuse(self.life.refuse(refused.message, frame.id))
            return None
        return identity, frame

    async def _welcome(self, actor: Actor, hello: f.Hello) -> None:
        """Subscribes, then replays what `hello.since` missed, so no event falls between."""
        connection = self.connection
        store = self.service.store
        # Subscribe before reading the log: an event committed meanwhile is queued live and
        # skipped by position if the replay already sent it.
        self.service.hub.subscribe(keys_of(actor), connection)
        head = await self.sockets.in_time(store.last_position())
        user = f.UserInfo(id=actor.id, role=actor.role, name=actor.name, seller=actor.shop)
        welcome = f.Welcome(
            session=self.session,
            user=user,
            server_time=self.service.now(),
            cursor=self.service.cursor(head),
            protocol=PROTOCOL_VERSION,
            version=PROTOCOL_REVISION,
        )
        await connection.send_now(welcome)
        if hello.since is None:
            connection.start(replayed_upto=head)
            return
        since = cursor.parse(store.log_id, hello.since)
        if since is None or since > head:
            await connection.send_now(
                self._error(
                    ErrorCode.BAD_CURSOR,
                    "unknown cursor: reload your chats; live events follow welcome.cursor",
                    hello.id,
                )
            )
            connection.start(replayed_upto=head)
            return
        upto = since
        while True:
            page = await self.sockets.in_time(self.service.views.feed(actor, upto, REPLAY_PAGE))
            for stored in page:
                await connection.send_now(self.service.views.frame_of(stored, connection.view))
            if len(page) < REPLAY_PAGE:
                break
            upto = page[-1].pos
        if page:
            upto = page[-1].pos
        # Every event up to `head` visible to this user was in the feed; the replay may have
        # read further, and anything after `upto` arrives through the queue.
        replayed = max(upto, head)
        await connection.send_now(f.Synced(cursor=self.service.cursor(replayed)))
        connection.start(replayed_upto=replayed)

    # ---- frames ------------------------------------------------------------------------------

    async def _frames(self, websocket: WebSocket, actor: Actor) -> None:
        try:
            await self._read_frames(websocket, actor, self._generation)
            if self._frames_over is not None:
                # A frame of this reader was given up on: the socket's later frames were
                # read by others, and the last of them says when the socket is done.
                await self._frames_over
        finally:
            # The reader reading now, if the session ends before it (a shutdown). Those given
            # up on are left to end their frame's work: cancelled, a write they handed to
            # the store could be committed and never published.
            if self._reader is not None:
                self._reader.cancel()

    def too_late(self) -> None:
        """The frame being carried out is past its deadline (chatd.web.frame_watch): it is
        answered `unavailable` now, and a new reader reads the socket's next frames. The
        frame's work goes on in the reader that took it up, unanswered, to end by itself
        (the store's own timeouts bound it); a write so answered may still be carried out,
        and its nonce keeps a resend from writing it twice."""
        if self.life.closing:
            return
        self._generation += 1
        self.connection.reply(self._unavailable(self._frame_id))
        if self._frames_over is None:
            self._frames_over = asyncio.get_running_loop().create_future()
        assert self.actor is not None
        reader = self._reader = asyncio.create_task(self._read_on(self.actor, self._generation))
        if self._readers is None:
            self._readers = set()
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)

    async def _read_on(self, actor: Actor, generation: int) -> None:
        over = self._frames_over
        assert over is not None
        try:
            await self._read_frames(self.connection.websocket, actor, generation)
        except asyncio.CancelledError:
            if generation == self._generation:
                over.cancel()
            raise
        except Exception as exc:
            if generation == self._generation and not over.done():
                over.set_exception(exc)
            return
        if generation == self._generation and not over.done():
            over.set_result(None)

    async def _read_frames(self, websocket: WebSocket, actor: Actor, generation: int) -> None:
        """Reads and answers frames until the socket ends, or until a frame of this reader
        (its `generation`) has been given up on."""
        life = self.life
        connection = self.connection
        watch = self.sockets.frames
        while not life.closing:
            try:
                data = self._data_of(await websocket.receive())
            except WebSocketDisconnect:
                return
            if data is None:
                return
            self.frames_in += 1
            received = life.receive(data)
            if isinstance(received, Answer):
                self._counted(received.frame.code)
                if received.first_bad_frame:
                    # One line per connection, not per frame: garbage must not flood the log.
                    log.info(
                        "bad frame from %s: %s",
                        user_key(actor),
                        received.frame.message,
                        extra=fields(event="ws_bad_frame", session=self.session),
                    )
                connection.reply(received.frame)
                continue
            if not isinstance(received, Request):
                continue
            frame = received.frame
            self.metrics.count_in(str(type(frame).__struct_config__.tag))
            self._frame_id = frame.id
            watch.begin(self)
            reply = await self._answered(actor, frame, generation)
            if generation != self._generation:
                return  # answered `unavailable` meanwhile: another reader reads on
            watch.end(self)
            view = self.view
            if view is not None and not isinstance(reply, f.Error):
                unseen = view.answered(frame, reply)
                if unseen is not None:
                    await view.bring_into_view(unseen)

    async def _answered(self, actor: Actor, frame: f.ClientFrame, generation: int) -> Any:
        """`frame` carried out and its reply written (unless it was answered `unavailable`
        meanwhile), which it returns.

        The reply is written in the same turn of the event loop as the events the frame
        published: the sender's ack and its own copy of the event leave in one write.
        """
        try:
            reply = await self._dispatch(actor, frame)
        except StoreUnavailable:
            reply = self._unavailable(frame.id)
        except Exception:
            log.exception(
                "frame %s failed",
                type(frame).__name__,
                extra=fields(event="ws_frame_failed", session=self.session),
            )
            reply = self._error(ErrorCode.INTERNAL, "internal error", frame.id)
        if reply is not None and generation == self._generation:
            self.connection.reply(reply)
        return reply

    def _unavailable(self, request_id: str | None) -> f.Error:
        return self._error(
            ErrorCode.UNAVAILABLE,
            "no answer in time: a write may still be carried out; send it again with its nonce",
            request_id,
        )

    def _ack(self, outcome: Done | Rejection, request_id: str | None) -> f.Ack | f.Error:
        if isinstance(outcome, Rejection):
            return self._rejected(outcome, request_id)
        return f.Ack(
            id=request_id,
            chat=outcome.chat,
            seq=outcome.seq,
            cursor=outcome.cursor,
            claim=outcome.claim,
        )

    async def _dispatch(self, actor: Actor, frame: f.ClientFrame) -> Any:
        service = self.service
        views = service.views
        rid = frame.id
        match frame:
            case f.Ping():
                return f.Pong(id=rid)
            case f.Send():
                outcome = await service.send(
                    actor, frame.chat, frame.text, frame.attachments, frame.nonce
                )
                return self._ack(outcome, rid)
            case f.Read():
                rejection = await service.mark_read(actor, frame.chat, frame.seq)
                return self._rejected(rejection, rid) if rejection is not None else None
            case f.Open():
                return self._ack(await service.open_chat(actor, frame.seller, frame.order), rid)
            case f.History():
                page = await views.history(actor, frame.chat, frame.before, frame.limit)
                return self._answer(page, rid)
            case f.Chats():
                return self._answer(await views.chats(actor, frame.before, frame.limit), rid)
            case f.Search():
                return self._answer(await views.search(actor, frame.q, frame.chat), rid)
            case f.Attachments():
                return self._answer(await views.attachments(actor, frame.chat), rid)
            case f.ReturnRequest():
                outcome = await service.request_return(
                    actor, frame.chat, frame.order, frame.comment, frame.attachments
                )
                return self._ack(outcome, rid)
            case f.ReturnInitiate():
                return self._ack(await service.initiate_return(actor, frame.chat, frame.order), rid)
            case f.ReturnApprove():
                command = cmd.ApproveReturn(
                    actor=actor, claim=frame.claim, mode=frame.mode, amount=frame.amount
                )
                return self._ack(await service.approve_return(command), rid)
            case f.ReturnReject():
                reject = cmd.RejectReturn(actor=actor, claim=frame.claim, reason=frame.reason)
                return self._ack(await service.reject_return(reject), rid)
            case f.ReturnDispute():
                dispute = cmd.DisputeReturn(actor=actor, claim=frame.claim)
                return self._ack(await service.dispute_return(dispute), rid)
            case f.ReturnResolve():
                resolve = cmd.ResolveReturn(
                    actor=actor,
                    claim=frame.claim,
                    decision=frame.decision,
                    mode=frame.mode,
                    comment=frame.comment,
                )
                return self._ack(await service.resolve_return(resolve), rid)
            case f.ReturnWithdraw():
                withdraw = cmd.WithdrawReturn(actor=actor, claim=frame.claim)
                return self._ack(await service.withdraw_return(withdraw), rid)
            case f.Assign():
                return self._ack(await service.assign(actor, frame.chat, frame.operator), rid)
            case f.PrivateNote():
                outcome = await service.note(actor, frame.chat, frame.text, frame.nonce)
                return self._ack(outcome, rid)
            case f.Typing():
                assert self.view is not None, "frames are read once hello passed"
                refused = await self.view.typing(frame)
                return self._rejected(refused, rid) if refused is not None else None
            case f.Hello():
                return self._error(ErrorCode.BAD_FRAME, "already authenticated", rid)
        return self._error(ErrorCode.BAD_FRAME, "unsupported frame", rid)

    def _answer(self, page: Any, request_id: str | None) -> Any:
        if isinstance(page, Rejection):
            return self._rejected(page, request_id)
        return msgspec.structs.replace(page, id=request_id)
