"""`GET /ws`: the handshake, `hello`, the replay after a cursor, and the frame loop."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from chatd import cursor
from chatd.auth import Identity, TokenError
from chatd.credentials import Credentials
from chatd.domain import commands as cmd
from chatd.domain import policy
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.render import view_of
from chatd.routing import keys_of
from chatd.service import ChatService, Done, user_key
from chatd.store.base import StoreError
from chatd.web.connection import Connection
from chatd.web.key_sockets import KeySockets
from chatd.web.lifecycle import Answer, CheckHello, Lifecycle, Refusal, Request, error
from chatd.web.metrics import Metrics
from chatd.web.origin import origin_allowed
from chatd.web.ratelimit import TokenBucket
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


def _rejected(rejection: Rejection, request_id: str | None) -> f.Error:
    return f.Error(
        code=rejection.code.value,
        message=rejection.message,
        id=request_id,
        details=rejection.details,
    )


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
        self.open: set[Connection] = set()
        self.accepting = True
        # Per user (`user_key`: role, shop and id, never the `sub` alone, which operators of
        # two shops may share): open connections, and the rate budget they share.
        self._users: dict[str, tuple[int, TokenBucket]] = {}

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
        if not self.accepting or not origin_allowed(
            headers.get("origin"), headers.get("host"), self.settings.allow_origins
        ):
            await websocket.close(CloseCode.POLICY)  # before accept: HTTP 403
            return
        offered = websocket.scope.get("subprotocols") or []
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        await websocket.accept(subprotocol=chosen)
        life = Lifecycle(codec_for(chosen), TokenBucket(self.settings.rate, self.settings.burst))
        connection = Connection(
            websocket, life, max_queue=self.settings.max_queue, metrics=self.metrics
        )
        self.open.add(connection)
        self.metrics.connections.inc()
        try:
            await Session(self, connection).run()
        finally:
            self.open.discard(connection)
            self.metrics.connections.dec()


class Session:
    """The shell around one connection's `Lifecycle`: reads the socket, asks the service,
    and hands what is to be sent to the `Connection`."""

    def __init__(self, sockets: Sockets, connection: Connection) -> None:
        self.sockets = sockets
        self.service = sockets.service
        self.connection = connection
        self.life = connection.life
        self.metrics = sockets.metrics
        self.actor: Actor | None = None

    async def run(self) -> None:
        websocket = self.connection.websocket
        hello = await self._hello()
        if hello is None:
            return
        identity, frame = hello
        actor = identity.actor
        user_bucket = self.sockets.join(actor)
        if user_bucket is None:
            await self._refuse(
                self.life.too_many(self.sockets.settings.max_connections_per_user, frame.id)
            )
            return
        self.life.accept(user_bucket)
        self.actor = actor
        self.connection.view = view_of(actor.role)
        keys = keys_of(actor)
        hub = self.service.hub
        # An API key does not expire: it ends when revoked (`Sockets.keys`).
        expiry = (
            asyncio.get_running_loop().call_later(
                max(0.0, identity.expires_at - time.time()),
                self.connection.close,
                CloseCode.UNAUTHORIZED,
                "token expired",
            )
            if math.isfinite(identity.expires_at)
            else None
        )
        if identity.key is not None:
            self.sockets.keys.add(identity.key, self.connection)
        try:
            if identity.key is not None and not await self.sockets.keys.still_live(identity.key):
                await self._refuse(self.life.refuse("the API key is unknown or revoked", frame.id))
                return
            await self._welcome(actor, frame)
            await self._frames(websocket, actor)
        except WebSocketDisconnect:
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
            if identity.key is not None:
                self.sockets.keys.remove(identity.key, self.connection)
            hub.unsubscribe(keys, self.connection)
            self.sockets.leave(actor)
            await self.connection.finish()

    async def _receive(self, websocket: WebSocket) -> bytes | str | None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
        return data if data is not None else b""

    # ---- hello -------------------------------------------------------------------------------

    async def _refuse(self, refusal: Refusal) -> None:
        await self.connection.send_now(refusal.frame)
        await self.connection.websocket.close(refusal.code, refusal.reason)

    async def _hello(self) -> tuple[Identity, f.Hello] | None:
        websocket = self.connection.websocket
        try:
            async with asyncio.timeout(self.sockets.settings.hello_timeout):
                data = await self._receive(websocket)
        except TimeoutError:
            await self._refuse(self.life.refuse("no hello within the time allowed"))
            return None
        except WebSocketDisconnect:
            return None
        if data is None:
            return None
        received = self.life.receive(data)
        if isinstance(received, Refusal):
            await self._refuse(received)
            return None
        assert isinstance(received, CheckHello)
        frame = received.hello
        self.metrics.count_in("hello")
        try:
            identity = await self.sockets.credentials.identify(frame.token)
        except TokenError as exc:
            await self._refuse(self.life.refuse(str(exc), frame.id))
            return None
        except StoreError:
            # An API key cannot be looked up now (the store is closing): not the key's fault.
            self.life.close(CloseCode.TRY_AGAIN_LATER, "unavailable")
            refusal = Refusal(
                error(ErrorCode.UNAVAILABLE, "cannot check the API key now", frame.id),
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
        head = await store.last_position()
        user = f.UserInfo(id=actor.id, role=actor.role, name=actor.name, seller=actor.shop)
        welcome = f.Welcome(
            session=secrets.token_hex(8),
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
                error(
                    ErrorCode.BAD_CURSOR,
                    "unknown cursor: reload your chats; live events follow welcome.cursor",
                    hello.id,
                )
            )
            connection.start(replayed_upto=head)
            return
        upto = since
        while True:
            page = await self.service.views.feed(actor, upto, REPLAY_PAGE)
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
        life = self.life
        connection = self.connection
        while not life.closing:
            try:
                data = await self._receive(websocket)
            except WebSocketDisconnect:
                return
            if data is None:
                return
            received = life.receive(data)
            if isinstance(received, Answer):
                if received.first_bad_frame:
                    # One line per connection, not per frame: garbage must not flood the log.
                    log.info("bad frame from %s: %s", user_key(actor), received.frame.message)
                connection.reply(received.frame)
                continue
            if not isinstance(received, Request):
                continue
            frame = received.frame
            self.metrics.count_in(str(type(frame).__struct_config__.tag))
            try:
                reply = await self._dispatch(actor, frame)
            except Exception:
                log.exception("frame %s failed", type(frame).__name__)
                reply = error(ErrorCode.INTERNAL, "internal error", frame.id)
            if reply is not None:
                connection.reply(reply)

    def _ack(self, outcome: Done | Rejection, request_id: str | None) -> f.Ack | f.Error:
        if isinstance(outcome, Rejection):
            return _rejected(outcome, request_id)
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
                return _rejected(rejection, rid) if rejection is not None else None
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
            case f.Hello():
                return error(ErrorCode.BAD_FRAME, "already authenticated", rid)
        return error(ErrorCode.BAD_FRAME, "unsupported frame", rid)

    @staticmethod
    def _answer(page: Any, request_id: str | None) -> Any:
        if isinstance(page, Rejection):
            return _rejected(page, request_id)
        return msgspec.structs.replace(page, id=request_id)
