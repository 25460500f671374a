"""One WebSocket connection: what it is sent, in order, and how slow readers are let go.

Everything a socket receives goes through `push` (hub deliveries) or `reply` (answers to
its own frames), in order, and neither ever waits. While the socket keeps up, a frame is
written into the socket's protocol at once and flushed with whatever else this turn of the
event loop wrote to it (chatd.web.wire). Only when the kernel pushes back (the transport's
buffer is past its high-water mark) do frames wait in a bounded backlog, drained by a writer
task that exists only while there is a backlog; a full backlog closes the connection with
1013 and the client resumes from its cursor. Under a server without a `Wire`, every frame
takes the backlog and ASGI's `send`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from chatd.hub.base import Outgoing
from chatd.render import View
from chatd.web.lifecycle import Lifecycle
from chatd.web.metrics import Metrics
from chatd.web.wire import Wire, take_wire
from protocol.codec import Codec
from protocol.codes import CloseCode

log = logging.getLogger(__name__)

# Seconds a connection closed for being too slow may take to accept its close frame.
ABORT_GRACE = 2.0


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        life: Lifecycle,
        *,
        max_queue: int,
        metrics: Metrics,
    ) -> None:
        self.websocket = websocket
        self.life = life
        codec: Codec = life.codec
        self.codec = codec
        self.view: View = "seller"
        self.wire: Wire | None = take_wire(websocket.scope)
        self._binary = codec.binary
        self._loop = asyncio.get_running_loop()
        # Made when first needed: an idle connection keeps no backlog, and an empty deque
        # alone is over half a kilobyte.
        self._backlog: deque[Outgoing | bytes] | None = None
        self._max_queue = max_queue
        self._metrics = metrics
        self._flush_due = False
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._closed_event: asyncio.Event | None = None
        # Frames written to this socket, for the line its close writes (chatd.web.socket_log).
        self.frames_out = 0

    # ---- what the socket is sent -------------------------------------------------------------

    def push(self, item: Outgoing | bytes) -> None:
        """A hub delivery (or encoded bytes): never waits; a full backlog closes the
        connection (1013)."""
        life = self.life
        if life.closing:
            return
        wire = self.wire
        if life.live and not self._backlog and wire is not None and wire.writable:
            self._write(wire, item)
            return
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        if len(backlog) >= self._max_queue:
            self._metrics.queue_drops.inc()
            self.close(CloseCode.TRY_AGAIN_LATER, "send queue full: resume with your cursor")
            return
        backlog.append(item)
        if life.live and self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="ws-writer")

    def reply(self, frame: Any) -> None:
        """A reply to this connection's own frame."""
        if self.life.closing:
            return
        self._metrics.count_out(frame)
        self.push(self.codec.encode(frame))

    def _encoded(self, item: Outgoing | bytes) -> bytes | None:
        """The bytes to write for `item` (None: its replay sent it), counted as written."""
        if isinstance(item, bytes):
            self.frames_out += 1
            return item
        if self.life.sent_already(item.pos):
            return None
        self.frames_out += 1
        self._metrics.events_out += 1
        return item.encoded(self.view, self.codec)

    def _write(self, wire: Wire, item: Outgoing | bytes) -> None:
        data = self._encoded(item)
        if data is not None and wire.frame(data, self._binary) and not self._flush_due:
            # Flushed once at the end of this turn of the loop, with whatever else it wrote.
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self.wire is not None:
            try:
                self.wire.flush()
            except Exception as exc:  # the peer went away mid-write
                log.debug("flush failed: %s", exc)

    async def send_now(self, frame: Any) -> None:
        """Sends before the connection is live (welcome, replay, synced, a refusal), waiting
        while the kernel pushes back."""
        self._metrics.count_out(frame)
        data = self.codec.encode(frame)
        wire = self.wire
        if wire is None:
            self.frames_out += 1
            await self._send(data)
            return
        if not wire.writable and not wire.gone:
            self._flush()
            await wire.until_writable()
        self._write(wire, data)

    async def _send(self, data: bytes) -> None:
        if self._binary:
            await self.websocket.send_bytes(data)
        else:
            await self.websocket.send_text(data.decode())

    def start(self, replayed_upto: int) -> None:
        """The replay is sent: from now on deliveries go out as they come."""
        if self.life.closing:
            return  # closed during the replay: `finish` closes the socket
        self.life.synced(replayed_upto)
        if self._backlog and self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="ws-writer")

    async def _drain(self) -> None:
        """Writes the backlog while the socket takes it, then ends; closes the socket when
        the connection is closing."""
        wire = self.wire
        failed = False
        try:
            while backlog := self._backlog:
                if wire is None:
                    data = self._encoded(backlog.popleft())
                    if data is not None:
                        await self._send(data)
                elif wire.gone:
                    backlog.clear()
                elif wire.writable:
                    self._write(wire, backlog.popleft())
                else:
                    self._flush()
                    await wire.until_writable()
        except Exception as exc:  # the peer went away mid-send
            log.debug("send failed: %s", exc)
            failed = True
        finally:
            self._writer = None
            if failed or self.life.closing:
                await self._close_socket()

    # ---- closing -----------------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        """Closes after what is queued before now (but a full backlog is dropped)."""
        was_live = self.life.live
        if not self.life.close(code, reason):
            return
        if code == CloseCode.TRY_AGAIN_LATER:
            self._backlog = None
            # A peer that stopped reading never takes the close frame either: if it is still
            # stuck after the grace period, drop the TCP connection.
            self._loop.call_later(ABORT_GRACE, self._abort_if_stuck)
        if was_live and self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="ws-writer")

    def _abort_if_stuck(self) -> None:
        if self._closed:
            return
        if self.wire is not None:
            self.wire.abort()
        else:
            log.warning("cannot drop a stuck connection: no transport to abort")

    @property
    def closing(self) -> bool:
        return self.life.closing

    async def wait_closed(self) -> None:
        if self._closed:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()

    async def _close_socket(self) -> None:
        if self._closed:
            return
        code = self.life.close_code if self.life.close_code is not None else CloseCode.NORMAL
        try:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                # uvicorn frames the close after whatever this connection framed before it.
                await self.websocket.close(code, self.life.close_reason)
        except Exception as exc:  # already gone
            log.debug("close failed: %s", exc)
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()

    async def finish(self) -> None:
        """The session ended (the client went away, or it is closing): flush and close."""
        self.life.close(CloseCode.NORMAL)
        writer = self._writer
        if writer is None:
            await self._close_socket()
        else:
            await writer
            await self._close_socket()
