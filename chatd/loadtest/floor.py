"""The floor: the least a relay of chatd's frames can do, to measure chatd against.

A starlette app under uvicorn with the same WebSocket settings as chatd (websockets'
sans-I/O protocol), speaking the same frames through the same codecs: `hello` (the token is
verified), `open` (a chat per buyer and shop), `send` (an `event` to every socket of both
sides, then the `ack`) and `ping`. No log, no rules, nothing durable: what is left is the
cost of sockets, frames and fan-out. Frames are written to the sockets at once, from the
task that has them (no queue, no writer task).

    CHATD_SECRET=... python -m chatd.loadtest.floor --port 8001
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from protocol import PROTOCOL_VERSION
from protocol import frames as f
from protocol.codec import SUBPROTOCOLS, Codec, DecodeError, codec_for
from protocol.codes import CloseCode, ErrorCode
from protocol.events import Author, MessagePosted, Operator


class Peer:
    """One socket. Frames are written at once, from whichever task has one for it."""

    def __init__(self, websocket: WebSocket, codec: Codec) -> None:
        self.websocket = websocket
        self.codec = codec
        self.keys: tuple[str, ...] = ()
        self.author: Author | None = None
        self.open = True

    async def send(self, data: bytes) -> None:
        if not self.open:
            return
        try:
            if self.codec.binary:
                await self.websocket.send_bytes(data)
            else:
                await self.websocket.send_text(data.decode())
        except Exception:  # the peer went away: it stops receiving, nothing else
            self.open = False

    async def reply(self, frame: f.ServerFrame) -> None:
        await self.send(self.codec.encode(frame))


class Relay:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.subscribers: dict[str, set[Peer]] = {}
        self.chats: dict[str, tuple[str, str]] = {}
        self.seqs: dict[str, int] = {}
        self.pos = 0

    def cursor(self) -> str:
        return f"floor.{self.pos:x}"

    async def serve(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        await websocket.accept(subprotocol=chosen)
        peer = Peer(websocket, codec_for(chosen))
        try:
            if await self._hello(peer):
                await self._frames(peer)
        except WebSocketDisconnect:
            pass
        finally:
            peer.open = False
            for key in peer.keys:
                group = self.subscribers.get(key)
                if group is not None:
                    group.discard(peer)

    async def _hello(self, peer: Peer) -> bool:
        frame = peer.codec.decode_client(await _receive(peer.websocket))
        try:
            if not isinstance(frame, f.Hello):
                raise jwt.InvalidTokenError("the first frame must be hello")
            claims = jwt.decode(frame.token, self.secret, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            await peer.reply(f.Error(code=ErrorCode.UNAUTHORIZED.value, message=str(exc)))
            await peer.websocket.close(CloseCode.UNAUTHORIZED)
            return False
        role, sub = str(claims["role"]), str(claims["sub"])
        name = str(claims.get("name") or sub)
        if role == "seller":
            shop = str(claims["seller"])
            shop_name = str(claims.get("shop_name") or shop)
            peer.keys = ("s:" + shop,)
            peer.author = Author(
                role="seller", id=shop, name=shop_name, operator=Operator(id=sub, name=name)
            )
        else:
            peer.keys = ("b:" + sub,) if role == "buyer" else ()
            peer.author = Author(role="buyer", id=sub, name=name)
        for key in peer.keys:
            self.subscribers.setdefault(key, set()).add(peer)
        user = f.UserInfo(id=sub, role="seller" if role == "seller" else "buyer", name=name)
        welcome = f.Welcome(
            session=secrets.token_hex(8),
            user=user,
            server_time=datetime.now(UTC),
            cursor=self.cursor(),
            protocol=PROTOCOL_VERSION,
        )
        await peer.reply(welcome)
        return True

    async def _frames(self, peer: Peer) -> None:
        while peer.open:
            frame = peer.codec.decode_client(await _receive(peer.websocket))
            match frame:
                case f.Send():
                    await self._send(peer, frame)
                case f.Open():
                    author = peer.author
                    assert author is not None
                    chat = f"{author.id}~{frame.seller}"
                    self.chats.setdefault(chat, ("b:" + author.id, "s:" + frame.seller))
                    self.seqs.setdefault(chat, 1)
                    await peer.reply(f.Ack(id=frame.id, chat=chat, seq=1, cursor=self.cursor()))
                case f.Ping():
                    await peer.reply(f.Pong(id=frame.id))
                case DecodeError():
                    await peer.reply(f.Error(code="bad_frame", message=frame.message, id=frame.id))
                case _:
                    message = "not in the floor"
                    await peer.reply(f.Error(code="bad_frame", message=message, id=frame.id))

    async def _send(self, peer: Peer, frame: f.Send) -> None:
        keys = self.chats.get(frame.chat)
        if keys is None or peer.author is None:
            await peer.reply(f.Error(code="not_found", message="no such chat", id=frame.id))
            return
        seq = self.seqs[frame.chat] + 1
        self.seqs[frame.chat] = seq
        self.pos += 1
        event = f.EventFrame(
            chat=frame.chat,
            seq=seq,
            cursor=self.cursor(),
            at=datetime.now(UTC),
            kind="message",
            author=peer.author,
            data=MessagePosted(),
            text=frame.text,
        )
        encoded: dict[str, bytes] = {}
        targets: set[Peer] = set()
        for key in keys:
            targets.update(self.subscribers.get(key, ()))
        for target in targets:
            data = encoded.get(target.codec.subprotocol)
            if data is None:
                data = encoded[target.codec.subprotocol] = target.codec.encode(event)
            await target.send(data)
        await peer.reply(f.Ack(id=frame.id, chat=frame.chat, seq=seq, cursor=self.cursor()))


async def _receive(websocket: WebSocket) -> bytes | str:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data: bytes | str | None = message.get("bytes")
    if data is None:
        data = message.get("text")
    return data if data is not None else b""


def app(secret: str) -> Starlette:
    relay = Relay(secret)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/healthz", healthz), WebSocketRoute("/ws", relay.serve)],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatd.loadtest.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max-frame", type=int, default=64 * 1024)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    secret = os.environ.get("CHATD_SECRET")
    if not secret:
        print("floor: set CHATD_SECRET", file=sys.stderr)
        return 2
    uvicorn.run(
        app(secret),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=args.max_frame,
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="off",
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
