"""One logical connection that outlives its sockets.

`Link` opens a socket, says `hello` (with the cursor its owner gives it), hands every frame
that arrives to its owner (a `Sink`), and when the socket drops, decides from the close code
whether to come back: after 1001, 1006, 1011, 1012, 1013 and network errors it reconnects
with backoff and jitter; after 4001 it asks the token provider for a fresh token; anything
else ends it. The owner (`ChatClient`) keeps the cursor, the pending requests and the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol as WsSubprotocol

from chatd.client.errors import ClientError, ConnectionLost, ProtocolViolation, Unauthorized
from protocol.codec import Codec, Subprotocol, codec_for
from protocol.codes import CloseCode, ErrorCode
from protocol.frames import ClientFrame, Error, Hello, ServerFrame, Welcome

log = logging.getLogger(__name__)

# Closes after which coming back with the cursor is the right thing to do.
RETRY_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})

TokenProvider = Callable[[], str | Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnection attempts: exponential, capped, with jitter.

    >>> backoff = Backoff(initial=0.1, maximum=2.0)
    >>> 0.05 <= backoff.delay(0) <= 0.1 and 1.0 <= backoff.delay(10) <= 2.0
    True
    """

    initial: float = 0.05
    maximum: float = 5.0
    factor: float = 2.0
    # Seconds of failed attempts after which the connection is given up (None: never).
    give_up_after: float | None = 60.0

    def delay(self, attempt: int) -> float:
        cap = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        # Half fixed, half random: many clients dropped at once do not come back at once.
        return random.uniform(cap / 2, cap)


class Dropped(Exception):
    """The socket a request went out on (or was about to) is gone. `sent`: it may have
    reached the server."""

    def __init__(self, sent: bool) -> None:
        super().__init__("connection dropped")
        self.sent = sent


class Sink(Protocol):
    """What a `Link` reports to its owner."""

    def resume_cursor(self) -> str | None:
        """The cursor for `hello.since` on the next socket (None: live events only)."""
        ...

    async def connected(self, welcome: Welcome, generation: int) -> None: ...

    async def received(self, frame: ServerFrame) -> None:
        """Every frame after `welcome`; may wait, which stops reading the socket."""
        ...

    def dropped(self, generation: int) -> None: ...

    async def failed(self, error: ClientError) -> None:
        """The link is over: no more sockets."""
        ...


@dataclass(frozen=True, slots=True)
class LinkOptions:
    subprotocol: Subprotocol = "chatd.v1.json"
    backoff: Backoff = Backoff()
    open_timeout: float = 10.0
    max_size: int | None = 16 * 2**20
    token_provider: TokenProvider | None = None


