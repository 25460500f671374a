"""The bench's chats: N chats of one buyer and one operator each, both connected, and the two
ways of loading them.

- `closed_loop`: every socket keeps `window` messages in flight and sends the next when one
  is answered: the most the server delivers (sustained delivered messages per second).
- `open_loop`: messages go out on a fixed schedule at `rate` a second, whatever the server
  does, alternating chats and sides; a message's latency runs from its due time to its
  arrival at the other side, so a server that falls behind cannot hide it.
- `open_loop_periods`: the same schedule for a long run without a pause, measured period by
  period (a soak).

Every message carries its number (`… #123`), which leads from the delivery back to the
moment it was due.
"""

from __future__ import annotations

import asyncio
import functools
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.typing import BytesLike

from chatd.client.tokens import mint
from chatd.loadtest.histogram import Latencies
from chatd.loadtest.system import self_cpu_seconds
from chatd.loadtest.wire import Socket, lean_decoder, open_session
from protocol import frames as f
from protocol.codec import codec_for

TEXT = "Здравствуйте! Подскажите, пожалуйста, когда будет отправка заказа?"
# How long a load may take to be answered after its window: what a server that fell behind
# still owes is worked off before the next measurement starts.
DRAIN_TIMEOUT = 300.0
QUIET = 5.0


@dataclass(eq=False, slots=True)
class _Side:
    """What the fleet keeps per socket."""

    role: str
    chat: str = ""
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class LoadResult:
    offered_per_s: float | None  # None: closed loop
    delivered_per_s: float
    acked_per_s: float
    duration: float
    latency: dict[str, float | int]
    sent: int
    delivered: int  # of the measured messages (open loop), or in the window (closed loop)
    missing: int  # measured messages that never reached the other side (open loop)
    errors: dict[str, int]
    server_cpu: float  # share of one core during the window
    client_cpu: float


@dataclass
class _Window:
    """The part of a run that counts: due times in [start, end)."""

    start: float = 0.0
    end: float = 0.0
    latencies: Latencies = field(default_factory=Latencies)
    delivered: int = 0


@dataclass(frozen=True, slots=True)
class _Marks:
    """The counters at a moment of a run, to take a period's figures as differences."""

    at: float
    server_cpu: float
    client_cpu: float
    acks: int
    errors: Counter[str]


