"""Writing WebSocket frames straight to the socket, past the ASGI send path.

Through ASGI every frame is one awaited `send` that passes starlette's wrappers and
uvicorn's dispatch and ends in its own `transport.write`, that is one system call per frame,
and it needs a task to await it. A fan-out writes thousands of frames a second, so when the
server runs uvicorn's websockets sans-I/O protocol (chatd's own server does), the connection
writes frames into that protocol object itself and flushes what it wrote once per turn of
the event loop: an `ack` and the sender's own copy of the event, or every event of one
group commit for one reader, leave in one system call.

The app's entry (`chatd.web.entry`), where `send` is still uvicorn's own method, puts the
`Wire` into the socket's scope, and the connection takes it out. Under any other server there
is none, and connections use ASGI.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.exceptions import InvalidState
from websockets.protocol import State

log = logging.getLogger(__name__)

WIRE_SCOPE_KEY = "chatd.wire"


class Wire:
    """One WebSocket of uvicorn's sans-I/O protocol, written directly.

    The protocol object keeps what is framed but not yet written in its own buffer, and
    uvicorn's pings and close frames go through the same buffer: order is kept."""

    __slots__ = ("_conn", "_protocol", "_transport")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._conn = protocol.conn
        self._transport = protocol.transport

    @property
    def writable(self) -> bool:
        """True while the socket takes data: open, and the kernel not pushing back (the
        transport's buffer below its high-water mark)."""
        protocol = self._protocol
        return (
            protocol.writable.is_set()
            and not protocol.disconnected
            and not protocol.close_sent
            and self._conn.state is State.OPEN
        )

    @property
    def gone(self) -> bool:
        """The peer is gone or closing: nothing more can be written."""
        protocol = self._protocol
        return bool(protocol.disconnected or protocol.close_sent) or (
            self._conn.state is not State.OPEN
        )

    def frame(self, data: bytes, binary: bool) -> bool:
        """Frames `data` into the protocol's buffer (no system call); False if the socket
        is closing and the frame was dropped."""
        try:
            if binary:
                self._conn.send_binary(data)
            else:
                self._conn.send_text(data)
        except InvalidState:
            return False
        return True

    def flush(self) -> None:
        """Writes what was framed, in one system call."""
        out = self._conn.data_to_send()
        if out and not self._transport.is_closing():
            self._transport.write(b"".join(out))

    async def until_writable(self) -> None:
        await self._protocol.writable.wait()

    def abort(self) -> None:
        """Drops the TCP connection at once, unsent data and all."""
        self._transport.abort()


def expose_wire(scope: Any, send: Any) -> None:
    """Puts the socket's `Wire` into its scope, when `send` is uvicorn's sans-I/O protocol."""
    protocol = getattr(send, "__self__", None)
    needed = ("conn", "transport", "writable", "disconnected", "close_sent")
    if protocol is not None and all(hasattr(protocol, name) for name in needed):
        scope[WIRE_SCOPE_KEY] = Wire(protocol)


def take_wire(scope: Any) -> Wire | None:
    """The `Wire` of a socket's scope, taken out of it: uvicorn's protocol holds the scope
    and the wire holds the protocol, a cycle that only the garbage collector would end."""
    wire = scope.pop(WIRE_SCOPE_KEY, None)
    return wire if isinstance(wire, Wire) else None
