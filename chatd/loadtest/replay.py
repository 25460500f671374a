"""One replay process: the actors of a share connect, every chat's commands go out on the
schedule, and in the end every participant's events are checked against the log.

Open loop: with `speed` X an action is due X times faster than the log had it, and its
latency is measured from that due time, not from when it could be sent, so a server that
falls behind shows in the figures instead of slowing the schedule down. Messages go out when
they are due whatever is still unanswered; a command that changes a claim waits for the
chat's answers before it (it needs the claim they made). With `speed` None (`--speed max`)
each chat sends its next command as soon as the one before is answered, every chat at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from websockets.typing import BytesLike

from chatd.client.errors import ChatError
from chatd.client.http import HttpApi, http_base
from chatd.client.tokens import mint
from chatd.loadtest.delivery import (
    Appended,
    Conn,
    check_chat,
    content_of,
    owned_chats,
    received_count,
)
from chatd.loadtest.histogram import Latencies
from chatd.loadtest.plan import Action, Actor, ChatPlan, Share
from chatd.loadtest.results import Outcome
from chatd.loadtest.wire import Lean, Socket, lean_decoder, open_session
from protocol import frames as f
from protocol.codec import Subprotocol, codec_for
from protocol.events import Decision, GoodsState, OrderCard, ReturnMode

# Tiny files with the right first bytes, standing in for attachments the log only names.
_PLACEHOLDERS: dict[str, bytes] = {
    "image/png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
    "image/jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 32 + b"\xff\xd9",
    "application/pdf": b"%PDF-1.4\n%%EOF\n",
}
_POLL = 0.05
_STEPS: dict[str, GoodsState] = {
    "handed_in": "handed_in",
    "arrived": "arrived",
    "inspected": "inspected",
}


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    url: str  # ws://host:port/ws
    secret: str  # CHATD_SECRET, to mint the actors' tokens
    speed: float | None = None  # None: as fast as the server answers
    connections: int = 1  # sockets per actor
    subprotocol: Subprotocol = "chatd.v1.json"
    timeout: float = 60.0  # for one answer
    settle: float = 10.0  # seconds without a new delivery before giving up on the rest
    connect_parallel: int = 100
    http_parallel: int = 32
    token_ttl: float = 12 * 3600.0


class Progress(Protocol):
    def advance(self, done: int, errors: int) -> None: ...


@dataclass(eq=False, slots=True)
class _Pending:
    action: Action
    chat: ChatPlan
    due: float
    conn: Conn | None
    future: asyncio.Future[bool]


class ShareReplay:
    def __init__(self, share: Share, settings: ReplaySettings, progress: Progress) -> None:
        self.share = share
        self.settings = settings
        self.progress = progress
        self.codec = codec_for(settings.subprotocol)
        self.decode: Callable[[BytesLike], Lean] = lean_decoder(self.codec)
        self.run_id = secrets.token_hex(4)
        self.outcome = Outcome(actions=share.actions)
        self.ack_latency = Latencies()
        self.conns: dict[Actor, list[Conn]] = {}
        self._turn: Counter[Actor] = Counter()
        self.pending: dict[str, _Pending] = {}
        self.chat_ids: dict[str, str] = {}  # log chat -> server chat
        self.claim_ids: dict[str, str] = {}  # log claim -> server claim
        # (server chat, seq) -> (due time, the connection that sent the command).
        self.appended: Appended = {}
        self.orders_ready: dict[str, asyncio.Event] = {}
        self.start = 0.0
        self.closing = False
        self._http: HttpApi | None = None
        # Orders and the goods' travel wait in separate lines: at `--speed max` every order
        # is due at once, and a report on goods must not queue behind all of them.
        self._order_slots = asyncio.Semaphore(settings.http_parallel)
        self._logistics_slots = asyncio.Semaphore(settings.http_parallel)

    # ---- connecting ----------------------------------------------------------------------------

    def token(self, actor: Actor) -> str:
        return mint(
            self.settings.secret,
            role=actor.role,
            sub=actor.id,
            name=actor.name,
            seller=actor.shop,
            shop_name=actor.shop_name,
            ttl=self.settings.token_ttl,
        )

    async def connect(self) -> None:
        """Opens every actor's sockets; a socket that cannot open is an error."""
        slots = asyncio.Semaphore(self.settings.connect_parallel)

        async def one(conn: Conn) -> None:
            async with slots:
                try:
                    socket, _ = await open_session(
                        self.settings.url,
                        self.token(conn.actor),
                        self._on_frame,
                        subprotocol=self.settings.subprotocol,
                        open_timeout=self.settings.timeout,
                    )
                except (OSError, TimeoutError, ConnectionError) as exc:
                    self._error("connect", f"{conn.actor.id}: {exc}")
                    return
                socket.owner = conn
                conn.socket = socket
                socket.closed.add_done_callback(functools.partial(self._closed, conn))

        conns: list[Conn] = []
        for actor in self.share.actors:
            group = [
                Conn(actor, checked=actor.role != "manager")
                for _ in range(self.settings.connections)
            ]
            self.conns[actor] = group
            conns.extend(group)
        await asyncio.gather(*(one(conn) for conn in conns))
        self.outcome.connections = sum(1 for c in conns if c.socket is not None)
        system = mint(
            self.settings.secret,
            role="system",
            sub="replay-marketplace",
            name="marketplace",
            ttl=self.settings.token_ttl,
        )
        self._http = HttpApi(http_base(self.settings.url), system, timeout=self.settings.timeout)

    def _closed(self, conn: Conn, done: asyncio.Future[int | None]) -> None:
        if self.closing:
            return
        self._error("closed", f"{conn.actor.id}: the server closed the socket ({done.result()})")
        for rid, pending in list(self.pending.items()):
            if pending.conn is conn:
                del self.pending[rid]
                if not pending.future.done():
                    pending.future.set_result(False)

    # ---- receiving -----------------------------------------------------------------------------

    def _on_frame(self, socket: Socket, data: BytesLike) -> None:
        now = time.monotonic()
        frame = self.decode(data)
        kind = frame.type
        if kind == "event":
            conn: Conn = socket.owner
            if conn.checked and frame.chat is not None and frame.seq is not None:
                role = frame.author.role if frame.author is not None else ""
                text = frame.text if frame.kind == "message" else None
                content = content_of(frame.kind or "", role, text)
                conn.received.setdefault(frame.chat, []).append((frame.seq, now, content))
        elif kind in ("ack", "error"):
            pending = self.pending.pop(frame.id, None) if frame.id is not None else None
            if pending is None:
                if kind == "error":
                    self._error(f"unasked {frame.code}", frame.message or "")
                return
            if kind == "ack":
                self._acked(pending, frame.chat, frame.seq, frame.claim, now)
            else:
                self._refused(pending, f"{frame.code}: {frame.message}")

    def _acked(
        self, pending: _Pending, chat: str | None, seq: int | None, claim: str | None, now: float
    ) -> None:
        action = pending.action
        self.outcome.acked += 1
        self.ack_latency.record(now - pending.due)
        if chat is not None and seq is not None:
            if action.verb == "open":
                self.chat_ids[pending.chat.chat] = chat
            for n in range(action.events):
                self.appended[(chat, seq + n)] = (pending.due, pending.conn)
        if claim is not None and action.claim is not None:
            self.claim_ids[action.claim] = claim
        self.progress.advance(1, 0)
        if not pending.future.done():
            pending.future.set_result(True)

    def _refused(self, pending: _Pending, why: str) -> None:
        code = why.partition(":")[0]
        self._error(code, f"pos {pending.action.pos} {pending.action.verb}: {why}", done=True)
        if not pending.future.done():
            pending.future.set_result(False)

    def _error(self, code: str, text: str, done: bool = False) -> None:
        self.outcome.errors[code] += 1
        self.outcome.example(text)
        self.progress.advance(1 if done else 0, 1)

    # ---- sending -------------------------------------------------------------------------------

    def _conn_for(self, actor: Actor) -> Conn | None:
        group = [c for c in self.conns.get(actor, ()) if c.socket is not None and c.socket.is_open]
        if not group:
            return None
        self._turn[actor] += 1
        return group[self._turn[actor] % len(group)]

    def _frame(self, action: Action, chat: ChatPlan, rid: str, files: list[str]) -> f.ClientFrame:
        server_chat = self.chat_ids.get(chat.chat, "")
        claim = self.claim_ids.get(action.claim or "", action.claim or "")
        match action.verb:
            case "open":
                return f.Open(id=rid, seller=chat.shop, order=action.order)
            case "send":
                nonce = f"{self.run_id}-{action.pos}"
                return f.Send(
                    id=rid, chat=server_chat, text=action.text, nonce=nonce, attachments=files
                )
            case "request":
                return f.ReturnRequest(id=rid, chat=server_chat, order=action.order or "")
            case "initiate":
                return f.ReturnInitiate(id=rid, chat=server_chat, order=action.order or "")
            case "approve":
                assert action.amount is not None
                return f.ReturnApprove(
                    id=rid, claim=claim, mode=_mode(action.mode) or "pvz", amount=action.amount
                )
            case "reject":
                return f.ReturnReject(id=rid, claim=claim)
            case "dispute":
                return f.ReturnDispute(id=rid, claim=claim)
            case "withdraw":
                return f.ReturnWithdraw(id=rid, claim=claim)
            case "resolve":
                decision: Decision = "approve" if action.decision == "approve" else "reject"
                return f.ReturnResolve(
                    id=rid, claim=claim, decision=decision, mode=_mode(action.mode)
                )
        raise ValueError(f"no frame for {action.verb}")

    async def dispatch(self, chat: ChatPlan, action: Action, due: float) -> asyncio.Future[bool]:
        """Sends the action's command; the future is True once it is answered with success."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if action.verb == "logistics":
            task = asyncio.create_task(self._logistics(chat, action, due))
            task.add_done_callback(functools.partial(self._settle_task, action, future))
            return future
        assert action.actor is not None
        conn = self._conn_for(action.actor)
        server_chat = self.chat_ids.get(chat.chat)
        if conn is None or conn.socket is None:
            self._error("no socket", f"pos {action.pos}: {action.actor.id} is not connected", True)
            future.set_result(False)
            return future
        if action.verb != "open" and server_chat is None:
            self._error("skipped", f"pos {action.pos}: the chat did not open", True)
            future.set_result(False)
            return future
        files = await self._upload(action) if action.attachments else []
        rid = f"{action.pos}"
        frame = self._frame(action, chat, rid, files)
        self.pending[rid] = _Pending(action, chat, due, conn, future)
        conn.socket.send_frame(frame)
        self.outcome.sent_frames += 1
        return future

    def _settle_task(
        self, action: Action, future: asyncio.Future[bool], task: asyncio.Task[bool]
    ) -> None:
        if task.cancelled():
            future.set_result(False)
        elif (exc := task.exception()) is not None:
            self._error("failed", f"pos {action.pos} {action.verb}: {exc!r}", done=True)
            future.set_result(False)
        else:
            future.set_result(task.result())

    async def _upload(self, action: Action) -> list[str]:
        assert action.actor is not None
        ids: list[str] = []
        async with HttpApi(http_base(self.settings.url), self.token(action.actor)) as api:
            for attachment in action.attachments:
                content = _PLACEHOLDERS.get(attachment.mime, _PLACEHOLDERS["application/pdf"])
                mime = attachment.mime if attachment.mime in _PLACEHOLDERS else "application/pdf"
                try:
                    uploaded = await api.upload(attachment.name, content, mime)
                except ChatError as exc:
                    self._error(f"upload {exc.code}", f"pos {action.pos}: {exc}")
                    continue
                ids.append(uploaded.id)
        return ids

    async def _logistics(self, chat: ChatPlan, action: Action, due: float) -> bool:
        assert self._http is not None and action.order is not None
        step = _STEPS[action.step or ""]
        defect = action.defect if step == "inspected" else None
        async with self._logistics_slots:
            try:
                done = await self._http.logistics(action.order, step, defect)
            except ChatError as exc:
                self._error(exc.code, f"pos {action.pos} logistics {step}: {exc}", done=True)
                return False
            except (OSError, TimeoutError, httpx.HTTPError) as exc:
                self._error("http", f"pos {action.pos} logistics {step}: {exc}", done=True)
                return False
        pending = _Pending(action, chat, due, None, asyncio.get_running_loop().create_future())
        self._acked(pending, done.chat, done.seq, done.claim, time.monotonic())
        return True

    async def _register(self, order: OrderCard, due: float | None) -> None:
        """Registers an order over HTTP; at `--speed max` its latency runs from the send."""
        assert self._http is not None
        ready = self.orders_ready[order.id]
        async with self._order_slots:
            started = time.monotonic() if due is None else due
            try:
                await self._http.register_order(order)
            except ChatError as exc:
                self._error(exc.code, f"order {order.id}: {exc}", done=True)
                ready.set()
                return
            except (OSError, TimeoutError, httpx.HTTPError) as exc:
                self._error("http", f"order {order.id}: {exc!r}", done=True)
                ready.set()
                return
        self.ack_latency.record(time.monotonic() - started)
        self.outcome.acked += 1
        self.progress.advance(1, 0)
        ready.set()

    # ---- the schedule --------------------------------------------------------------------------

    def due(self, at: float) -> float | None:
        speed = self.settings.speed
        return None if speed is None else self.start + at / speed

    async def _until(self, moment: float | None) -> float:
        now = time.monotonic()
        if moment is None:
            return now
        if moment > now:
            await asyncio.sleep(moment - now)
        return moment

    async def _orders(self) -> None:
        tasks = []
        for order in self.share.orders:
            due = self.due(order.at)
            await self._until(due)
            tasks.append(asyncio.create_task(self._register(order.card, due)))
        await asyncio.gather(*tasks)

    async def _wait(self, future: asyncio.Future[bool], action: Action) -> bool:
        if action.verb == "logistics":
            # An HTTP request: its client's own timeout bounds it, and it reports its errors.
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except TimeoutError:
            rid = f"{action.pos}"
            self.pending.pop(rid, None)
            self._error("timeout", f"pos {action.pos} {action.verb}: no answer", done=True)
            return False

    async def _chat(self, chat: ChatPlan) -> None:
        sequential = self.settings.speed is None
        waiting: list[tuple[asyncio.Future[bool], Action]] = []
        for action in chat.actions:
            due = await self._until(self.due(action.at))
            if sequential or action.verb != "send":
                for future, earlier in waiting:
                    await self._wait(future, earlier)
                waiting.clear()
            if action.order is not None and action.verb in ("open", "request", "initiate"):
                ready = self.orders_ready.get(action.order)
                if ready is not None:
                    await ready.wait()
            if sequential:
                due = time.monotonic()
            future = await self.dispatch(chat, action, due)
            if action.verb == "open":
                await self._wait(future, action)
            else:
                waiting.append((future, action))
        for future, earlier in waiting:
            await self._wait(future, earlier)

    async def run(self, start: float) -> Outcome:
        """Replays the share from `start` (a `time.monotonic()` moment) and checks it."""
        self.start = start
        self.orders_ready = {o.card.id: asyncio.Event() for o in self.share.orders}
        await self._until(start)
        await asyncio.gather(self._orders(), *(self._chat(chat) for chat in self.share.chats))
        self.outcome.finished = time.monotonic() - start
        await self._settle()
        await self.close()
        self._check()
        return self.outcome

    async def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        sockets = [c.socket for group in self.conns.values() for c in group if c.socket]
        await asyncio.gather(*(s.aclose() for s in sockets))
        if self._http is not None:
            await self._http.aclose()

    # ---- the check -----------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Waits until every participant has what it should, or nothing came for a while."""
        owned = owned_chats(self.share, self.conns)
        last, quiet = -1, 0.0
        while quiet < self.settings.settle:
            got, expected = received_count(owned, self.chat_ids)
            if got >= expected:
                return
            if got != last:
                last, quiet = got, 0.0
            await asyncio.sleep(_POLL)
            quiet += _POLL

    def _check(self) -> None:
        outcome = self.outcome
        deliveries = Latencies()
        ids, appended = self.chat_ids, self.appended
        for conn, chats in owned_chats(self.share, self.conns):
            for chat in chats:
                check_chat(conn, chat, ids, appended, self.start, outcome, deliveries)
        outcome.events = len(self.appended)
        outcome.ack_latency = self.ack_latency.encode()
        outcome.delivery_latency = deliveries.encode()


async def replay_share(
    share: Share,
    settings: ReplaySettings,
    progress: Progress,
    go: Callable[[], Awaitable[float]],
) -> Outcome:
    """Connects, waits for `go` (the start, as a `time.time()` moment), replays, checks."""
    replay = ShareReplay(share, settings, progress)
    try:
        await replay.connect()
        start_wall = await go()
        start = time.monotonic() + max(0.0, start_wall - time.time())
        return await replay.run(start)
    finally:
        with contextlib.suppress(Exception):
            await replay.close()


def _mode(mode: str | None) -> ReturnMode | None:
    if mode is None:
        return None
    return "pvz" if mode == "pvz" else "no_return"
