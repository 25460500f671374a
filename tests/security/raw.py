"""A WebSocket client that does only what it is told: websockets' sans-I/O protocol over a
plain TCP stream. It can send a message in fragments, keep writing after the server closed,
stop reading altogether (a peer whose receive window stays shut), and report exactly which
frames and which close code the server sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri


@dataclass
class Received:
    frames: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    eof: bool = False


class RawSocket:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: ClientProtocol
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.proto = proto
        self.sent_bytes = 0

    def _flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sent_bytes += len(chunk)
                self.writer.write(chunk)

    async def send_text(self, text: str | bytes) -> None:
        self.proto.send_text(text.encode() if isinstance(text, str) else text)
        self._flush()
        await self.writer.drain()

    async def send_text_head(self, text: bytes, head: int) -> None:
        """Only the first `head` bytes of a text frame: its header promises all of `text`."""
        self.proto.send_text(text)
        data = b"".join(self.proto.data_to_send())
        self.writer.write(data[:head])
        await self.writer.drain()

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send_text(json.dumps(frame))

    async def send_fragments(self, parts: list[bytes]) -> None:
        """One text message in len(parts) frames."""
        self.proto.send_text(parts[0], fin=len(parts) == 1)
        for n, part in enumerate(parts[1:], start=2):
            self.proto.send_continuation(part, fin=n == len(parts))
        self._flush()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def read_until_closed(self, timeout: float = 10.0) -> Received:
        """Every frame the server sends until it closes, or until `timeout`."""
        got = Received()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), deadline - loop.time())
            except (TimeoutError, ConnectionError):
                break
            if not data:
                got.eof = True
                self.proto.receive_eof()
            else:
                self.proto.receive_data(data)
            for event in self.proto.events_received():
                if isinstance(event, Frame):
                    if event.opcode == Opcode.CLOSE:
                        got.close_code = (
                            int.from_bytes(event.data[:2], "big") if event.data else 1005
                        )
                        got.close_reason = bytes(event.data[2:]).decode(errors="replace")
                    elif event.opcode in (Opcode.TEXT, Opcode.BINARY):
                        got.frames.append(json.loads(bytes(event.data)))
            self._flush()
            if got.eof or got.close_code is not None:
                break
        return got

    async def next_json(self, timeout: float = 5.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.proto.events_received():
                if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    frame: dict[str, Any] = json.loads(bytes(event.data))
                    return frame
            data = await asyncio.wait_for(self.reader.read(65536), deadline - loop.time())
            if not data:
                raise ConnectionError("closed")
            self.proto.receive_data(data)

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def raw_socket(
    url: str,
    *,
    deflate: bool = False,
    receive_buffer: int | None = None,
    hello: dict[str, Any] | None = None,
) -> AsyncIterator[RawSocket]:
    """Connected and upgraded; with `hello`, also authenticated (the welcome is read)."""
    uri = parse_uri(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        # Before connecting, so the window the peer is offered stays this small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    extensions = [ClientPerMessageDeflateFactory()] if deflate else None
    proto = ClientProtocol(uri, extensions=extensions, max_size=None)
    proto.send_request(proto.connect())
    raw = RawSocket(reader, writer, proto)
    raw._flush()
    while proto.state == State.CONNECTING:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            raise ConnectionError("closed during the handshake")
        proto.receive_data(data)
    proto.events_received()  # the handshake response
    if proto.handshake_exc is not None:
        raise proto.handshake_exc
    try:
        if hello is not None:
            await raw.send_json(hello)
            welcome = await raw.next_json()
            assert welcome["type"] == "welcome", welcome
        yield raw
    finally:
        raw.close()