class Fleet:
    def __init__(self, url: str, secret: str, prefix: str, server_cpu: Callable[[], float]) -> None:
        self.url = url
        self.secret = secret
        self.prefix = prefix
        self.server_cpu = server_cpu
        self.codec = codec_for("chatd.v1.json")
        self.decode = lean_decoder(self.codec)
        self.sockets: list[Socket] = []  # buyer, seller, buyer, seller, ...
        self.due: array[float] = array("d")
        self.deliveries = 0
        self.acks = 0
        self.errors: Counter[str] = Counter()
        self.closed_loop_on = False
        self.closing = False
        self.window = _Window()
        # `open_loop_periods`: one window per period, by due time from `_periods_from` on.
        self._periods: list[_Window] = []
        self._periods_from = 0.0
        self._period = 1.0
        self._opened: dict[str, asyncio.Future[str]] = {}

    # ---- setup ---------------------------------------------------------------------------------

    async def open_chats(self, count: int, parallel: int = 100) -> None:
        slots = asyncio.Semaphore(parallel)

        async def one(index: int) -> tuple[Socket, Socket]:
            shop = f"{self.prefix}-s{index}"
            async with slots:
                buyer_token = mint(
                    self.secret, role="buyer", sub=f"{self.prefix}-b{index}", name="Покупатель"
                )
                seller_token = mint(
                    self.secret,
                    role="seller",
                    sub=f"{self.prefix}-o{index}",
                    name="Оператор",
                    seller=shop,
                    shop_name="Магазин",
                )
                buyer, _ = await open_session(self.url, buyer_token, self._on_frame)
                seller, _ = await open_session(self.url, seller_token, self._on_frame)
                for socket in (buyer, seller):
                    socket.closed.add_done_callback(functools.partial(self._closed, socket))
                buyer.owner, seller.owner = _Side("buyer"), _Side("seller")
                rid = f"open-{index}"
                opened = asyncio.get_running_loop().create_future()
                self._opened[rid] = opened
                buyer.send_frame(f.Open(id=rid, seller=shop))
                chat = await asyncio.wait_for(opened, 30)
                buyer.owner.chat = seller.owner.chat = chat
                return buyer, seller

        pairs = await asyncio.gather(*(one(i) for i in range(count)))
        for buyer, seller in pairs:
            self.sockets.extend((buyer, seller))

    def _closed(self, socket: Socket, done: asyncio.Future[int | None]) -> None:
        """A socket the server closed: counted, and nothing more is awaited on it."""
        if self.closing:
            return
        self.errors[f"closed {done.result()}"] += 1
        if socket.owner is not None:
            socket.owner.in_flight = 0

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(s.aclose() for s in self.sockets))
        self.sockets.clear()

    # ---- frames --------------------------------------------------------------------------------

    def _send(self, socket: Socket, due: float) -> None:
        side: _Side = socket.owner
        number = len(self.due)
        self.due.append(due)
        frame = f.Send(chat=side.chat, text=f"{TEXT} #{number}", nonce=f"n{number}")
        if socket.send_frame(frame):
            side.in_flight += 1
        else:
            self.errors["send on a closed socket"] += 1

    def _on_frame(self, socket: Socket, data: BytesLike) -> None:
        now = time.monotonic()
        frame = self.decode(data)
        kind = frame.type
        side: _Side | None = socket.owner
        if kind == "event":
            author = frame.author
            if side is None or author is None or author.role == side.role or not frame.text:
                return
            self.deliveries += 1
            number = int(frame.text.rpartition("#")[2])
            due = self.due[number]
            window = self.window
            if window.start <= due < window.end:
                window.delivered += 1
                window.latencies.record(now - due)
            elif self._periods and due >= self._periods_from:
                window = self._periods[self._period_of(due)]
                window.delivered += 1
                window.latencies.record(now - due)
        elif kind == "ack" or kind == "error":
            if frame.id is not None and frame.id in self._opened:
                future = self._opened.pop(frame.id)
                if kind == "ack" and frame.chat:
                    future.set_result(frame.chat)
                else:
                    future.set_exception(ConnectionError(f"open refused: {frame.code}"))
                return
            if kind == "error":
                self.errors[frame.code or "error"] += 1
            else:
                self.acks += 1
            if side is None:
                return
            side.in_flight -= 1
            if self.closed_loop_on:
                self._send(socket, now)

    # ---- loads ---------------------------------------------------------------------------------

    def _in_flight(self) -> int:
        return sum(s.owner.in_flight for s in self.sockets if s.owner is not None)

    async def _drain(self, measured: int | None = None) -> None:
        """Waits until every message is answered and, for `measured`, delivered; deliveries
        that stop coming once all is answered (to sockets the server closed) are not awaited
        for longer than QUIET seconds."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            answered = self._in_flight() == 0
            delivered = self.window.delivered
            if answered and (measured is None or delivered >= measured):
                return
            now = time.monotonic()
            if delivered != last:
                last, quiet_since = delivered, now
            elif answered and now - quiet_since > QUIET:
                return
            await asyncio.sleep(0.05)

    async def closed_loop(self, window: int, warmup: float, duration: float) -> LoadResult:
        errors = Counter(self.errors)
        self.window = _Window(start=float("inf"), end=float("inf"))
        self.closed_loop_on = True
        now = time.monotonic()
        for socket in self.sockets:
            for _ in range(window):
                self._send(socket, now)
        await asyncio.sleep(warmup)
        start = time.monotonic()
        self.window = _Window(start=start, end=start + duration)
        deliveries, acks, sent = self.deliveries, self.acks, len(self.due)
        server_cpu, client_cpu = self.server_cpu(), self_cpu_seconds()
        await asyncio.sleep(duration)
        elapsed = time.monotonic() - start
        delivered = self.deliveries - deliveries
        acked = self.acks - acks
        server_used, client_used = self.server_cpu() - server_cpu, self_cpu_seconds() - client_cpu
        measured_sent = len(self.due) - sent
        self.closed_loop_on = False
        await self._drain()
        return LoadResult(
            offered_per_s=None,
            delivered_per_s=delivered / elapsed,
            acked_per_s=acked / elapsed,
            duration=elapsed,
            latency=self.window.latencies.summary(),
            sent=measured_sent,
            delivered=delivered,
            missing=0,
            errors=dict(self.errors - errors),
            server_cpu=server_used / elapsed,
            client_cpu=client_used / elapsed,
        )

    async def open_loop(self, rate: float, warmup: float, duration: float) -> LoadResult:
        errors = Counter(self.errors)
        loop_start = time.monotonic() + 0.05
        start = loop_start + warmup
        end = start + duration
        self.window = _Window(start=start, end=end)
        chats = len(self.sockets) // 2
        interval = 1.0 / rate
        index = 0
        cpu_marks: tuple[float, float] | None = None
        acks = 0
        while True:
            due = loop_start + index * interval
            if due >= end:
                break
            now = time.monotonic()
            if cpu_marks is None and now >= start:
                cpu_marks = (self.server_cpu(), self_cpu_seconds())
                acks = self.acks
            if due > now:
                await asyncio.sleep(due - now)
                continue
            chat, turn = index % chats, (index // chats) % 2
            self._send(self.sockets[2 * chat + turn], due)
            index += 1
        elapsed = time.monotonic() - start
        acked = self.acks - acks
        server_cpu, client_cpu = cpu_marks or (self.server_cpu(), self_cpu_seconds())
        server_used = self.server_cpu() - server_cpu
        client_used = self_cpu_seconds() - client_cpu
        measured = sum(1 for i in range(len(self.due)) if start <= self.due[i] < end)
        await self._drain(measured)
        window = self.window
        return LoadResult(
            offered_per_s=rate,
            delivered_per_s=window.delivered / duration,
            acked_per_s=acked / elapsed,
            duration=duration,
            latency=window.latencies.summary(),
            sent=measured,
            delivered=window.delivered,
            missing=measured - window.delivered,
            errors=dict(self.errors - errors),
            server_cpu=server_used / elapsed,
            client_cpu=client_used / elapsed,
        )

    def _period_of(self, due: float) -> int:
        index = int((due - self._periods_from) // self._period)
        return min(index, len(self._periods) - 1)

    def _marks(self) -> _Marks:
        return _Marks(
            time.monotonic(), self.server_cpu(), self_cpu_seconds(), self.acks, Counter(self.errors)
        )

    async def _settle(self, window: _Window, wanted: int) -> None:
        """Waits until `wanted` messages of `window` have arrived, or none has for QUIET
        seconds (the load around it may go on)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        last, quiet_since = -1, time.monotonic()
        while window.delivered < wanted and time.monotonic() < deadline:
            now = time.monotonic()
            if window.delivered != last:
                last, quiet_since = window.delivered, now
            elif now - quiet_since > QUIET:
                return
            await asyncio.sleep(0.05)

    async def open_loop_periods(
        self,
        rate: float,
        period: float,
        count: int,
        report: Callable[[int, LoadResult], None] | None = None,
    ) -> list[LoadResult]:
        """`open_loop` at `rate` for `count` periods of `period` seconds on one schedule
        that never pauses: a soak. Consecutive `open_loop` windows would each wait for their
        last deliveries before the next begins, and in that quiet moment a server that fell
        behind catches up and its WAL is checkpointed to the end, which is what a soak is
        there to see. Each period counts the messages due in it, like `open_loop`'s window,
        and is reported to `report` (index from 0) in order, once all its messages have
        arrived or none has for QUIET seconds, while the load goes on. The list returned is
        counted again after the last period: a delivery that came late is in it."""
        chats = len(self.sockets) // 2
        interval = 1.0 / rate
        loop_start = time.monotonic() + 0.05
        end = loop_start + count * period
        self.window = _Window(start=float("inf"), end=float("inf"))
        self._periods = [
            _Window(loop_start + k * period, loop_start + (k + 1) * period) for k in range(count)
        ]
        self._periods_from, self._period = loop_start, period
        sent = [0] * count
        marks: list[_Marks] = []  # marks[k]: when period k began; marks[count]: the end
        ready: asyncio.Queue[int | None] = asyncio.Queue()
        results: list[LoadResult] = []

        def result(k: int) -> LoadResult:
            window, begun, ended = self._periods[k], marks[k], marks[k + 1]
            elapsed = max(ended.at - begun.at, 1e-6)
            return LoadResult(
                offered_per_s=rate,
                delivered_per_s=window.delivered / period,
                acked_per_s=(ended.acks - begun.acks) / elapsed,
                duration=period,
                latency=window.latencies.summary(),
                sent=sent[k],
                delivered=window.delivered,
                missing=sent[k] - window.delivered,
                errors=dict(ended.errors - begun.errors),
                server_cpu=(ended.server_cpu - begun.server_cpu) / elapsed,
                client_cpu=(ended.client_cpu - begun.client_cpu) / elapsed,
            )

        async def reporter() -> None:
            while (k := await ready.get()) is not None:
                await self._settle(self._periods[k], sent[k])
                results.append(result(k))
                if report is not None:
                    report(k, results[-1])

        def begin(k: int) -> None:
            """Period k begins (k == count: the run ends): the ones before it are all sent."""
            while len(marks) <= k:
                marks.append(self._marks())
                if len(marks) >= 2:
                    ready.put_nowait(len(marks) - 2)

        reporting = asyncio.create_task(reporter())
        try:
            index = 0
            while True:
                due = loop_start + index * interval
                if due >= end:
                    break
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                k = self._period_of(due)
                begin(k)
                chat, turn = index % chats, (index // chats) % 2
                self._send(self.sockets[2 * chat + turn], due)
                sent[k] += 1
                index += 1
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            begin(count)
            ready.put_nowait(None)
            await reporting
            for k in range(count):
                await self._settle(self._periods[k], sent[k])
            await self._drain()
            return [result(k) for k in range(count)]
        finally:
            reporting.cancel()
            self._periods = []