class Link:
    def __init__(self, url: str, token: str, sink: Sink, options: LinkOptions) -> None:
        self.url = url
        self._token = token
        self._sink = sink
        self._options = options
        self._ws: ClientConnection | None = None
        self._codec: Codec = codec_for(options.subprotocol)
        self._ready = asyncio.Event()
        self._failure: ClientError | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.generation = 0
        self.welcome: Welcome | None = None
        # The close code of every drop so far (None: the network failed without one).
        self.close_codes: list[int | None] = []

    @property
    def subprotocol(self) -> str:
        return self._codec.subprotocol

    # ---- life ----------------------------------------------------------------------------------

    async def start(self) -> Welcome:
        """Opens the first socket. Fails at once if the server is not there or refuses."""
        try:
            ws = await self._handshake()
        except Unauthorized:
            if self._options.token_provider is None:
                raise
            self._token = await self._fresh_token()
            ws = await self._handshake()
        self._task = asyncio.create_task(self._supervise(ws), name="chatd-client-link")
        assert self.welcome is not None
        return self.welcome

    async def aclose(self) -> None:
        self._closing = True
        self._ready.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def wait_ready(self) -> int:
        """The generation of the open socket, once there is one."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise ConnectionLost("the client is closed")
            if self._ready.is_set() and self._ws is not None:
                return self.generation
            await self._ready.wait()

    async def send(self, frame: ClientFrame, generation: int) -> None:
        """Sends on the socket of `generation`; `Dropped` when that socket is gone."""
        ws = self._ws
        if self._failure is not None:
            raise self._failure
        if ws is None or generation != self.generation:
            raise Dropped(sent=False)
        try:
            await ws.send(self._encode(frame))
        except ConnectionClosed:
            if self._ws is ws:
                # Not ready until the supervisor has seen the drop and come back.
                self._ready.clear()
            # The bytes may have left before the close was noticed.
            raise Dropped(sent=True) from None

    # ---- sockets -------------------------------------------------------------------------------

    def _encode(self, frame: ClientFrame) -> str | bytes:
        data = self._codec.encode(frame)
        return data if self._codec.binary else data.decode()

    async def _handshake(self) -> ClientConnection:
        """A new socket that said hello and got welcome; reported to the sink."""
        options = self._options
        ws = await websockets.connect(
            self.url,
            subprotocols=[WsSubprotocol(options.subprotocol)],
            open_timeout=options.open_timeout,
            max_size=options.max_size,
            proxy=None,
        )
        try:
            # A server that picked no subprotocol speaks JSON (docs/protocol.md 1).
            self._codec = codec_for(ws.subprotocol)
            since = self._sink.resume_cursor()
            await ws.send(self._encode(Hello(token=self._token, since=since)))
            async with asyncio.timeout(options.open_timeout):
                first = self._codec.decode_server(await ws.recv())
        except ConnectionClosed as exc:
            await ws.close()
            if exc.rcvd is not None and exc.rcvd.code == CloseCode.UNAUTHORIZED:
                raise Unauthorized("unauthorized", exc.rcvd.reason or "token refused") from None
            raise
        except BaseException:
            await ws.close()
            raise
        if isinstance(first, Error) and first.code == ErrorCode.UNAUTHORIZED:
            await ws.close()
            raise Unauthorized(first.code, first.message, first.details)
        if not isinstance(first, Welcome):
            await ws.close()
            raise ProtocolViolation(f"expected welcome, got {type(first).__name__}")
        self.generation += 1
        self.welcome = first
        self._ws = ws
        await self._sink.connected(first, self.generation)
        self._ready.set()
        return ws

    async def _read(self, ws: ClientConnection) -> int | None:
        """Hands frames to the sink until the socket closes; the close code."""
        try:
            async for data in ws:
                try:
                    frame = self._codec.decode_server(data)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    # A newer server may send what this version does not know: skip it.
                    log.warning("skipping a frame this client cannot read: %s", exc)
                    continue
                await self._sink.received(frame)
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None

    async def _supervise(self, ws: ClientConnection) -> None:
        while True:
            code = await self._read(ws)
            self._ready.clear()
            self._ws = None
            # Sends still waiting on the old socket fail now instead of after close_timeout.
            ws.transport.abort()
            self.close_codes.append(code)
            self._sink.dropped(self.generation)
            log.info("connection dropped (close code %s)", code)
            try:
                ws = await self._reconnect(code)
            except ClientError as exc:
                self._failure = exc
                self._ready.set()
                await self._sink.failed(exc)
                return

    async def _reconnect(self, code: int | None) -> ClientConnection:
        options = self._options
        loop = asyncio.get_running_loop()
        if code == CloseCode.UNAUTHORIZED:
            if options.token_provider is None:
                raise Unauthorized("unauthorized", "the token expired or was refused (4001)")
            self._token = await self._fresh_token()
        elif code is not None and code not in RETRY_CLOSE_CODES:
            raise ConnectionLost(f"the server closed the connection ({code})", close_code=code)
        started = loop.time()
        attempt = 0
        refused = code == CloseCode.UNAUTHORIZED
        immediately = refused
        while True:
            if not immediately:
                await asyncio.sleep(options.backoff.delay(attempt))
            immediately = False
            try:
                return await self._handshake()
            except Unauthorized:
                # One fresh token per refusal: a provider whose tokens are refused too is
                # not going to get better.
                if options.token_provider is None or refused:
                    raise
                refused = True
                self._token = await self._fresh_token()
                immediately = True
                continue
            except InvalidStatus as exc:
                if exc.response.status_code < 500:
                    raise ConnectionLost(
                        f"the server refused the upgrade ({exc.response.status_code})",
                        close_code=code,
                    ) from exc
                log.info("reconnect attempt %d: %s", attempt + 1, exc)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                log.info("reconnect attempt %d: %s", attempt + 1, exc)
            refused = False
            attempt += 1
            give_up = options.backoff.give_up_after
            if give_up is not None and loop.time() - started > give_up:
                raise ConnectionLost(f"could not reconnect within {give_up:g} s", close_code=code)

    async def _fresh_token(self) -> str:
        provider = self._options.token_provider
        assert provider is not None
        token = provider()
        if inspect.isawaitable(token):
            token = await token
        assert isinstance(token, str)
        return token
