"""Reconnect storm: a thousand clients with cursors on one of two nodes, that node killed under
load, and every one of its clients back at once on the other.

    python -m chatd.proof.reconnect_storm [--clients 1000] [--chats N] [--rate 100]
        [--warmup 5] [--after 3] [--goal 10] [--storm-limit 60] [--pg DSN] [--redis URL]
        [--json FILE] [--workdir DIR]

The program creates a fresh database on the PostgreSQL of `--pg` (dropped at the end) and
starts two `chatd serve` nodes, `a` and `b`, on it and on the Redis of `--redis`, rate limits
lifted (the storm, not the limits, is under test). `--clients` WebSocket clients are the
buyers and the shops' operators of `--chats` one-to-one chats (`--clients`/2 by default, one
socket a side; fewer chats give each side several sockets). Each chat's shop is a shop of its
own, so a socket hears its own chat and nothing else. All of them connect to node `a` before
their chats open, and each keeps the cursor of the last `event` (or `synced`) it received, as
the contract (docs/protocol.md, "Order, cursors, delivery") says a client does.

Messages are written at `--rate` a second over HTTP (`POST /api/v1/chats/{chat}/messages`,
each with an `Idempotency-Key` of its own) on a fixed schedule, through `a` and `b` in turn,
into every chat in turn, by either side. The default rate is below what the two nodes write
at most when they share two cores with PostgreSQL, Redis and this program (about 130 a
second; past it answers take seconds): a storm on a cluster overloaded already would measure
the overload. After `--warmup` seconds node `a` gets SIGKILL under that load. A write that
fails with `a` is sent again to `b` with its key, and the writers use `b` only from then on,
so the log keeps growing through the storm. Every client of `a` sees its socket lost and at
once, with no back-off and no spread (the worst case), says `hello{since}` to `b` with its
cursor. A reconnect that is refused (an `error` frame, a close before `synced`, a connection
that fails) is tried again after RETRY_PAUSE, the same pause for every client. Once every
client is synced the load goes on for `--after` seconds and stops; when every client has
every event of its chat (or DRAIN_LIMIT has passed), the log is read from PostgreSQL: the
truth each client is compared with.

Figures:

- the time from the kill until each client received `synced` from `b`: p50, p99, max, and the
  time until every client had; and where it went: until node `a`'s socket was seen lost,
  until the connection to `b` was made, until `welcome`, until `synced` (the replay);
- per client, against the log: events missed (an event of its chat that never reached it),
  doubled (one seq received twice, over both its connections) and out of order;
- the reconnects refused, by code (or close code, or the connection's failure), and the
  sockets `b` closed after their `synced`;
- the writes: offered, acked (and their latency from their due time), moved from `a` to `b`,
  refused by reason; acked writes the log lacks, and messages the log holds twice (one
  `Idempotency-Key` written twice);
- node `b`: its resident memory (VmRSS sampled every 100 ms: at the kill and the peak from
  the kill until every client was synced; and VmHWM, its peak over its whole life) and its
  CPU (utime + stime of /proc/PID/stat, sampled every 100 ms: the busiest 100 ms as a share of
  one core (the kernel counts in 10 ms ticks, so a sample is ±10 points), the CPU-seconds from
  the kill until every client was synced, and the mean share before the kill); and the
  tracebacks in its log.

Verdicts: missed 0, doubled 0, out of order 0, events of other chats 0, acked writes lost 0,
messages written twice 0, and every client synced within `--goal` seconds of the kill (the
figure is printed either way). The exit status is 0 when every verdict holds, 1 when one
fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import httpx
import websockets
from websockets.typing import BytesLike

from chatd.client.tokens import mint
from chatd.launcher import Server, cpu_seconds, rss_bytes
from chatd.loadtest.system import raise_open_files
from chatd.loadtest.wire import Lean, Socket, lean_decoder, open_socket
from chatd.proof.races import (
    DEFAULT_PG,
    DEFAULT_REDIS,
    Node,
    postgres_database,
    require_redis,
    started,
)
from protocol import frames as f
from protocol.codec import codec_for
from protocol.events import decode_event

Role = Literal["buyer", "seller"]

PREFIX = "storm"
TEXT = "Здравствуйте! Когда будет отправка заказа? #"
RETRY_PAUSE = 0.1  # after a refused reconnect; the same for everyone, so no spread
SAMPLE_EVERY = 0.1  # seconds between readings of node b's memory and CPU
# The CPU peak is the busiest stretch of at least this long: the kernel counts CPU time in
# ticks of 10 ms per thread, so over one 0.1 s interval the share is off by tens of percent
# (a storm's peak read 265% of a core on 2 cores).
PEAK_WINDOW = 0.5
CONNECT_PARALLEL = 100  # the first connections to node a, and the chats' opening
CONNECT_TIMEOUT = 10.0
FIRST_ANSWER = 30.0  # a `welcome`, or an `open`'s ack, before the kill
WRITE_TIMEOUT = 10.0
WRITES_IN_FLIGHT = 256  # past it the schedule waits: the achieved rate says so
DRAIN_LIMIT = 30.0  # the longest wait for every client to have every event of its chat
LATE_DUPLICATES = 0.5  # a doubled event would come now: give it the time
CLOSE_TIMEOUT = 10.0
MIB = 1024 * 1024


def say(*parts: object) -> None:
    print(*parts, flush=True)


# ---- the clients -------------------------------------------------------------------------------


@dataclass(eq=False)
class Client:
    """One socket's owner, across its connections: a buyer or an operator of one chat."""

    index: int
    chat_index: int
    role: Role
    token: str
    chat: str = ""
    cursor: str | None = None
    heard: dict[str, list[int]] = field(default_factory=dict)  # chat: seqs, as they arrived
    synced_at: float | None = None  # the first `synced` from node b
    lost_at: float | None = None  # node a's socket seen closed
    hello_at: float | None = None  # the last `hello` sent to node b
    welcome_at: float | None = None  # the last `welcome` from node b
    session: Session | None = None
    socket: Socket | None = None
    connections: int = 0


