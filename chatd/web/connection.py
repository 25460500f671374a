"""One WebSocket connection: its bounded send queue and the task that drains it.

Everything a socket receives goes through its queue, in order: replies to its own frames and
events fanned out by the hub. `push` never waits; when the queue is full the connection is
closed with 1013 and the client resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from chatd.hub.base import Outgoing
from chatd.render import View
from chatd.web.metrics import Metrics
from protocol.codec import Codec
from protocol.codes import CloseCode

log = logging.getLogger(__name__)

# Seconds a connection closed for being too slow may take to accept its close frame.
ABORT_GRACE = 2.0


ABORT_SCOPE_KEY = "chatd.abort"


class ExposeAbort:
    """ASGI middleware at the root of the app: puts the server's way to drop a WebSocket's
    TCP connection into the scope, as `scope["chatd.abort"]`.

    ASGI has no message for this, and a graceful close waits for a peer that does not read.
    Only at the root is `send` still uvicorn's own (a method of the protocol object that
    holds the transport); starlette wraps it further in.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            abort = getattr(transport, "abort", None)
            if callable(abort):
                scope[ABORT_SCOPE_KEY] = abort
        await self.app(scope, receive, send)


def abort_transport(websocket: WebSocket) -> None:
    """Drops the TCP connection under `websocket` at once, unsent data and all."""
    abort = websocket.scope.get(ABORT_SCOPE_KEY)
    if callable(abort):
        abort()
    else:
        log.warning("cannot drop a stuck connection: no transport to abort")


class Connection:
    def __init__(
        self, websocket: WebSocket, codec: Codec, *, max_queue: int, metrics: Metrics
    ) -> None:
        self.websocket = websocket
        self.codec = codec
        self.view: View = "seller"
        self._queue: deque[Outgoing | bytes] = deque()
        self._max_queue = max_queue
        self._wakeup = asyncio.Event()
        self._metrics = metrics
        self._close_code: int | None = None
        self._close_reason = ""
        # Events at or below this position were sent by the replay after `hello.since`.
        self._replayed_upto = 0
        self._writer: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    # ---- queueing ----------------------------------------------------------------------------

    def push(self, item: Outgoing) -> None:
        """A hub delivery: never blocks; a full queue closes the connection (1013)."""
        if self._close_code is not None:
            return
        if len(self._queue) >= self._max_queue:
            self._metrics.queue_drops.inc()
            self.close(CloseCode.TRY_AGAIN_LATER, "send queue full: resume with your cursor")
            return
        self._queue.append(item)
        self._wakeup.set()

    def reply(self, frame: Any) -> None:
        """A reply to this connection's own frame."""
        if self._close_code is not None:
            return
        self._metrics.count_out(frame)
        self._queue.append(self.codec.encode(frame))
        self._wakeup.set()

    def close(self, code: int, reason: str = "") -> None:
        """Closes after what is queued before now (but a full queue is dropped)."""
        if self._close_code is not None:
            return
        self._close_code = code
        self._close_reason = reason
        if code == CloseCode.TRY_AGAIN_LATER:
            self._queue.clear()
            # A peer that stopped reading never takes the close frame either: if it is still
            # stuck after the grace period, drop the TCP connection.
            loop = asyncio.get_running_loop()
            loop.call_later(ABORT_GRACE, self._abort_if_stuck)
        self._wakeup.set()

    def _abort_if_stuck(self) -> None:
        if not self.closed.is_set():
            abort_transport(self.websocket)

    @property
    def closing(self) -> bool:
        return self._close_code is not None

    # ---- sending -----------------------------------------------------------------------------

    async def send_now(self, frame: Any) -> None:
        """Sends directly, before the writer runs (welcome, replay, synced)."""
        self._metrics.count_out(frame)
        await self._send(self.codec.encode(frame))

    async def _send(self, data: bytes) -> None:
        if self.codec.binary:
            await self.websocket.send_bytes(data)
        else:
            await self.websocket.send_text(data.decode())

    def start(self, replayed_upto: int) -> None:
        self._replayed_upto = replayed_upto
        self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")

    async def _write_loop(self) -> None:
        try:
            while True:
                while self._queue:
                    item = self._queue.popleft()
                    if isinstance(item, bytes):
                        await self._send(item)
                        continue
                    if item.pos is not None and item.pos <= self._replayed_upto:
                        continue
                    self._metrics.events_out.inc()
                    await self._send(item.encoded(self.view, self.codec))
                if self._close_code is not None:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        except Exception as exc:  # the peer went away mid-send
            log.debug("send failed: %s", exc)
        finally:
            await self._close_socket()

    async def _close_socket(self) -> None:
        code = self._close_code if self._close_code is not None else CloseCode.NORMAL
        try:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.close(code, self._close_reason)
        except Exception as exc:  # already gone
            log.debug("close failed: %s", exc)
        self.closed.set()

    async def finish(self) -> None:
        """Stops the writer after the client went away, or flushes and closes."""
        if self._writer is None:
            await self._close_socket()
            return
        if self._close_code is None:
            self.close(CloseCode.NORMAL)
        await self._writer
