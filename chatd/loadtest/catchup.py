"""Catch-up after a reconnect: a buyer leaves with a cursor, shops write N events in its
chats, and the buyer comes back with `hello.since`; the time from `hello` to `synced`, with
every missed event in between."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from websockets.typing import BytesLike

from chatd.client.tokens import mint
from chatd.loadtest.wire import Lean, Socket, lean_decoder, open_session, open_socket
from protocol import frames as f
from protocol.codec import codec_for

WINDOW = 32  # messages in flight per shop while the missed events are written
STEP_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class CatchUpResult:
    missed: int
    runs: list[float]  # seconds from hello to synced, per reconnect
    received: list[int]  # events received before synced, per reconnect

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def complete(self) -> bool:
        return all(count == self.missed for count in self.received)


class _Collector:
    """Replies go to a queue; of events, the cursor of each chat's first is kept."""

    def __init__(self) -> None:
        self.decode = lean_decoder(codec_for("chatd.v1.json"))
        self.replies: asyncio.Queue[Lean] = asyncio.Queue()
        self.opened: dict[str, str] = {}
        self.arrived = asyncio.Event()

    def __call__(self, socket: Socket, data: BytesLike) -> None:
        frame = self.decode(data)
        if frame.type == "event":
            if frame.seq == 1 and frame.chat and frame.cursor:
                self.opened[frame.chat] = frame.cursor
                self.arrived.set()
        elif frame.id is not None:
            self.replies.put_nowait(frame)

    async def answer(self, rid: str) -> Lean:
        while True:
            frame = await self.replies.get()
            if frame.id == rid:
                return frame

    async def opening_of(self, chat: str) -> str:
        while chat not in self.opened:
            self.arrived.clear()
            await self.arrived.wait()
        return self.opened[chat]


async def _write(url: str, secret: str, shop: str, chat: str, count: int) -> None:
    """One operator of `shop` sends `count` messages into `chat`, WINDOW at a time."""
    token = mint(secret, role="seller", sub=f"{shop}-op", name="Оператор", seller=shop)
    acked = asyncio.Event()
    state = {"sent": 0, "answered": 0}
    decode = lean_decoder(codec_for("chatd.v1.json"))

    def on_frame(socket: Socket, data: BytesLike) -> None:
        frame = decode(data)
        if frame.type not in ("ack", "error"):
            return
        state["answered"] += 1
        if state["sent"] < count:
            send(socket)
        elif state["answered"] >= count:
            acked.set()

    def send(socket: Socket) -> None:
        number = state["sent"]
        state["sent"] += 1
        socket.send_frame(f.Send(chat=chat, text=f"Пропущенное сообщение номер {number}"))

    socket, _ = await open_session(url, token, on_frame)
    for _ in range(min(WINDOW, count)):
        send(socket)
    await asyncio.wait_for(acked.wait(), STEP_TIMEOUT)
    await socket.aclose()


async def measure_catch_up(
    url: str, secret: str, prefix: str, missed: int, shops: int = 100, repeats: int = 3
) -> CatchUpResult:
    shops = max(1, min(shops, missed))
    buyer = f"{prefix}-catchup-buyer"
    token = mint(secret, role="buyer", sub=buyer, name="Покупатель")
    collector = _Collector()
    socket, _ = await open_session(url, token, collector)
    chats: list[str] = []
    for index in range(shops):
        rid = f"open-{index}"
        socket.send_frame(f.Open(id=rid, seller=f"{prefix}-catchup-s{index}"))
        reply = await asyncio.wait_for(collector.answer(rid), STEP_TIMEOUT)
        if reply.type != "ack" or not reply.chat:
            raise ConnectionError(f"open refused: {reply.code}: {reply.message}")
        chats.append(reply.chat)
    # The buyer leaves with the cursor of the last event it saw: its last chat's opening.
    cursor = await asyncio.wait_for(collector.opening_of(chats[-1]), STEP_TIMEOUT)
    await socket.aclose()
    per_shop = [missed // shops + (1 if i < missed % shops else 0) for i in range(shops)]
    await asyncio.gather(
        *(
            _write(url, secret, f"{prefix}-catchup-s{i}", chats[i], n)
            for i, n in enumerate(per_shop)
            if n
        )
    )
    runs: list[float] = []
    received: list[int] = []
    for _ in range(repeats):
        took, count = await _reconnect(url, token, cursor)
        runs.append(took)
        received.append(count)
    return CatchUpResult(missed, runs, received)


async def _reconnect(url: str, token: str, since: str) -> tuple[float, int]:
    decode = lean_decoder(codec_for("chatd.v1.json"))
    done: asyncio.Future[tuple[float, int]] = asyncio.get_running_loop().create_future()
    events = 0

    def on_frame(socket: Socket, data: BytesLike) -> None:
        nonlocal events
        frame = decode(data)
        if frame.type == "event":
            events += 1
        elif frame.type in ("synced", "error") and not done.done():
            done.set_result((time.monotonic(), events))

    socket = await open_socket(url, on_frame)
    started = time.monotonic()
    socket.send_frame(f.Hello(token=token, since=since))
    finished, count = await asyncio.wait_for(done, STEP_TIMEOUT)
    await socket.aclose()
    return finished - started, count