@dataclass(eq=False)
class Session:
    """One connection of a client."""

    client: Client
    node: str
    resumed: bool  # `hello` carried a cursor
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # welcome, error or close
    welcomed: bool = False
    synced: bool = False
    error: str | None = None  # the code of the last error frame without an `id`


@dataclass(frozen=True)
class Chat:
    index: int
    shop: str
    buyer_token: str
    seller_token: str
    id: str = ""


def _connect_failure(exc: BaseException) -> str:
    """What a failed connection is counted as: the HTTP status of a refused handshake, else
    the exception's kind."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return f"connect: HTTP {status}" if status is not None else f"connect: {type(exc).__name__}"


CONNECT_ERRORS = (OSError, TimeoutError, websockets.WebSocketException)


class Fleet:
    """Every client's socket, one handler for all of their frames, and each client's life:
    node a first, and after a lost socket node b with its cursor, until the run stops."""

    def __init__(self, clients: list[Client], nodes: dict[str, Node]) -> None:
        self.clients = clients
        self.nodes = nodes
        self.decode = lean_decoder(codec_for("chatd.v1.json"))
        self.replies: dict[str, asyncio.Future[Lean]] = {}
        self.killed_at: float | None = None
        self.synced = 0
        self.all_synced = asyncio.Event()
        self.stopping = asyncio.Event()
        self.refused: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()  # closed by b after its `synced`
        self.lost_before_kill = 0
        self._tasks: list[asyncio.Task[None]] = []

    # ---- frames ------------------------------------------------------------------------------

    def on_frame(self, socket: Socket, data: BytesLike) -> None:
        session: Session = socket.owner
        client = session.client
        frame = self.decode(data)
        kind = frame.type
        if kind == "event":
            if frame.chat is not None and frame.seq is not None:
                client.heard.setdefault(frame.chat, []).append(frame.seq)
            if frame.cursor:
                client.cursor = frame.cursor
        elif kind == "synced":
            if frame.cursor:
                client.cursor = frame.cursor
            session.synced = True
            if session.node == "b":
                self._synced_on_b(client)
        elif kind == "welcome":
            # Without a cursor, live events follow `welcome.cursor`; with one, the replay
            # does, and `welcome.cursor` (the log's end) must not replace it.
            if not session.resumed and frame.cursor:
                client.cursor = frame.cursor
            session.welcomed = True
            if session.node == "b":
                client.welcome_at = time.monotonic()
            session.answered.set()
        elif kind in ("ack", "error") and frame.id is not None and frame.id in self.replies:
            reply = self.replies.pop(frame.id)
            if not reply.done():
                reply.set_result(frame)
        elif kind == "error":
            session.error = frame.code or "error"
            session.answered.set()
            if session.node == "b":
                (self.dropped if session.synced else self.refused)[session.error] += 1

    def _synced_on_b(self, client: Client) -> None:
        if client.synced_at is not None:
            return
        client.synced_at = time.monotonic()
        self.synced += 1
        self._check_all_synced()

    def _check_all_synced(self) -> None:
        if self.killed_at is not None and self.synced == len(self.clients):
            self.all_synced.set()

    # ---- connections -------------------------------------------------------------------------

    async def connect(self, client: Client, node: str) -> Socket:
        """A socket to `node` that said `hello` (with the client's cursor, if it has one)."""
        session = Session(client, node, resumed=client.cursor is not None)
        socket = await open_socket(
            self.nodes[node].server.url, self.on_frame, open_timeout=CONNECT_TIMEOUT
        )
        socket.owner = session
        socket.closed.add_done_callback(lambda _done: session.answered.set())
        client.session, client.socket = session, socket
        client.connections += 1
        socket.send_frame(f.Hello(token=client.token, since=client.cursor))
        if node == "b":
            client.hello_at = time.monotonic()
        return socket

    async def connect_all_to_a(self) -> None:
        slots = asyncio.Semaphore(CONNECT_PARALLEL)

        async def one(client: Client) -> None:
            async with slots:
                await self.connect(client, "a")
                assert client.session is not None
                await asyncio.wait_for(client.session.answered.wait(), FIRST_ANSWER)
                if not client.session.welcomed:
                    refused = client.session.error or "closed before welcome"
                    raise ConnectionError(f"client {client.index} refused by a: {refused}")

        await asyncio.gather(*(one(client) for client in self.clients))
        self._tasks = [asyncio.create_task(self._follow(client)) for client in self.clients]

    async def _follow(self, client: Client) -> None:
        """Waits for the client's socket to be lost, then goes to node b at once with the
        client's cursor, again and again until the run stops."""
        while True:
            socket, session = client.socket, client.session
            assert socket is not None and session is not None
            code = await asyncio.shield(socket.closed)
            if self.stopping.is_set():
                return
            if session.node == "a" and self.killed_at is not None:
                client.lost_at = time.monotonic()
            self._count_loss(session, code)
            await self._reconnect_to_b(client)
            if self.stopping.is_set():
                return

    def _count_loss(self, session: Session, code: int | None) -> None:
        """A lost socket: of node a before the kill, or one node b closed (counted by its
        error frame, when it sent one, else by the close)."""
        if session.node == "a":
            if self.killed_at is None:
                self.lost_before_kill += 1
            return
        if session.error is not None:
            return
        closed = f"closed {code}" if code is not None else "closed without a close frame"
        (self.dropped if session.synced else self.refused)[closed] += 1

    async def _reconnect_to_b(self, client: Client) -> None:
        while not self.stopping.is_set():
            try:
                await self.connect(client, "b")
                return
            except CONNECT_ERRORS as exc:
                self.refused[_connect_failure(exc)] += 1
            await asyncio.sleep(RETRY_PAUSE)

    def mark_kill(self) -> None:
        """The moment of the kill, from which each client's time to `synced` is counted (a
        client that lost node a earlier and is synced on b already counts 0)."""
        self.killed_at = time.monotonic()
        self._check_all_synced()

    async def request(self, client: Client, frame: f.Open) -> Lean:
        assert client.socket is not None and frame.id is not None
        reply: asyncio.Future[Lean] = asyncio.get_running_loop().create_future()
        self.replies[frame.id] = reply
        client.socket.send_frame(frame)
        return await asyncio.wait_for(reply, FIRST_ANSWER)

    async def close(self) -> None:
        self.stopping.set()
        sockets = [c.socket for c in self.clients if c.socket is not None]
        await asyncio.gather(*(s.aclose() for s in sockets))
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()
            # A reconnect that was under way when the run stopped leaves a socket behind.
            stray = [c.socket for c in self.clients if c.socket is not None and c.socket.is_open]
            await asyncio.gather(*(s.aclose() for s in stray))


def make_clients(secret: str, clients: int, chats: int) -> tuple[list[Client], list[Chat]]:
    """`clients` sockets over `chats` chats: for each chat, its buyer's and its operator's
    sockets alternate."""
    per_chat = clients // chats
    made: list[Chat] = []
    for c in range(chats):
        shop = f"{PREFIX}-s{c}"
        buyer = mint(secret, role="buyer", sub=f"{PREFIX}-b{c}", name="Покупатель")
        seller = mint(
            secret,
            role="seller",
            sub=f"{PREFIX}-o{c}",
            name="Оператор",
            seller=shop,
            shop_name="Магазин",
        )
        made.append(Chat(c, shop, buyer, seller))
    owners = []
    for i in range(clients):
        chat = made[i // per_chat]
        role: Role = "buyer" if i % 2 == 0 else "seller"
        token = chat.buyer_token if role == "buyer" else chat.seller_token
        owners.append(Client(i, chat.index, role, token))
    return owners, made


async def open_chats(fleet: Fleet, chats: list[Chat]) -> list[Chat]:
    """Each chat opened by its first buyer socket; its clients learn its id."""
    slots = asyncio.Semaphore(CONNECT_PARALLEL)
    first_buyer: dict[int, Client] = {}
    for client in fleet.clients:
        if client.role == "buyer":
            first_buyer.setdefault(client.chat_index, client)

    async def one(chat: Chat) -> Chat:
        async with slots:
            reply = await fleet.request(
                first_buyer[chat.index], f.Open(id=f"open-{chat.index}", seller=chat.shop)
            )
        if reply.type != "ack" or not reply.chat:
            raise ConnectionError(f"open refused: {reply.code}: {reply.message}")
        return replace(chat, id=reply.chat)

    opened = list(await asyncio.gather(*(one(chat) for chat in chats)))
    for client in fleet.clients:
        client.chat = opened[client.chat_index].id
    return opened


# ---- the writers -------------------------------------------------------------------------------


class Writers:
    """Messages at `rate` a second on a fixed schedule: through a and b in turn, every chat in
    turn, either side. A write that fails with a goes again to b with its Idempotency-Key,
    and from then on every write goes to b."""

    def __init__(self, nodes: dict[str, Node], chats: list[Chat], rate: float) -> None:
        self.nodes = nodes
        self.chats = chats
        self.rate = rate
        self.offered = 0
        self.acked: dict[int, tuple[str, int]] = {}  # message number: (chat, seq)
        self.latencies: list[float] = []  # of acked writes, from their due time
        self.errors: Counter[str] = Counter()
        self.moved = 0
        self.a_down = False
        self.seconds = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        writes: set[asyncio.Task[None]] = set()
        start = loop.time()
        number = 0
        while not stop.is_set():
            delay = start + number / self.rate - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            await slots.acquire()
            task = asyncio.create_task(self._write(number, start + number / self.rate, slots))
            writes.add(task)
            task.add_done_callback(writes.discard)
            number += 1
        self.offered = number
        self.seconds = loop.time() - start
        await asyncio.gather(*writes)

    async def _write(self, number: int, due: float, slots: asyncio.Semaphore) -> None:
        try:
            count = len(self.chats)
            chat = self.chats[number % count]
            turn = number // count  # each chat's turns alternate the sides and the nodes
            token = chat.seller_token if turn % 2 else chat.buyer_token
            node = "b" if self.a_down or (number + turn) % 2 else "a"
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"w{number}"}
            path = f"/api/v1/chats/{chat.id}/messages"
            body = {"text": f"{TEXT}{number}"}
            try:
                response = await self._post(node, path, body, headers)
            except httpx.TransportError as exc:
                if node == "b":
                    self.errors[f"b: {type(exc).__name__}"] += 1
                    return
                self.a_down = True
                self.moved += 1
                try:
                    response = await self._post("b", path, body, headers)
                except httpx.TransportError as again:
                    self.errors[f"b: {type(again).__name__}"] += 1
                    return
            if response.status_code in (200, 201):
                done = response.json()
                self.acked[number] = (str(done["chat"]), int(done["seq"]))
                self.latencies.append(asyncio.get_running_loop().time() - due)
            else:
                self.errors[_http_answer(response)] += 1
        finally:
            slots.release()

    async def _post(
        self, node: str, path: str, body: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        http = self.nodes[node].http
        return await http.post(path, json=body, headers=headers, timeout=WRITE_TIMEOUT)


def _http_answer(response: httpx.Response) -> str:
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"HTTP {response.status_code}" + (f" {code}" if code else "")


# ---- node b's memory and CPU -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    rss: int
    cpu: float


def hwm_bytes(pid: int) -> int:
    """The peak resident set size of a process over its life (VmHWM of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[Sample] = []

    def take(self) -> Sample:
        # The clock read right after the CPU time, nothing between: the interval is the
        # one the CPU time was counted over.
        cpu = cpu_seconds(self.pid)
        at = time.monotonic()
        sample = Sample(at, rss_bytes(self.pid), cpu)
        self.samples.append(sample)
        return sample

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.take()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]


def cpu_share(first: Sample, last: Sample) -> float:
    """The CPU used between two samples, in percent of one core."""
    wall = last.at - first.at
    return 100.0 * (last.cpu - first.cpu) / wall if wall > 0 else 0.0


def cpu_peak(samples: list[Sample], window: float = PEAK_WINDOW) -> float:
    """The CPU share of the busiest stretch of at least `window` seconds between samples
    (the whole span when it is shorter), in percent of one core."""
    if len(samples) < 2:
        return 0.0
    peak = 0.0
    end = 0
    for start, first in enumerate(samples):
        end = max(end, start + 1)
        while end < len(samples) and samples[end].at - first.at < window:
            end += 1
        if end == len(samples):
            break
        peak = max(peak, cpu_share(first, samples[end]))
    return peak or cpu_share(samples[0], samples[-1])


# ---- the figures -------------------------------------------------------------------------------


@dataclass
class SyncFigures:
    clients: int
    synced: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    all_s: float | None  # until every client was synced; None: some never were
    lost_before_kill: int
    connections: int  # over every client's life, the first ones to a included
    # Where the time went, p50 and max over the clients: from the kill until node a's socket
    # was seen lost, then until `hello` went to b (the connection), until `welcome`, and
    # until `synced` (the replay).
    phases: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class DeliveryFigures:
    log_events: int
    expected: int  # events owed to the clients, summed over them
    received: int
    missed: int
    doubled: int
    out_of_order: int
    foreign: int  # events of chats not the client's own, or seqs the log lacks
    clients_short: int  # clients that missed at least one event
    drained_s: float | None  # from the writers' stop until every client had every event
    examples: list[str] = field(default_factory=list)


@dataclass
class WriteFigures:
    offered: int
    offered_per_s: float
    acked: int
    # From a write's due time to its answer, so a schedule that slipped cannot hide it.
    latency_s: dict[str, float]
    moved_to_b: int
    errors: dict[str, int]
    acked_not_in_log: int
    written_twice: int


@dataclass
class NodeFigures:
    pid: int
    rss_at_kill_mib: float
    rss_peak_mib: float  # sampled, from the kill until every client was synced
    hwm_mib: float  # VmHWM when every client was synced: the peak of its whole life
    cpu_peak_pct: float  # the busiest half second of the storm, % of one core
    cpu_seconds: float  # from the kill until every client was synced
    cpu_mean_pct_storm: float
    cpu_mean_pct_before: float  # from the load's start until the kill
    samples: int
    log_tracebacks: int


@dataclass
class Verdict:
    name: str
    ok: bool
    figure: str


@dataclass
class Figures:
    config: dict[str, Any]
    sync: SyncFigures
    delivery: DeliveryFigures
    writes: WriteFigures
    node_b: NodeFigures
    refused: dict[str, int]
    dropped: dict[str, int]
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted `values`."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "p50": statistics.median(ordered),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def sync_figures(fleet: Fleet) -> SyncFigures:
    assert fleet.killed_at is not None
    killed = fleet.killed_at
    times = sorted(max(0.0, c.synced_at - killed) for c in fleet.clients if c.synced_at is not None)
    every = len(times) == len(fleet.clients)
    return SyncFigures(
        clients=len(fleet.clients),
        synced=len(times),
        p50_s=statistics.median(times) if times else None,
        p99_s=percentile(times, 0.99) if times else None,
        max_s=times[-1] if times else None,
        all_s=times[-1] if every and times else None,
        lost_before_kill=fleet.lost_before_kill,
        connections=sum(c.connections for c in fleet.clients),
        phases=phases(fleet.clients, killed),
    )


def phases(clients: list[Client], killed: float) -> dict[str, dict[str, float]]:
    steps: dict[str, list[float]] = {"lost": [], "connect": [], "welcome": [], "replay": []}
    for c in clients:
        if None in (c.lost_at, c.hello_at, c.welcome_at, c.synced_at):
            continue  # not synced, or not through the storm (it left node a before)
        assert c.lost_at and c.hello_at and c.welcome_at and c.synced_at
        steps["lost"].append(c.lost_at - killed)
        steps["connect"].append(c.hello_at - c.lost_at)
        steps["welcome"].append(c.welcome_at - c.hello_at)
        steps["replay"].append(c.synced_at - c.welcome_at)
    return {
        step: {"p50_s": statistics.median(times), "max_s": max(times)}
        for step, times in steps.items()
        if times
    }


LogRow = tuple[str, int, str | None]  # chat, seq, text


async def read_log(dsn: str) -> list[LogRow]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT stream, seq, body FROM events ORDER BY pos")
    finally:
        await conn.close()
    return [(str(r[0]), int(r[1]), decode_event(bytes(r[2])).text) for r in rows]


def seqs_by_chat(log: list[LogRow]) -> dict[str, list[int]]:
    chats: dict[str, list[int]] = {}
    for chat, seq, _text in log:
        chats.setdefault(chat, []).append(seq)
    return {chat: sorted(seqs) for chat, seqs in chats.items()}


def has_everything(client: Client, wanted: dict[str, list[int]]) -> bool:
    owed = wanted.get(client.chat, [])
    return set(client.heard.get(client.chat, ())) >= set(owed)


def delivery_figures(
    clients: list[Client], log: list[LogRow], drained_s: float | None
) -> DeliveryFigures:
    """Every event of each client's chat (both sides see every kind written here) must have
    reached the client exactly once over all its connections, in order."""
    wanted = seqs_by_chat(log)
    figures = DeliveryFigures(
        log_events=len(log),
        expected=0,
        received=0,
        missed=0,
        doubled=0,
        out_of_order=0,
        foreign=0,
        clients_short=0,
        drained_s=drained_s,
    )
    for client in clients:
        owed = set(wanted.get(client.chat, ()))
        got = client.heard.get(client.chat, [])
        counts = Counter(got)
        missed = sorted(owed - counts.keys())
        doubled = sorted(seq for seq, n in counts.items() if n > 1)
        backwards = sum(1 for before, after in pairwise(got) if after < before)
        foreign = len(counts.keys() - owed) + sum(
            len(seqs) for chat, seqs in client.heard.items() if chat != client.chat
        )
        figures.expected += len(owed)
        figures.received += len(got)
        figures.missed += len(missed)
        figures.doubled += sum(counts[seq] - 1 for seq in doubled)
        figures.out_of_order += backwards
        figures.foreign += foreign
        figures.clients_short += bool(missed)
        if (missed or doubled or backwards or foreign) and len(figures.examples) < 8:
            figures.examples.append(
                f"client {client.index} ({client.role}, chat {client.chat}): missed"
                f" {missed[:10]}, doubled {doubled[:10]}, {backwards} backwards,"
                f" {foreign} foreign; received {got[:40]}"
            )
    return figures


def write_figures(writers: Writers, log: list[LogRow]) -> WriteFigures:
    in_log = {(chat, seq) for chat, seq, _text in log}
    numbers = Counter(
        text.rpartition("#")[2] for _c, _s, text in log if text and text.startswith(TEXT)
    )
    return WriteFigures(
        offered=writers.offered,
        offered_per_s=writers.offered / writers.seconds if writers.seconds else 0.0,
        acked=len(writers.acked),
        latency_s=spread(writers.latencies),
        moved_to_b=writers.moved,
        errors=dict(writers.errors.most_common()),
        acked_not_in_log=sum(1 for place in writers.acked.values() if place not in in_log),
        written_twice=sum(n - 1 for n in numbers.values() if n > 1),
    )


def node_figures(
    sampler: Sampler, load_start: float, killed: float, storm_end: float, hwm: int, log: Path
) -> NodeFigures:
    before = sampler.between(load_start, killed)
    storm = sampler.between(killed, storm_end)
    peak = cpu_peak(storm)
    tracebacks = log.read_text(errors="replace").count("Traceback") if log.exists() else 0
    return NodeFigures(
        pid=sampler.pid,
        rss_at_kill_mib=storm[0].rss / MIB,
        rss_peak_mib=max(s.rss for s in storm) / MIB,
        hwm_mib=hwm / MIB,
        cpu_peak_pct=peak,
        cpu_seconds=storm[-1].cpu - storm[0].cpu,
        cpu_mean_pct_storm=cpu_share(storm[0], storm[-1]),
        cpu_mean_pct_before=cpu_share(before[0], before[-1]) if len(before) > 1 else 0.0,
        samples=len(storm),
        log_tracebacks=tracebacks,
    )


def judge(figures: Figures, goal: float) -> list[Verdict]:
    sync, delivery, writes = figures.sync, figures.delivery, figures.writes
    if sync.all_s is not None:
        synced = f"{sync.all_s:.2f} s (goal {goal:g} s)"
    else:
        synced = f"{sync.synced}/{sync.clients} synced (goal {goal:g} s)"
    return [
        Verdict("events missed 0", delivery.missed == 0, str(delivery.missed)),
        Verdict("events doubled 0", delivery.doubled == 0, str(delivery.doubled)),
        Verdict("events out of order 0", delivery.out_of_order == 0, str(delivery.out_of_order)),
        Verdict("events of others 0", delivery.foreign == 0, str(delivery.foreign)),
        Verdict("acked writes lost 0", writes.acked_not_in_log == 0, str(writes.acked_not_in_log)),
        Verdict("messages written twice 0", writes.written_twice == 0, str(writes.written_twice)),
        Verdict(
            "every client synced within the goal",
            sync.all_s is not None and sync.all_s <= goal,
            synced,
        ),
    ]


# ---- the run -----------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def report(figures: Figures) -> None:
    sync, delivery, writes, node = figures.sync, figures.delivery, figures.writes, figures.node_b
    latency = ", ".join(f"{k} {v:.2f} s" for k, v in writes.latency_s.items())
    say(
        f"  synced on b: {sync.synced}/{sync.clients}, all in {_s(sync.all_s)}"
        f" (per client from the kill: p50 {_s(sync.p50_s)}, p99 {_s(sync.p99_s)},"
        f" max {_s(sync.max_s)}); {sync.connections} connections in all,"
        f" {sync.lost_before_kill} lost node a before the kill"
    )
    say(
        "  phases (p50/max): "
        + ", ".join(
            f"{step} {t['p50_s']:.2f}/{t['max_s']:.2f} s" for step, t in sync.phases.items()
        )
    )
    say(f"  reconnects refused: {_counts(figures.refused)}")
    say(f"  sockets b closed after synced: {_counts(figures.dropped)}")
    say(
        f"  delivery: {delivery.log_events} events in the log, {delivery.expected} owed to the"
        f" clients, {delivery.received} received; missed {delivery.missed}"
        f" ({delivery.clients_short} clients), doubled {delivery.doubled}, out of order"
        f" {delivery.out_of_order}, of others {delivery.foreign};"
        f" everything delivered {_s(delivery.drained_s)} after the load stopped"
    )
    for example in delivery.examples:
        say(f"    ! {example}")
    say(
        f"  writes: {writes.offered} offered ({writes.offered_per_s:.0f}/s), {writes.acked}"
        f" acked ({latency}), {writes.moved_to_b} moved from a to b,"
        f" refused: {_counts(writes.errors)};"
        f" acked but not in the log {writes.acked_not_in_log}, written twice"
        f" {writes.written_twice}"
    )
    say(
        f"  node b (pid {node.pid}): RSS {node.rss_at_kill_mib:.1f} MiB at the kill, peak"
        f" {node.rss_peak_mib:.1f} MiB in the storm, VmHWM {node.hwm_mib:.1f} MiB;"
        f" CPU peak {node.cpu_peak_pct:.0f}% of a core, {node.cpu_seconds:.2f} CPU-s in the"
        f" storm (mean {node.cpu_mean_pct_storm:.0f}%; {node.cpu_mean_pct_before:.0f}% before"
        f" the kill); {node.log_tracebacks} tracebacks in its log"
    )
    for verdict in figures.verdicts:
        say(f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.name}: {verdict.figure}")


async def _until_drained(clients: list[Client], dsn: str, since: float) -> float | None:
    """Seconds from `since` until every client has every event the log holds for its chat;
    None when DRAIN_LIMIT passed first."""
    wanted = seqs_by_chat(await read_log(dsn))
    while time.monotonic() - since < DRAIN_LIMIT:
        if all(has_everything(client, wanted) for client in clients):
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def _in_background(stack: contextlib.AsyncExitStack, work: Awaitable[None]) -> None:
    """Runs `work` until the stack unwinds, then waits for it (it stops on its own event)."""
    task = asyncio.ensure_future(work)

    async def finish() -> None:
        await task

    stack.push_async_callback(finish)


async def storm(options: argparse.Namespace, work: Path) -> Figures:
    started_at = time.monotonic()
    await require_redis(options.redis)
    raise_open_files(4 * options.clients + 1024)
    secret = secrets.token_hex(32)
    chats = options.chats or options.clients // 2
    say(
        f"reconnect storm: {options.clients} clients in {chats} chats on node a,"
        f" {options.rate:g} msg/s through a and b, a killed after {options.warmup:g} s"
    )
    async with postgres_database(options.pg) as dsn:
        common = ("--store", dsn, "--hub", options.redis, "--files", str(work / "files"))
        async with started(["a", "b"], work, secret, common) as started_nodes:
            nodes = {node.name: node for node in started_nodes}
            clients, made = make_clients(secret, options.clients, chats)
            fleet = Fleet(clients, nodes)
            try:
                return await _storm_on(options, nodes, fleet, made, dsn, started_at)
            finally:
                await fleet.close()


async def _connect_and_open(fleet: Fleet, made: list[Chat]) -> list[Chat]:
    mark = time.monotonic()
    await fleet.connect_all_to_a()
    connected = time.monotonic() - mark
    mark = time.monotonic()
    opened = await open_chats(fleet, made)
    say(
        f"  {len(fleet.clients)} sockets on a in {connected:.1f} s,"
        f" {len(opened)} chats opened in {time.monotonic() - mark:.1f} s"
    )
    return opened


async def _kill(server: Server, fleet: Fleet, sampler: Sampler) -> float:
    """kill -9 of `server`; the moment, which the storm's times count from."""
    assert server.process is not None
    fleet.mark_kill()
    assert fleet.killed_at is not None
    sampler.take()  # the storm's first sample: the memory and CPU at the kill
    server.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(server.process.wait)
    return fleet.killed_at


async def _storm_on(
    options: argparse.Namespace,
    nodes: dict[str, Node],
    fleet: Fleet,
    made: list[Chat],
    dsn: str,
    started_at: float,
) -> Figures:
    opened = await _connect_and_open(fleet, made)
    b = nodes["b"].server
    sampler = Sampler(b.pid)
    writers = Writers(nodes, opened, options.rate)
    stop_writing, stop_sampling = asyncio.Event(), asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        # Unwound in reverse: the writers are told to stop and awaited, then the sampler.
        await _in_background(stack, sampler.run(stop_sampling))
        stack.callback(stop_sampling.set)
        await _in_background(stack, writers.run(stop_writing))
        stack.callback(stop_writing.set)
        load_start = time.monotonic()
        await asyncio.sleep(options.warmup)
        killed = await _kill(nodes["a"].server, fleet, sampler)
        say(f"  node a killed after {killed - load_start:.1f} s of load")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.all_synced.wait(), options.storm_limit)
        storm_end = sampler.take().at
        hwm = hwm_bytes(b.pid)
        say(
            f"  storm over {storm_end - killed:.2f} s after the kill;"
            f" the load goes on for {options.after:g} s"
        )
        await asyncio.sleep(options.after)
        stopped = time.monotonic()
    # Every write has been answered now: what the log holds is all there is to deliver.
    drained = await _until_drained(fleet.clients, dsn, stopped)
    await asyncio.sleep(LATE_DUPLICATES)
    log = await read_log(dsn)
    figures = Figures(
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        sync=sync_figures(fleet),
        delivery=delivery_figures(fleet.clients, log, drained),
        writes=write_figures(writers, log),
        node_b=node_figures(sampler, load_start, killed, storm_end, hwm, b.log_path),
        refused=dict(fleet.refused.most_common()),
        dropped=dict(fleet.dropped.most_common()),
    )
    figures.verdicts = judge(figures, options.goal)
    figures.seconds = time.monotonic() - started_at
    return figures


async def run(options: argparse.Namespace) -> Figures:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="chatd-storm-", dir=options.workdir))
    try:
        return await storm(options, work)
    finally:
        if options.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


