"""The real ASGI app of `chatd serve` in this process, driven through fake ASGI WebSockets.

Frames take the whole decode-and-dispatch path (`Session._frames`: rate limit, codec,
`_bad_frame`, `_dispatch`, the connection's queue and writer) against a `ChatService` on a
`SqliteStore` in a temporary directory and a `LocalHub`, with the demo data loaded. `feed`
sends one frame on one connection and returns every frame the server answered with, using a
`ping` as a barrier: a connection handles its frames one at a time, so everything caused by a
frame is queued before the pong that follows it.

Used by the hypothesis tests in this folder and by the atheris harness
(`python -m tests.fuzz.atheris_dispatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from chatd import auth
from chatd.domain.rules import Rules
from chatd.process.assemble import assemble
from chatd.process.demo import IVANOV, MANAGER, OPERATOR, SECOND_OPERATOR, SHOP, TIMUR, load_demo
from chatd.web.app import ChatApp
from protocol import frames as f
from protocol.codec import CODECS, JSON, MSGPACK, DecodeError
from protocol.codes import ErrorCode

SECRET = "fuzz-secret-" + "z" * 24
HUGE = 10**9
KNOWN_CODES = {code.value for code in ErrorCode}
WS_LOGGER = "chatd.web.ws"


@dataclass(frozen=True)
class Peer:
    """Who a fake socket speaks for, in which subprotocol, and how its frames travel."""

    name: str
    claims: dict[str, Any]
    subprotocol: str
    binary_frames: bool  # JSON sent in binary frames: bytes that need not be UTF-8


def _peers() -> list[Peer]:
    buyer = {"role": "buyer", "sub": TIMUR.id, "name": TIMUR.name}
    other = {"role": "buyer", "sub": IVANOV.id, "name": IVANOV.name}
    anna = {"role": "seller", "sub": OPERATOR.id, "name": OPERATOR.name, "seller": SHOP.id}
    oleg = {"role": "seller", "sub": SECOND_OPERATOR.id, "name": "Олег", "seller": SHOP.id}
    manager = {"role": "manager", "sub": MANAGER.id, "name": MANAGER.name}
    stranger = {"role": "seller", "sub": "op-x", "name": "X", "seller": "shop-x"}
    return [
        Peer("buyer-json", buyer, JSON, False),
        Peer("seller-json", anna, JSON, False),
        Peer("manager-json", manager, JSON, False),
        Peer("buyer-json-binary", other, JSON, True),
        Peer("seller-msgpack", oleg, MSGPACK, True),
        Peer("buyer-msgpack", buyer, MSGPACK, True),
        Peer("manager-msgpack", manager, MSGPACK, True),
        Peer("stranger-json", stranger, JSON, False),
    ]


PEERS = _peers()


class LogCounter(logging.Handler):
    """Counts records of the socket layer: bad-frame lines and errors."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def bad_frame_lines(self) -> int:
        return sum(1 for r in self.records if r.getMessage().startswith("bad frame"))

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@dataclass
class FakeSocket:
    """One ASGI WebSocket: what the app receives and what it sends."""

    peer: Peer
    to_app: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    from_app: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    closed_with: int | None = None

    @property
    def codec(self) -> Any:
        return CODECS[self.peer.subprotocol]

    def scope(self) -> dict[str, Any]:
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "subprotocols": [self.peer.subprotocol],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

    async def receive(self) -> dict[str, Any]:
        return await self.to_app.get()

    async def send(self, message: dict[str, Any]) -> None:
        await self.from_app.put(message)

    def push(self, payload: bytes) -> None:
        if self.peer.binary_frames:
            self.to_app.put_nowait({"type": "websocket.receive", "bytes": payload})
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            # A text frame is UTF-8 by the WebSocket rules; other bytes go as a binary frame.
            self.to_app.put_nowait({"type": "websocket.receive", "bytes": payload})
            return
        self.to_app.put_nowait({"type": "websocket.receive", "text": text})

    async def next_frame(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next frame the app sent, decoded; None once the app closed the socket."""
        message = await asyncio.wait_for(self.from_app.get(), timeout)
        if message["type"] == "websocket.close":
            self.closed_with = int(message.get("code", 1000))
            return None
        if message["type"] != "websocket.send":
            raise AssertionError(f"unexpected ASGI message {message}")
        data = message.get("bytes")
        if data is None:
            data = message["text"]
        if self.peer.subprotocol == MSGPACK:
            assert isinstance(data, bytes), "msgpack frames must be binary"
        else:
            assert isinstance(data, str), "JSON frames must be text"
        decoded: dict[str, Any] = (
            msgspec.msgpack.decode(data) if isinstance(data, bytes) else msgspec.json.decode(data)
        )
        # Every frame the server sends keeps to the contract.
        self.codec.decode_server(data)
        return decoded


NOTICES_OF_OTHERS = frozenset({"event", "read", "typing", "presence"})


@dataclass
class Outcome:
    """What one frame caused on its own connection."""

    decoded: bool
    replies: list[dict[str, Any]]
    closed_with: int | None


class InProcessServer:
    """`assemble()`d app with the demo data, rate limits lifted, in a temporary directory."""

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="chatd-fuzz-")) if root is None else root
        self.db = self.root / "fuzz.db"
        self.loop = asyncio.new_event_loop()
        self.chat_app: ChatApp | None = None
        self.sockets: list[FakeSocket] = []
        self.log = LogCounter()
        self._lifespan_in: asyncio.Queue[dict[str, Any]] | None = None
        self._lifespan_task: asyncio.Task[None] | None = None
        self._barrier = itertools.count()
        self.frames_fed = 0

    # ---- life ------------------------------------------------------------------------------

    def __enter__(self) -> InProcessServer:
        logger = logging.getLogger(WS_LOGGER)
        logger.addHandler(self.log)
        self._level = logger.level
        logger.setLevel(logging.INFO)
        self.loop.run_until_complete(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.loop.run_until_complete(self._stop())
        finally:
            self.loop.close()
            logger = logging.getLogger(WS_LOGGER)
            logger.removeHandler(self.log)
            logger.setLevel(self._level)
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    async def _start(self) -> None:
        self.chat_app = assemble(
            db=self.db,
            secret=SECRET,
            rules=Rules(),
            rate=HUGE,
            burst=HUGE,
            user_rate=HUGE,
            user_burst=HUGE,
            max_connections_per_user=HUGE,
        )
        self._lifespan_in = asyncio.Queue()
        sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await self._lifespan_in.put({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            await sent.put(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._lifespan_task = asyncio.create_task(
            self.chat_app.app(scope, self._lifespan_in.get, send)
        )
        started = await asyncio.wait_for(sent.get(), 20)
        assert started["type"] == "lifespan.startup.complete", started
        await load_demo(self.chat_app.service.store, Rules())
        for peer in PEERS:
            self.sockets.append(await self._connect(peer))

    async def _stop(self) -> None:
        for sock in self.sockets:
            sock.to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})
        for sock in self.sockets:
            if sock.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sock.task, 10)
        if self._lifespan_in is not None and self._lifespan_task is not None:
            await self._lifespan_in.put({"type": "lifespan.shutdown"})
            await asyncio.wait_for(self._lifespan_task, 20)

    @property
    def app(self) -> ChatApp:
        assert self.chat_app is not None
        return self.chat_app

    def token(self, claims: dict[str, Any], ttl: float = 3600) -> str:
        return auth.issue(
            SECRET,
            role=claims["role"],
            sub=claims["sub"],
            name=claims["name"],
            seller=claims.get("seller"),
            ttl=ttl,
        )

    async def _connect(self, peer: Peer) -> FakeSocket:
        sock = FakeSocket(peer)
        sock.task = asyncio.create_task(self.app.app(sock.scope(), sock.receive, sock.send))
        await sock.to_app.put({"type": "websocket.connect"})
        accepted = await asyncio.wait_for(sock.from_app.get(), 10)
        assert accepted["type"] == "websocket.accept", accepted
        assert accepted.get("subprotocol") == peer.subprotocol, accepted
        sock.push(sock.codec.encode(f.Hello(token=self.token(peer.claims))))
        welcome = await sock.next_frame()
        assert welcome is not None and welcome["type"] == "welcome", welcome
        return sock

    # ---- frames ----------------------------------------------------------------------------

    def feed(self, peer_index: int, payload: bytes) -> Outcome:
        return self.loop.run_until_complete(self.afeed(peer_index, payload))

    async def afeed(self, peer_index: int, payload: bytes) -> Outcome:
        sock = self.sockets[peer_index % len(self.sockets)]
        if sock.closed_with is not None:
            sock = self.sockets[peer_index % len(self.sockets)] = await self._connect(sock.peer)
        decoded = not isinstance(_decode_as_the_server_does(sock, payload), DecodeError)
        barrier = f"barrier-{next(self._barrier)}"
        sock.push(payload)
        sock.push(sock.codec.encode(f.Ping(id=barrier)))
        self.frames_fed += 1
        replies: list[dict[str, Any]] = []
        while True:
            frame = await sock.next_frame()
            if frame is None:
                return Outcome(decoded, replies, sock.closed_with)
            if frame.get("id") == barrier:
                assert frame["type"] == "pong", frame
                return Outcome(decoded, replies, None)
            # What other peers' frames cause reaches this socket too, whenever it comes:
            # their events and read marks, typing and presence notices. None is a reply.
            if frame["type"] not in NOTICES_OF_OTHERS:
                replies.append(frame)

    # ---- what must hold --------------------------------------------------------------------

    def check_store(self) -> None:
        """The log is whole: per-chat `seq` gapless and unique, SQLite's integrity check ok."""
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            rows = db.execute("SELECT stream, seq FROM events ORDER BY stream, seq").fetchall()
        streams: dict[str, list[int]] = {}
        for stream, seq in rows:
            streams.setdefault(stream, []).append(seq)
        for stream, seqs in streams.items():
            assert seqs == list(range(1, len(seqs) + 1)), f"{stream}: {seqs}"


def _decode_as_the_server_does(sock: FakeSocket, payload: bytes) -> Any:
    if sock.peer.binary_frames:
        return sock.codec.decode_client(payload)
    try:
        return sock.codec.decode_client(payload.decode())
    except UnicodeDecodeError:
        return sock.codec.decode_client(payload)


def check_outcome(outcome: Outcome, payload: bytes, codec_name: str) -> None:
    """What the contract promises for any frame an authenticated client sends."""
    assert outcome.closed_with is None, f"a frame closed the socket ({outcome.closed_with})"
    for reply in outcome.replies:
        if reply["type"] == "error":
            assert reply["code"] in KNOWN_CODES, reply
            assert reply["code"] != "internal", f"an exception past the codec: {reply}"
            assert isinstance(reply["message"], str) and reply["message"], reply
    if not outcome.decoded:
        assert len(outcome.replies) == 1, outcome.replies
        (reply,) = outcome.replies
        assert reply["type"] == "error" and reply["code"] == "bad_frame", reply
        # An echoed id is the frame's own (whether every valid id is echoed has its own test).
        if "id" in reply:
            assert reply["id"] == CODECS[codec_name].request_id(payload), reply
    else:
        # One answer at most: a frame that asks gets one reply, `read` none unless refused.
        assert len(outcome.replies) <= 1, outcome.replies


@contextlib.contextmanager
def in_process_server(root: Path | None = None) -> Iterator[InProcessServer]:
    with InProcessServer(root) as server:
        yield server
