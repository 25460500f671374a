"""The load generator's sockets: a WebSocket client as an asyncio Protocol over websockets'
sans-I/O core, with no task per socket and no await per frame.

The SDK (`chatd.client`) is made for programs: a task per socket, a future per request,
reconnects. A generator that holds thousands of sockets and moves tens of thousands of frames
a second on one core needs less: `send` writes at once, and every frame that arrives is handed
to the socket's `handler` from inside the transport's callback. Frames are read through `Lean`,
a view of the server frames with only what a generator looks at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import BytesLike
from websockets.typing import Subprotocol as WsSubprotocol
from websockets.uri import parse_uri

from protocol.codec import Codec, Subprotocol, codec_for
from protocol.frames import ClientFrame, Hello

Handler = Callable[["Socket", BytesLike], None]

CLOSE_GRACE = 2.0


class LeanAuthor(msgspec.Struct, kw_only=True):
    role: str
    id: str = ""


class Lean(msgspec.Struct, kw_only=True):
    """The fields of any server frame that a load generator reads; the rest is skipped."""

    type: str
    id: str | None = None
    chat: str | None = None
    seq: int | None = None
    cursor: str | None = None
    kind: str | None = None
    author: LeanAuthor | None = None
    text: str | None = None
    code: str | None = None
    message: str | None = None
    claim: str | None = None


_LEAN_DECODERS: dict[bool, Any] = {
    False: msgspec.json.Decoder(Lean),
    True: msgspec.msgpack.Decoder(Lean),
}


def lean_decoder(codec: Codec) -> Callable[[BytesLike], Lean]:
    decoder = _LEAN_DECODERS[codec.binary]
    decode: Callable[[BytesLike], Lean] = decoder.decode
    return decode


class Socket(asyncio.Protocol):
    """One client WebSocket. `handler(socket, payload)` gets every text or binary message."""

    def __init__(self, url: str, codec: Codec, handler: Handler) -> None:
        self._protocol = ClientProtocol(
            parse_uri(url), subprotocols=[WsSubprotocol(codec.subprotocol)], max_size=None
        )
        self._transport: asyncio.Transport | None = None
        self._binary = codec.binary
        self.codec = codec
        self.handler = handler
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        # The close code the server sent (None: the TCP connection ended without one).
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.owner: Any = None

    # ---- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._protocol.send_request(self._protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY:
                    self.handler(self, event.data)
            elif isinstance(event, Response) and not self.opened.done():
                if protocol.state is State.OPEN:
                    self.opened.set_result(None)
                else:
                    error = protocol.handshake_exc or ConnectionError("handshake failed")
                    self.opened.set_exception(error)
        self._flush()

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed"))
        if not self.closed.done():
            rcvd = self._protocol.close_rcvd
            self.closed.set_result(rcvd.code if rcvd is not None else None)

    # ---- sending -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._protocol.state is State.OPEN

    def send(self, data: bytes) -> bool:
        """Writes one message at once; False when the socket is no longer open."""
        if self._protocol.state is not State.OPEN:
            return False
        if self._binary:
            self._protocol.send_binary(data)
        else:
            self._protocol.send_text(data)
        self._flush()
        return True

    def send_frame(self, frame: ClientFrame) -> bool:
        return self.send(self.codec.encode(frame))

    def close(self, code: int = 1000) -> None:
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code)
            self._flush()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def aclose(self, grace: float = CLOSE_GRACE) -> None:
        """Closes with 1000 and waits for the TCP connection to end."""
        self.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), grace)
        except TimeoutError:
            self.abort()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._protocol.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
        if self._protocol.close_expected():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.close)


class _First:
    """The handler until the first message: hands it to a future, then steps aside."""

    def __init__(self, then: Handler) -> None:
        self.then = then
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def __call__(self, socket: Socket, data: BytesLike) -> None:
        socket.handler = self.then
        if not self.future.done():
            self.future.set_result(bytes(data))


async def open_socket(
    url: str,
    handler: Handler,
    subprotocol: Subprotocol = "chatd.v1.json",
    open_timeout: float = 10.0,
) -> Socket:
    uri = parse_uri(url)
    codec = codec_for(subprotocol)
    loop = asyncio.get_running_loop()
    _, socket = await asyncio.wait_for(
        loop.create_connection(lambda: Socket(url, codec, handler), uri.host, uri.port),
        open_timeout,
    )
    try:
        await asyncio.wait_for(socket.opened, open_timeout)
    except BaseException:
        socket.abort()
        raise
    return socket


async def open_session(
    url: str,
    token: str,
    handler: Handler,
    *,
    since: str | None = None,
    subprotocol: Subprotocol = "chatd.v1.json",
    open_timeout: float = 10.0,
) -> tuple[Socket, Lean]:
    """A socket that said `hello` and got its first answer (`welcome`, or an error).

    Every later frame goes to `handler`, from the one right after `welcome` on."""
    first = _First(handler)
    socket = await open_socket(url, first, subprotocol, open_timeout)
    socket.send_frame(Hello(token=token, since=since))
    try:
        data = await asyncio.wait_for(asyncio.shield(first.future), open_timeout)
    except BaseException:
        socket.abort()
        raise
    reply = lean_decoder(socket.codec)(data)
    if reply.type != "welcome":
        socket.abort()
        raise ConnectionError(f"hello refused: {reply.code}: {reply.message}")
    return socket, reply