# ---- the command -------------------------------------------------------------------------------


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"not above 0: {text}")
        return value

    return parse


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.reconnect_storm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=_positive(int), default=1000, help="sockets in all")
    parser.add_argument(
        "--chats", type=_positive(int), default=None, help="chats (default: clients / 2)"
    )
    parser.add_argument("--rate", type=_positive(float), default=100.0, help="messages a second")
    parser.add_argument(
        "--warmup", type=_positive(float), default=5.0, help="seconds of load before the kill"
    )
    parser.add_argument(
        "--after", type=float, default=3.0, help="seconds of load once every client is synced"
    )
    parser.add_argument(
        "--goal", type=_positive(float), default=10.0, help="seconds to every client's synced"
    )
    parser.add_argument(
        "--storm-limit",
        type=_positive(float),
        default=60.0,
        help="the longest wait for every client's synced",
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL to make a database in")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the nodes' logs here")
    options = parser.parse_args(argv)
    chats = options.chats or options.clients // 2
    if chats == 0 or options.clients % chats or (options.clients // chats) % 2:
        parser.error(
            "--clients must be an even multiple of --chats: as many sockets a buyer as an operator"
        )
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        figures = asyncio.run(run(options))
    except KeyboardInterrupt:
        say("interrupted")
        return 2
    except Exception as exc:
        # Whatever it was (a service missing, a node that did not start, a socket refused
        # before the kill), no verdict was reached: the run failed, not chatd's promises.
        traceback.print_exc(file=sys.stderr)
        say(f"failed: {type(exc).__name__}: {exc}")
        return 2
    report(figures)
    say(f"{figures.seconds:.1f} s, {'ok' if figures.ok else 'FAIL'}")
    if options.json is not None:
        options.json.write_text(
            json.dumps({"ok": figures.ok, **asdict(figures)}, ensure_ascii=False, indent=2)
        )
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
