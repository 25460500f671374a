"""Half an hour of everything a marketplace's chat does, below capacity: does anything grow?

    python -m chatd.proof.long_run [--minutes 30] [--minute-seconds 60] [--chats 1000]
        [--rate MSG_PER_S | --load-share 0.7] [--sync full|normal] [--workdir DIR] [--json FILE]

`chatd.proof.soak` offers messages only; a real day also marks chats read, pages through
history, searches, decides returns and loses connections. Each of these takes another path
through the server (a read mark is a write of its own, a search walks the full-text index, a
return runs the claim's rules and the ledger, a resumed socket replays the log from its
cursor), and any of them may keep something per call, slow down as the log grows, or leave a
file open. So this program starts `chatd serve` on a new SQLite database as the soak does
(pinned to CPU 0, rate limits lifted; the load generator runs on CPU 1), opens `--chats`
chats of one buyer and one shop operator, each on a socket of their own, and drives them on
one schedule that never pauses (a pause would let a server that fell behind catch up, and
its checkpoint reach the WAL's end, just when it must not):

- messages, most of the traffic, alternating chats and sides, as the soak sends them;
- read marks (`read`), one for every four messages, by a chat's side that receives them,
  up to the last event it received; the answer is the `read` frame the server sends back;
- `history` (the latest 50 events) and `search` in a chat by its operator, three a second
  each; a search asks for a word of every message and the number of the last one the
  operator received, which must be among the results;
- returns, six a period: the marketplace registers an order (`POST /api/v1/orders`, the
  system role), the buyer attaches it (`open` with the order) and asks for its return
  (`return.request`), and the operator approves it (no return needed, the full price) or,
  every other time, refuses it (`return.reject`);
- reconnects: 5% of the sockets a period close (1000) once their requests are answered, stay
  away for half a second, and come back with `hello{since}` from the last cursor they saw.
  Messages meanwhile wait in the client (as the browser app keeps them), and the ones sent
  to it must arrive in the replay. A socket the server closes comes back the same way, and
  a resume that fails (refused, closed in its replay, no `synced` within 30 s) is counted
  and tried again, five times at most.

Without `--rate`, a closed loop of 10 s first measures how many messages a second this server
delivers at most (`chatd.loadtest.fleet`, as the soak does), and messages and read marks
(both writes) are offered together at `--load-share` of it; with `--rate`, messages are
offered at that rate and read marks at a quarter of it. History, searches, returns and
reconnects come on top: they are few, and reads and rare writes of another kind.

Each period prints the soak's line (messages due in it, delivered, p50 and p99 from a
message's due time to its arrival, the WAL's and the database's sizes, the server's RSS and
CPU, its disk writes per message, and its worst loop lag, collector pass and commit), then
the server's open files (`/proc/PID/fd`), the p99 of each other kind of request
(the `read` frame, the `history` and `results` answers, the return steps' answers, a
reconnect's `hello` to `synced`), and how many of those requests were answered. A message
delivered in a replay counts as delivered, but its latency (the half second away in it) is
not in the p99; a message that waited for its sender to come back counts from the moment it
went out. At the end, verdicts:

- the soak's: the WAL never above 64 MiB; RSS and the messages' p99 flat (every period from
  the second within 10% of the second's); every message delivered;
- nothing missed or repeated: every socket saw its chat's events with no gap and no repeat in
  `seq`, across every reconnect, and no message arrived twice;
- open files flat: no period from the second more than 8 above the second's count. A count
  is a small integer that moves by the few sockets between their close and their return at
  the moment it is read, so a share of it would be too loose (10% of 2000 sockets) and any
  strict bound too tight; a leak of one file a reconnect or a request is hundreds a period;
- each kind's p99 flat: with at least 1000 answers in every period judged, the soak's rule;
  with fewer, a p99 is the slowest few answers, the ones that met the server's worst moments
  (a checkpoint, a collection), and jumps by far more than 10% between periods on any
  machine. The rule is then "never above twice the larger of its own and the messages' p99
  in the second period, plus 5 ms": noise stays under it, a cost that grows with the log
  (a search walking an index twice the size) does not;
- every request answered: each kind happened, every request had its answer, none was an
  error (the scenario expects none), no socket was closed by the server, and no answer came
  for a request not made.

The exit status is 1 when a verdict fails, 2 when the run itself failed. Like the soak's,
the figures depend on what else the machine does: run it on a quiet one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import os
import secrets
import sys
import tempfile
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
from websockets.typing import BytesLike

from chatd.client.tokens import mint
from chatd.launcher import Server
from chatd.loadtest.fleet import QUIET, TEXT, Fleet
from chatd.loadtest.histogram import Latencies
from chatd.loadtest.servers import ServerSpec
from chatd.loadtest.system import pin, raise_open_files, self_cpu_seconds
from chatd.loadtest.wire import Lean, Socket, open_session
from chatd.proof.server_pauses import PauseWatch, stopped
from chatd.proof.soak import (
    CAPACITY_SECONDS,
    CAPACITY_WARMUP,
    CAPACITY_WINDOW,
    HEADER,
    Period,
    SoakConfig,
    SoakReport,
    Verdict,
    WalWatch,
    file_size,
    flat,
    judge,
    load_config,
    load_parser,
    period_line,
    run_program,
)
from protocol import frames as f
from protocol.events import Money

# ---- the mix ----------------------------------------------------------------------------------

READS_PER_MESSAGE = 0.25
HISTORY_PER_S = 3.0
SEARCH_PER_S = 3.0
HISTORY_LIMIT = 50
RETURNS_PER_PERIOD = 6
RECONNECT_SHARE = 0.05  # of all sockets, every period
AWAY_S = 0.5  # under the 2 s in which a side that left still counts as online: no presence
IDLE_WAIT_S = 5.0  # how long a socket about to close waits for its requests' answers
ANSWER_TIMEOUT_S = 60.0  # a return step not answered by then stops its story
RESUME_TIMEOUT_S = 30.0
RESUME_TRIES = 5
GAP_EXAMPLES = 10
PRICE = Money(value=118600, currency="RUB")
REJECT_REASON = "Товар был в употреблении"

# ---- the verdicts ------------------------------------------------------------------------------

FD_SLACK = 8
DENSE = 1000  # answers a period from which a p99 is judged by the soak's 10%
SPARSE_FACTOR = 2.0
SPARSE_MS = 5.0

MESSAGE, READ, HISTORY, SEARCH, RETURN, RECONNECT = (
    "message", "read", "history", "search", "return", "reconnect"
)  # fmt: skip
KINDS = (MESSAGE, READ, HISTORY, SEARCH, RETURN, RECONNECT)
REQUESTS = KINDS[1:]  # the kinds answered by the server; a message's answer is its delivery
SETUP = "setup"  # the chats' opening, before the run: not counted


@dataclass(frozen=True, slots=True)
class LongRunConfig:
    minutes: int = 30
    minute_seconds: float = 60.0
    chats: int = 1000
    rate: float | None = None  # messages a second; None: from `load_share` of the capacity
    load_share: float = 0.7
    sync: str = "full"
    workdir: Path | None = None

    @property
    def seconds(self) -> float:
        return self.minutes * self.minute_seconds


@dataclass(frozen=True, slots=True)
class Rates:
    """What the schedule offers: per second, but returns and reconnects per period."""

    messages: float
    reads: float
    history: float = HISTORY_PER_S
    searches: float = SEARCH_PER_S
    returns_per_period: int = RETURNS_PER_PERIOD
    reconnects_per_period: int = 0


@dataclass(frozen=True, slots=True)
class KindFigures:
    """One kind of request in one period (or the whole run): requests due in it (for
    reconnects, the attempts to resume), answers, error answers, and the latency of the
    answers (for messages: of the deliveries outside a replay; their answers are the acks)."""

    sent: int
    answered: int
    failed: int
    samples: int
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]


@dataclass(frozen=True, slots=True)
class Minute:
    """One period: the soak's figures of its messages, and the rest of the mix."""

    messages: Period
    open_files: int
    kinds: dict[str, KindFigures]
    replayed: int  # messages that reached a resumed socket in its replay
    repeats: int  # events a socket saw twice in `seq`, and messages delivered twice
    gaps: int  # events a socket never saw: a `seq` skipped

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self.messages),
            "open_files": self.open_files,
            "replayed": self.replayed,
            "repeats": self.repeats,
            "gaps": self.gaps,
            "kinds": {kind: asdict(figures) for kind, figures in self.kinds.items()},
        }


@dataclass
class LongRunReport:
    config: LongRunConfig
    server: str
    db: str
    server_cpus: list[int] | None
    client_cpus: list[int] | None
    capacity_per_s: float | None = None
    rates: Rates | None = None
    minutes: list[Minute] = field(default_factory=list)
    totals: dict[str, KindFigures] = field(default_factory=dict)
    delivered: int = 0
    replayed: int = 0
    repeats: int = 0
    gaps: int = 0
    closed_by_server: dict[str, int] = field(default_factory=dict)
    stray: dict[str, int] = field(default_factory=dict)  # answers to nothing asked
    gap_examples: list[str] = field(default_factory=list)
    wal_max_bytes: int = 0
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.totals[MESSAGE].sent if MESSAGE in self.totals else 0

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def as_json(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["workdir"] = None if self.config.workdir is None else str(self.config.workdir)
        return {
            "program": "chatd.proof.long_run",
            "config": config,
            "server": self.server,
            "db": self.db,
            "server_cpus": self.server_cpus,
            "client_cpus": self.client_cpus,
            "capacity_per_s": self.capacity_per_s,
            "rates": None if self.rates is None else asdict(self.rates),
            "periods": [m.as_json() for m in self.minutes],
            "final": {
                "sent": self.sent,
                "delivered": self.delivered,
                "undelivered": self.sent - self.delivered,
                "replayed": self.replayed,
                "repeats": self.repeats,
                "gaps": self.gaps,
                "closed_by_server": self.closed_by_server,
                "stray": self.stray,
                "gap_examples": self.gap_examples,
                "kinds": {kind: asdict(figures) for kind, figures in self.totals.items()},
            },
            "wal_max_bytes": self.wal_max_bytes,
            "verdicts": [asdict(v) for v in self.verdicts],
            "ok": self.ok,
        }


# ---- counting ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """One kind of request in one period, while the run goes on."""

    sent: int = 0
    answered: int = 0
    failed: int = 0
    latencies: Latencies = field(default_factory=Latencies)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def outstanding(self) -> int:
        return self.sent - self.answered - self.failed

    def fail(self, code: str) -> None:
        self.failed += 1
        self.errors[code] += 1

    def figures(self) -> KindFigures:
        latency = self.latencies.summary()
        return KindFigures(
            sent=self.sent,
            answered=self.answered,
            failed=self.failed,
            samples=self.latencies.count,
            p50_ms=float(latency["p50"]),
            p99_ms=float(latency["p99"]),
            errors=dict(self.errors),
        )


@dataclass
class PeriodTally:
    """What happened to the traffic due in one period. For messages, `kinds[MESSAGE]` counts
    the acks as answers, and `delivered` the arrivals at the other side."""

    kinds: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in KINDS})
    delivered: int = 0
    replayed: int = 0
    repeats: int = 0
    gaps: int = 0

    @property
    def outstanding(self) -> int:
        unanswered = sum(t.outstanding for t in self.kinds.values())
        return unanswered + self.kinds[MESSAGE].sent - self.delivered


def merged(tallies: Sequence[PeriodTally], kind: str) -> KindFigures:
    whole = Tally()
    for tally in tallies:
        part = tally.kinds[kind]
        whole.sent += part.sent
        whole.answered += part.answered
        whole.failed += part.failed
        whole.latencies.merge(part.latencies)
        whole.errors.update(part.errors)
    return whole.figures()


@dataclass(frozen=True, slots=True)
class Marks:
    """The clocks when a period began, to take its CPU shares as differences."""

    at: float
    server_cpu: float
    client_cpu: float
    server_disk_written: int


def open_files(pid: int) -> int:
    """The process's open file descriptors: its sockets, the database, WAL and shared memory
    files, the log, pipes."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- the clients ------------------------------------------------------------------------------


class Seen(Lean, kw_only=True):
    """Lean, and what this program also reads: a read mark's side, and how many events an
    answer carries (left undecoded)."""

    side: str | None = None
    events: list[msgspec.Raw] | None = None


class State(Enum):
    OPEN = "open"
    DRAINING = "draining"  # about to close: waits for its requests' answers, sends nothing new
    AWAY = "away"
    REPLAYING = "replaying"  # back with its cursor, until `synced`


@dataclass(eq=False)
class Peer:
    """One side of one chat: a buyer, or the shop's operator, on one socket at a time."""

    role: str
    sub: str
    shop: str
    chat: str = ""
    socket: Socket | None = None
    retiring: Socket | None = None  # the socket this program is closing
    state: State = State.OPEN
    cursor: str | None = None
    last_seq: int = 0  # of the last event seen; 0 before the first
    last_heard: int | None = None  # the number of the last message from the other side
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set by the last answer due
    queued: list[int] = field(default_factory=list)  # messages waiting for the socket
    reads: deque[tuple[int, str]] = field(default_factory=deque)  # (seq, request id)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set while OPEN
    resumed: asyncio.Future[None] | None = None

    def busier(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def calmer(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()


@dataclass(slots=True)
class Pending:
    kind: str
    period: int  # -1: setting up, not counted
    started: float
    peer: Peer
    waiter: asyncio.Future[Seen] | None = None


Act = Callable[[int, float], None]  # the i-th time of a stream, due then
FrameT = TypeVar("FrameT", bound=f.ClientFrame)


def with_id(frame: FrameT, rid: str) -> FrameT:
    return msgspec.structs.replace(frame, id=rid)


def holds(results: Seen, number: int) -> bool:
    """Whether a search's `results` hold message `number`."""
    texts = (msgspec.json.decode(raw).get("text") or "" for raw in results.events or [])
    return any(text.endswith(f"#{number}") for text in texts)


class Traffic:
    """The mixed load: its sockets, its one schedule, and what every frame says."""

    def __init__(self, server: Server, prefix: str, rates: Rates, config: LongRunConfig) -> None:
        self.server = server
        self.prefix = prefix
        self.rates = rates
        self.config = config
        self.decode: Callable[[BytesLike], Seen] = msgspec.json.Decoder(Seen).decode
        self.peers: list[Peer] = []  # buyer, seller, buyer, seller, ...
        self.due: array[float] = array("d")  # per message number: when it was due
        self.arrived = bytearray()  # per message number: 1 once delivered
        self.sent_late: dict[int, float] = {}  # queued messages: when they went out
        self.pending: dict[str, Pending] = {}
        self.searched: dict[str, int] = {}  # a search's request id: the number asked for
        self.ids = itertools.count()
        self.orders = itertools.count()
        self.tallies = [PeriodTally() for _ in range(config.minutes)]
        self.marks: list[Marks] = []
        self.ended = [asyncio.Event() for _ in range(config.minutes)]
        self.start = 0.0
        self.closed_by_server: Counter[str] = Counter()
        self.stray: Counter[str] = Counter()
        self.gap_examples: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        # A connection is kept idle for less than the server keeps it (uvicorn: 5 s), or a
        # request sent just as the server closes it fails (ReadError) and is counted.
        limits = httpx.Limits(keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=server.http, timeout=30.0, limits=limits)
        self.system = self.token("system", "marketplace", "Маркетплейс")

    # ---- setup -------------------------------------------------------------------------------

    def token(self, role: Any, sub: str, name: str, shop: str | None = None) -> str:
        # Valid past the run's end: an expired token closes the socket with 4001.
        ttl = self.config.seconds + 3600.0
        return mint(
            self.server.secret, role=role, sub=sub, name=name, seller=shop, shop_name=shop, ttl=ttl
        )

    def peer_token(self, peer: Peer) -> str:
        if peer.role == "buyer":
            return self.token("buyer", peer.sub, "Покупатель")
        return self.token("seller", peer.sub, "Оператор", peer.shop)

    async def connect(self, peer: Peer, since: str | None = None) -> None:
        handler = functools.partial(self.on_frame, peer)
        socket, welcome = await open_session(
            self.server.url, self.peer_token(peer), handler, since=since
        )
        socket.closed.add_done_callback(functools.partial(self.on_closed, peer, socket))
        peer.socket = socket
        if since is None:
            peer.cursor = welcome.cursor

    async def open_chats(self, count: int, parallel: int = 100) -> None:
        slots = asyncio.Semaphore(parallel)

        async def one(index: int) -> tuple[Peer, Peer]:
            shop = f"{self.prefix}-s{index}"
            buyer = Peer("buyer", f"{self.prefix}-b{index}", shop)
            seller = Peer("seller", f"{self.prefix}-o{index}", shop)
            async with slots:
                for peer in (buyer, seller):
                    await self.connect(peer)
                    peer.ready.set()
                opened = await self.ask(buyer, SETUP, f.Open(seller=shop), counted=False)
            if opened.type != "ack" or not opened.chat:
                raise ConnectionError(f"open refused: {opened.code}: {opened.message}")
            buyer.chat = seller.chat = opened.chat
            return buyer, seller

        for pair in await asyncio.gather(*(one(i) for i in range(count))):
            self.peers.extend(pair)

    async def close(self) -> None:
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        sockets = [p.socket for p in self.peers if p.socket is not None]
        await asyncio.gather(*(s.aclose() for s in sockets))
        await self.http.aclose()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- periods -----------------------------------------------------------------------------

    def period_of(self, moment: float) -> int:
        index = int((moment - self.start) // self.config.minute_seconds)
        return min(max(index, 0), self.config.minutes - 1)

    def tally_at(self, moment: float) -> PeriodTally:
        return self.tallies[self.period_of(moment)]

    def begin(self, period: int) -> None:
        """Period `period` begins (== minutes: the run ends); the clocks are read."""
        while len(self.marks) <= period:
            self.marks.append(
                Marks(
                    time.monotonic(),
                    self.server.cpu(),
                    self_cpu_seconds(),
                    self.server.disk_written(),
                )
            )
            if len(self.marks) >= 2:
                self.ended[len(self.marks) - 2].set()

    # ---- requests ----------------------------------------------------------------------------

    def request(
        self,
        peer: Peer,
        kind: str,
        frame: f.ClientFrame,
        started: float,
        period: int,
        waiter: asyncio.Future[Seen] | None = None,
    ) -> str:
        """Sends `frame` with an id of its own and waits for its answer in `pending`."""
        rid = f"{kind[:2]}{next(self.ids)}"
        assert peer.socket is not None
        self.pending[rid] = Pending(kind, period, started, peer, waiter)
        peer.busier()
        if period >= 0:
            self.tallies[period].kinds[kind].sent += 1
        if not peer.socket.send_frame(with_id(frame, rid)):
            self.answered(rid, None, started, failure="socket closed before sending")
        return rid

    async def ask(
        self, peer: Peer, kind: str, frame: f.ClientFrame, *, counted: bool = True
    ) -> Seen:
        """Sends `frame` once `peer` is connected and returns its answer (an `error` too)."""
        await peer.ready.wait()
        waiter: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        period = self.period_of(now) if counted else -1
        rid = self.request(peer, kind, frame, now, period, waiter)
        try:
            return await asyncio.wait_for(waiter, ANSWER_TIMEOUT_S)
        except TimeoutError:
            self.pending.pop(rid, None)  # stays counted as unanswered
            peer.calmer()
            raise

    def answered(
        self, rid: str | None, frame: Seen | None, now: float, failure: str | None = None
    ) -> None:
        pending = self.pending.pop(rid, None) if rid is not None else None
        if pending is None:
            code = failure or (frame.code if frame is not None and frame.code else "answer")
            self.stray[code] += 1
            return
        pending.peer.calmer()
        if failure is None and frame is not None and frame.type == "error":
            failure = frame.code or "error"
        if pending.period >= 0:
            tally = self.tallies[pending.period].kinds[pending.kind]
            if failure is not None:
                tally.fail(failure)
            else:
                tally.answered += 1
                if pending.kind != MESSAGE:
                    tally.latencies.record(now - pending.started)
        if pending.waiter is not None and not pending.waiter.done():
            if frame is None:
                pending.waiter.set_exception(ConnectionError(failure))
            else:
                pending.waiter.set_result(frame)

    # ---- frames ------------------------------------------------------------------------------

    def on_frame(self, peer: Peer, socket: Socket, data: BytesLike) -> None:
        now = time.monotonic()
        frame = self.decode(data)
        kind = frame.type
        if kind == "event":
            self.on_event(peer, frame, now)
        elif kind == "read":
            self.on_read_mark(peer, frame, now)
        elif kind == "synced":
            peer.cursor = frame.cursor
            if peer.resumed is not None and not peer.resumed.done():
                peer.resumed.set_result(None)
        elif kind in ("ack", "history", "results", "error"):
            self.on_answer(peer, frame, now)
        # pong, typing and presence: nothing to count

    def on_event(self, peer: Peer, frame: Seen, now: float) -> None:
        seq = frame.seq or 0
        if peer.last_seq and seq != peer.last_seq + 1:
            if seq <= peer.last_seq:
                self.tally_at(now).repeats += 1
                return
            self.tally_at(now).gaps += seq - peer.last_seq - 1
            self.note_gap(peer, seq)
        peer.last_seq = seq
        peer.cursor = frame.cursor
        author = frame.author
        if frame.kind != "message" or author is None or author.role == peer.role:
            return
        number = int((frame.text or "").rpartition("#")[2])
        peer.last_heard = number
        if self.arrived[number]:
            self.tally_at(now).repeats += 1
            return
        self.arrived[number] = 1
        tally = self.tally_at(self.due[number])
        tally.delivered += 1
        origin = self.sent_late.pop(number, self.due[number])
        if peer.state is State.REPLAYING:
            tally.replayed += 1  # its latency is mostly the time its reader was away
        else:
            tally.kinds[MESSAGE].latencies.record(now - origin)

    def note_gap(self, peer: Peer, seq: int) -> None:
        """Where a socket missed events, for the report (the first few)."""
        if len(self.gap_examples) < GAP_EXAMPLES:
            missing = f"{peer.last_seq + 1}" + (
                f"-{seq - 1}" if seq - 1 > peer.last_seq + 1 else ""
            )
            self.gap_examples.append(
                f"{peer.role} of {peer.chat}: seq {missing} missing, {seq} came"
                f" {'in a replay' if peer.state is State.REPLAYING else 'live'}"
            )

    def on_read_mark(self, peer: Peer, frame: Seen, now: float) -> None:
        """The server's `read` frame: the answer to this side's read marks up to its seq."""
        if frame.side != peer.role or frame.chat != peer.chat:
            return  # the other side's mark
        mark = frame.seq or 0
        while peer.reads and peer.reads[0][0] <= mark:
            _, rid = peer.reads.popleft()
            if rid in self.pending:  # not refused meanwhile
                self.answered(rid, frame, now)

    def on_answer(self, peer: Peer, frame: Seen, now: float) -> None:
        failure: str | None = None
        wanted = self.searched.pop(frame.id, None) if frame.id is not None else None
        if wanted is not None and frame.type == "results" and not holds(frame, wanted):
            failure = "the message searched for was not found"
        self.answered(frame.id, frame, now, failure)

    def on_closed(self, peer: Peer, socket: Socket, done: asyncio.Future[int | None]) -> None:
        """A socket ended. One this program closed is a reconnect's; any other the server
        closed: counted, and the peer comes back as a client would."""
        if self.closing or socket is peer.retiring:
            return
        code = f"closed {done.result()}"
        self.closed_by_server[code] += 1
        if socket is not peer.socket:
            return
        if peer.state is State.OPEN:
            self.spawn(self.reconnect(peer, polite=False))
        elif peer.state is State.REPLAYING and peer.resumed and not peer.resumed.done():
            peer.resumed.set_exception(ConnectionError(f"{code} in the replay"))

    # ---- the kinds ---------------------------------------------------------------------------

    def send_message(self, peer: Peer, due: float) -> None:
        number = len(self.due)
        self.due.append(due)
        self.arrived.append(0)
        tally = self.tally_at(due).kinds[MESSAGE]
        tally.sent += 1
        if peer.state is State.OPEN:
            self.write_message(peer, number, due)
        else:
            peer.queued.append(number)

    def write_message(self, peer: Peer, number: int, started: float) -> None:
        rid = f"m{number}"
        assert peer.socket is not None
        self.pending[rid] = Pending(MESSAGE, self.period_of(self.due[number]), started, peer)
        peer.busier()
        frame = f.Send(id=rid, chat=peer.chat, text=f"{TEXT} #{number}", nonce=f"n{number}")
        if not peer.socket.send_frame(frame):
            self.answered(rid, None, started, failure="socket closed before sending")

    def mark_read(self, peer: Peer, due: float) -> None:
        if peer.state is not State.OPEN or not peer.last_seq:
            return  # nothing to mark yet, or away: a client reads what it has on screen
        frame = f.Read(chat=peer.chat, seq=peer.last_seq)
        rid = self.request(peer, READ, frame, due, self.period_of(due))
        peer.reads.append((peer.last_seq, rid))

    def read_history(self, peer: Peer, due: float) -> None:
        if peer.state is State.OPEN:
            frame = f.History(chat=peer.chat, limit=HISTORY_LIMIT)
            self.request(peer, HISTORY, frame, due, self.period_of(due))

    def search(self, peer: Peer, due: float) -> None:
        """The operator looks up the last message the buyer wrote by its number, as one looks
        up an order's number: the answer must hold it."""
        # A one-digit number is no word of its own beside another (chatd.views.search_words).
        wanted = peer.last_heard
        if peer.state is State.OPEN and wanted is not None and wanted >= 10:
            frame = f.Search(q=f"отправка {wanted}", chat=peer.chat)
            rid = self.request(peer, SEARCH, frame, due, self.period_of(due))
            self.searched[rid] = wanted

    async def return_story(self, buyer: Peer, seller: Peer, number: int) -> None:
        """An order, its return asked for in the chat, and the shop's decision; a step that
        fails ends the story (counted where it failed)."""
        with contextlib.suppress(TimeoutError, ConnectionError):  # counted unanswered
            await self.return_steps(buyer, seller, number)

    async def return_steps(self, buyer: Peer, seller: Peer, number: int) -> None:
        order = f"{self.prefix}-order-{number}"
        if not await self.register_order(order, buyer):
            return
        opened = await self.ask(buyer, RETURN, f.Open(seller=buyer.shop, order=order))
        if opened.type != "ack":
            return
        frame = f.ReturnRequest(chat=buyer.chat, order=order, comment="Не подошёл размер")
        requested = await self.ask(buyer, RETURN, frame)
        if requested.type != "ack" or not requested.claim:
            return
        decision: f.ClientFrame = (
            f.ReturnApprove(claim=requested.claim, mode="no_return", amount=PRICE)
            if number % 2 == 0
            else f.ReturnReject(claim=requested.claim, reason=REJECT_REASON)
        )
        await self.ask(seller, RETURN, decision)

    async def register_order(self, order: str, buyer: Peer) -> bool:
        """The marketplace's back end registers the order the buyer will return."""
        started = time.monotonic()
        tally = self.tally_at(started).kinds[RETURN]
        tally.sent += 1
        body = {
            "id": order,
            "buyer": {"id": buyer.sub, "name": "Покупатель"},
            "seller": {"id": buyer.shop, "name": buyer.shop},
            "article": "140158860",
            "name": "Юбка короткая плиссе со складками",
            "brand": "SK - Line",
            "size": "S",
            "price": msgspec.to_builtins(PRICE),
            "purchased_at": "2023-08-10T09:00:00Z",
            "received_at": "2023-08-17T09:00:00Z",
            "non_returnable": False,
        }
        headers = {"Authorization": f"Bearer {self.system}"}
        try:
            response = await self.http.post("/api/v1/orders", json=body, headers=headers)
        except httpx.HTTPError as exc:
            tally.fail(f"POST /api/v1/orders: {type(exc).__name__}")
            return False
        if response.status_code != 201:
            tally.fail(f"POST /api/v1/orders: HTTP {response.status_code}")
            return False
        tally.answered += 1
        tally.latencies.record(time.monotonic() - started)
        return True

    async def reconnect(self, peer: Peer, *, polite: bool = True) -> None:
        """Closes the peer's socket (once its requests are answered, when `polite`), stays
        away for AWAY_S, and comes back from its cursor; the replay until `synced` must hold
        every event it missed, which `on_event` checks by `seq`. A failed attempt counts as
        a failed reconnect and is tried again, as a client would, RESUME_TRIES times."""
        peer.state = State.DRAINING
        peer.ready.clear()
        if polite:
            await self.until_idle(peer)
        peer.state = State.AWAY
        await self.retire(peer)
        await asyncio.sleep(AWAY_S)
        for _ in range(RESUME_TRIES):
            if await self.resume(peer):
                peer.state = State.OPEN
                peer.ready.set()
                self.flush(peer)
                return
            await asyncio.sleep(AWAY_S)
        # This side stays away: its messages stay queued and count undelivered.

    async def retire(self, peer: Peer) -> None:
        peer.retiring = peer.socket
        if peer.socket is not None:
            await peer.socket.aclose()

    async def resume(self, peer: Peer) -> bool:
        """One `hello{since}` and its replay, until `synced`."""
        started = time.monotonic()
        tally = self.tally_at(started).kinds[RECONNECT]
        tally.sent += 1
        peer.state = State.REPLAYING
        peer.resumed = asyncio.get_running_loop().create_future()
        try:
            await self.connect(peer, since=peer.cursor)
            await asyncio.wait_for(peer.resumed, RESUME_TIMEOUT_S)
        except (OSError, ConnectionError, TimeoutError) as exc:
            tally.fail(f"resume: {type(exc).__name__}: {exc}"[:80])
            peer.state = State.AWAY
            await self.retire(peer)
            return False
        tally.answered += 1
        tally.latencies.record(time.monotonic() - started)
        return True

    async def until_idle(self, peer: Peer) -> None:
        if peer.in_flight > 0:
            with contextlib.suppress(TimeoutError):  # then closed anyway: counted unanswered
                await asyncio.wait_for(peer.idle.wait(), IDLE_WAIT_S)

    def flush(self, peer: Peer) -> None:
        """Sends what was written while away; its latency starts now."""
        queued, peer.queued = peer.queued, []
        now = time.monotonic()
        for number in queued:
            self.sent_late[number] = now
            self.write_message(peer, number, now)

    # ---- the schedule ------------------------------------------------------------------------

    def streams(self) -> list[tuple[float, Act]]:
        """(interval, what to do for the i-th time, due then) for every kind of traffic."""
        rates, period = self.rates, self.config.minute_seconds
        chats = len(self.peers) // 2

        def message(i: int, due: float) -> None:
            chat, turn = i % chats, (i // chats) % 2
            self.send_message(self.peers[2 * chat + turn], due)

        def read(i: int, due: float) -> None:
            chat, side = i % chats, (i // chats + 1) % 2
            self.mark_read(self.peers[2 * chat + side], due)

        def history(i: int, due: float) -> None:
            self.read_history(self.peers[2 * (i % chats) + 1], due)

        def search(i: int, due: float) -> None:
            self.search(self.peers[2 * ((i + chats // 2) % chats) + 1], due)

        def returns(i: int, due: float) -> None:
            chat = i % chats
            buyer, seller = self.peers[2 * chat], self.peers[2 * chat + 1]
            self.spawn(self.return_story(buyer, seller, next(self.orders)))

        def reconnect(i: int, due: float) -> None:
            peer = self.peers[i % len(self.peers)]
            if peer.state is State.OPEN:
                self.spawn(self.reconnect(peer))

        streams: list[tuple[float, Act]] = [
            (1.0 / rates.messages, message),
            (1.0 / rates.reads, read),
            (1.0 / rates.history, history),
            (1.0 / rates.searches, search),
            (period / rates.returns_per_period, returns),
        ]
        if rates.reconnects_per_period:
            streams.append((period / rates.reconnects_per_period, reconnect))
        return streams

    async def run(self, report: Callable[[int], None]) -> None:
        """Every stream on one clock for the whole run, without a pause; each period is
        handed to `report` once its traffic is answered (or nothing moved for QUIET s)."""
        streams = self.streams()
        self.start = time.monotonic() + 0.05
        end = self.start + self.config.seconds
        counts = [0] * len(streams)
        heap = [(self.start, s) for s in range(len(streams))]
        reporting = asyncio.create_task(self.reporter(report))
        try:
            while heap:
                due, s = heap[0]
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                heapq.heappop(heap)
                self.begin(self.period_of(due))
                interval, act = streams[s]
                act(counts[s], due)
                counts[s] += 1
                following = self.start + counts[s] * interval
                if following < end:
                    heapq.heappush(heap, (following, s))
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            self.begin(self.config.minutes)
            await reporting
            await self.finish()
        finally:
            reporting.cancel()

    async def reporter(self, report: Callable[[int], None]) -> None:
        for k in range(self.config.minutes):
            await self.ended[k].wait()
            await self.settle(self.tallies[k : k + 1])
            report(k)

    async def settle(self, tallies: Sequence[PeriodTally]) -> None:
        """Until nothing of `tallies` is outstanding, or nothing changed for QUIET seconds."""
        last, quiet_since = -1, time.monotonic()
        while (left := sum(t.outstanding for t in tallies)) > 0:
            now = time.monotonic()
            if left != last:
                last, quiet_since = left, now
            elif now - quiet_since > QUIET:
                return
            await asyncio.sleep(0.05)

    async def finish(self) -> None:
        """The stories and reconnects under way end, and what they owe arrives."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=ANSWER_TIMEOUT_S)
        await self.settle(self.tallies)


# ---- output -----------------------------------------------------------------------------------

OTHERS = (READ, HISTORY, SEARCH, RETURN, RECONNECT)
EXTRA_HEADER = (
    f" {'files':>6} {'read p99':>9} {'hist p99':>9} {'srch p99':>9} {'ret p99':>8}"
    f" {'recon p99':>9} {'replayed':>8} {'requests':>15}"
)


def minute_line(m: Minute) -> str:
    """The soak's line for the messages, then the rest of the mix: every p99 in ms, and the
    other requests answered of those due."""
    p99 = {kind: m.kinds[kind].p99_ms for kind in OTHERS}
    sent = sum(m.kinds[kind].sent for kind in OTHERS)
    answered = sum(m.kinds[kind].answered for kind in OTHERS)
    return (
        f"{period_line(m.messages)} {m.open_files:>6} {p99[READ]:>9.1f} {p99[HISTORY]:>9.1f}"
        f" {p99[SEARCH]:>9.1f} {p99[RETURN]:>8.1f} {p99[RECONNECT]:>9.1f} {m.replayed:>8}"
        f" {f'{answered}/{sent}':>15}"
    )


def summary(report: LongRunReport) -> str:
    lines = ["", "summary"]
    for kind, figures in report.totals.items():
        errors = f", errors {figures.errors}" if figures.errors else ""
        answer = "delivered" if kind == MESSAGE else "answered"
        done = report.delivered if kind == MESSAGE else figures.answered
        lines.append(
            f"  {kind:<10} {figures.sent:>9} sent, {done:>9} {answer},"
            f" p50 {figures.p50_ms:.1f} ms, p99 {figures.p99_ms:.1f} ms{errors}"
        )
    lines.append(
        f"  replayed {report.replayed}, repeats {report.repeats}, gaps {report.gaps},"
        f" closed by the server {report.closed_by_server or 'none'},"
        f" answers to nothing {report.stray or 'none'}"
    )
    if len(report.minutes) >= 2:
        first, last = report.minutes[0].messages, report.minutes[-1].messages
        messages = sum(m.messages.sent for m in report.minutes[1:])
        if messages:
            growth = (last.db_bytes - first.db_bytes) / messages
            lines.append(f"  database growth after period 1: {growth:.0f} bytes a message")
    for verdict in report.verdicts:
        mark = "PASS" if verdict.ok else "FAIL"
        lines.append(f"  {verdict.name:<34}  {mark}  {verdict.detail}")
    lines.append(f"  verdict                             {'PASS' if report.ok else 'FAIL'}")
    return "\n".join(lines)


def say(text: str) -> None:
    print(f"long_run: {text}", file=sys.stderr, flush=True)


# ---- verdicts ---------------------------------------------------------------------------------


def at_most_above(name: str, values: list[int], slack: int, unit: str) -> Verdict:
    """Every value from the second on at most `slack` above the second one."""
    if len(values) < 3:
        return Verdict(name, True, "not judged: no period after the second to compare")
    base = values[1]
    broke = [f"{n} ({v} {unit})" for n, v in enumerate(values[2:], start=3) if v > base + slack]
    against = f"against period 2's {base} {unit}"
    if broke:
        return Verdict(name, False, f"{against}, more than {slack} above: " + ", ".join(broke))
    span = "period 3" if len(values) == 3 else f"periods 3 to {len(values)}"
    return Verdict(name, True, f"{span} at most {slack} above, {against}")


def sparse_p99(name: str, values: list[float], stalls: float) -> Verdict:
    """Every p99 from the second period on at most SPARSE_FACTOR times the larger of the
    second period's and `stalls` (the messages' p99 then), plus SPARSE_MS."""
    if len(values) < 3:
        return Verdict(name, True, "not judged: no period after the second to compare")
    base = max(values[1], stalls)
    bound = SPARSE_FACTOR * base + SPARSE_MS
    broke = [f"{n} ({v:.1f} ms)" for n, v in enumerate(values[2:], start=3) if v > bound]
    rule = (
        f"few answers a period: at most {SPARSE_FACTOR:g}x {base:.1f} ms (the larger of period"
        f" 2's and its messages' p99) + {SPARSE_MS:g} ms"
    )
    if broke:
        return Verdict(name, False, f"{rule}, broken in " + ", ".join(broke))
    return Verdict(name, True, f"{rule} = {bound:.1f} ms")


def p99_flat(kind: str, minutes: list[Minute]) -> Verdict:
    """The soak's rule where a p99 rests on enough answers; where it rests on a few, those
    few are whichever met the server's worst moments, which the messages' p99 measures."""
    name = f"p99 flat: {kind}"
    values = [m.kinds[kind].p99_ms for m in minutes]
    if all(m.kinds[kind].samples >= DENSE for m in minutes[1:]):
        return flat(name, values, "ms")
    stalls = minutes[1].messages.p99_ms if len(minutes) > 1 else 0.0
    return sparse_p99(name, values, stalls)


def nothing_missed(report: LongRunReport) -> Verdict:
    reconnects = report.totals[RECONNECT].answered if RECONNECT in report.totals else 0
    examples = f"; first: {'; '.join(report.gap_examples[:3])}" if report.gap_examples else ""
    return Verdict(
        "nothing missed or repeated",
        report.gaps == 0 and report.repeats == 0,
        f"{report.gaps} seqs skipped, {report.repeats} repeated, across {reconnects} reconnects"
        f" ({report.replayed} messages arrived in a replay){examples}",
    )


def all_answered(report: LongRunReport) -> Verdict:
    problems: list[str] = []
    for kind in REQUESTS:
        figures = report.totals[kind]
        if figures.sent == 0:
            problems.append(f"no {kind} happened")
        unanswered = figures.sent - figures.answered - figures.failed
        if unanswered:
            problems.append(f"{unanswered} {kind} unanswered")
        if figures.failed:
            problems.append(f"{kind} errors {figures.errors}")
    messages = report.totals[MESSAGE]
    if messages.sent != messages.answered:
        problems.append(f"{messages.sent - messages.answered} messages not acked")
    if report.closed_by_server:
        problems.append(f"sockets closed by the server {report.closed_by_server}")
    if report.stray:
        problems.append(f"answers to nothing asked {report.stray}")
    requests = sum(report.totals[kind].sent for kind in KINDS)
    detail = "; ".join(problems) if problems else f"{requests} requests, no error"
    return Verdict("every request answered", not problems, detail)


def verdicts(report: LongRunReport, soak_view: SoakReport) -> list[Verdict]:
    minutes = report.minutes
    return [
        *judge(soak_view),
        nothing_missed(report),
        at_most_above("open files flat", [m.open_files for m in minutes], FD_SLACK, "files"),
        *(p99_flat(kind, minutes) for kind in OTHERS),
        all_answered(report),
    ]


def soak_view(report: LongRunReport) -> SoakReport:
    """The messages' part of the run as the soak reports it, for the soak's verdicts."""
    messages = report.totals[MESSAGE]
    return SoakReport(
        config=SoakConfig(
            minutes=report.config.minutes,
            minute_seconds=report.config.minute_seconds,
            chats=report.config.chats,
            rate=None if report.rates is None else report.rates.messages,
            load_share=report.config.load_share,
            sync=report.config.sync,
            workdir=report.config.workdir,
        ),
        server=report.server,
        db=report.db,
        server_cpus=report.server_cpus,
        client_cpus=report.client_cpus,
        capacity_per_s=report.capacity_per_s,
        rate_per_s=0.0 if report.rates is None else report.rates.messages,
        periods=[m.messages for m in report.minutes],
        sent=messages.sent,
        delivered=report.delivered,
        undelivered=messages.sent - report.delivered,
        errors=messages.errors,
        wal_max_bytes=report.wal_max_bytes,
    )


# ---- the run ----------------------------------------------------------------------------------


def minute_of(k: int, traffic: Traffic, watch: WalWatch, pauses: PauseWatch, db: Path) -> Minute:
    tally, config = traffic.tallies[k], traffic.config
    begun, ended = traffic.marks[k], traffic.marks[k + 1]
    elapsed = max(ended.at - begun.at, 1e-6)
    wal, wal_max = watch.take()
    worst = pauses.take()
    kinds = {kind: tally.kinds[kind].figures() for kind in KINDS}
    messages = kinds[MESSAGE]
    period = Period(
        period=k + 1,
        elapsed_s=(k + 1) * config.minute_seconds,
        sent=messages.sent,
        delivered=tally.delivered,
        undelivered=messages.sent - tally.delivered,
        p50_ms=messages.p50_ms,
        p99_ms=messages.p99_ms,
        wal_bytes=wal,
        wal_max_bytes=wal_max,
        db_bytes=file_size(db),
        rss_bytes=traffic.server.rss(),
        disk_bytes=ended.server_disk_written - begun.server_disk_written,
        server_cpu=(ended.server_cpu - begun.server_cpu) / elapsed,
        client_cpu=(ended.client_cpu - begun.client_cpu) / elapsed,
        errors=messages.errors,
        loop_lag_ms=worst.loop_lag_ms,
        gc_ms=worst.gc_ms,
        commit_ms=worst.commit_ms,
    )
    return Minute(
        messages=period,
        open_files=open_files(traffic.server.pid),
        kinds=kinds,
        replayed=tally.replayed,
        repeats=tally.repeats,
        gaps=tally.gaps,
    )


async def measure_capacity(server: Server, chats: int) -> float:
    """The soak's closed loop: messages a second this server delivers at most."""
    fleet = Fleet(server.url, server.secret, f"cap-{secrets.token_hex(3)}", server.cpu)
    try:
        say(f"capacity: {chats} chats, closed loop for {CAPACITY_SECONDS:g} s")
        await fleet.open_chats(chats)
        capacity = await fleet.closed_loop(CAPACITY_WINDOW, CAPACITY_WARMUP, CAPACITY_SECONDS)
    finally:
        await fleet.close()
    if capacity.delivered_per_s <= 0:
        raise RuntimeError(f"the closed loop delivered nothing: {capacity.errors}")
    return capacity.delivered_per_s


def rates_for(config: LongRunConfig, capacity: float | None) -> Rates:
    # Messages and read marks are the writes: together they make the offered share.
    if config.rate is not None:
        messages = config.rate
    else:
        assert capacity is not None
        messages = config.load_share * capacity / (1 + READS_PER_MESSAGE)
    reconnects = round(RECONNECT_SHARE * 2 * config.chats)
    return Rates(
        messages=messages,
        reads=messages * READS_PER_MESSAGE,
        reconnects_per_period=max(1, reconnects),
    )


def headline(report: LongRunReport, rates: Rates) -> str:
    config = report.config
    offered = f"{rates.messages:.0f} msg/s and {rates.reads:.0f} read marks/s"
    if report.capacity_per_s is not None:
        offered += (
            f" ({100 * config.load_share:.0f}% of {report.capacity_per_s:.0f} delivered in a"
            " closed loop)"
        )
    where = (
        f"server on CPU {report.server_cpus}, load on CPU {report.client_cpus}"
        if report.server_cpus
        else "server and load unpinned (one CPU)"
    )
    return (
        f"chatd long run: {report.server}, {config.chats} chats, {offered}, history and search"
        f" {rates.history:g}/s each, {rates.returns_per_period} returns and"
        f" {rates.reconnects_per_period} reconnects a period, {config.minutes} periods of"
        f" {config.minute_seconds:g} s, {where}"
    )


async def long_run(config: LongRunConfig, server: Server, db: Path, report: LongRunReport) -> None:
    if config.rate is None:
        report.capacity_per_s = await measure_capacity(server, config.chats)
    rates = report.rates = rates_for(config, report.capacity_per_s)
    traffic = Traffic(server, f"long-{secrets.token_hex(3)}", rates, config)
    watch = WalWatch(db)
    pauses = PauseWatch(server.http, config.minute_seconds)
    sampler: asyncio.Task[None] | None = None
    scraper: asyncio.Task[None] | None = None
    try:
        say(f"opening {config.chats} chats ({2 * config.chats} sockets)")
        await traffic.open_chats(config.chats)
        print(headline(report, rates), flush=True)
        print(HEADER + EXTRA_HEADER, flush=True)

        def on_period(k: int) -> None:
            minute = minute_of(k, traffic, watch, pauses, db)
            report.minutes.append(minute)
            print(minute_line(minute), flush=True)

        sampler = asyncio.create_task(watch.run())
        scraper = asyncio.create_task(pauses.run())
        await traffic.run(on_period)
        watch.read()
        report.wal_max_bytes = watch.run_max
        tally_totals(report, traffic)
    finally:
        if sampler is not None:
            sampler.cancel()
        await stopped(scraper)
        await traffic.close()


def tally_totals(report: LongRunReport, traffic: Traffic) -> None:
    """The whole run, counted again after the end: a late answer or delivery is in it."""
    tallies = traffic.tallies
    report.totals = {kind: merged(tallies, kind) for kind in KINDS}
    report.delivered = sum(t.delivered for t in tallies)
    report.replayed = sum(t.replayed for t in tallies)
    report.repeats = sum(t.repeats for t in tallies)
    report.gaps = sum(t.gaps for t in tallies)
    report.closed_by_server = dict(traffic.closed_by_server)
    report.stray = dict(traffic.stray)
    report.gap_examples = traffic.gap_examples


def run(config: LongRunConfig) -> LongRunReport:
    available = sorted(os.sched_getaffinity(0))
    server_cpus, client_cpus = (
        ({available[0]}, {available[1]}) if len(available) >= 2 else (None, None)
    )
    pin(client_cpus)
    raise_open_files()  # before the server starts: it inherits the limit
    spec = ServerSpec("chatd", config.sync)
    secret = "long-run-" + secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="chatd-long-run-") as scratch:
        workdir = config.workdir or Path(scratch)
        say(f"starting {spec.label} in {workdir}")
        with spec.server(workdir, secret, server_cpus) as server:
            report = LongRunReport(
                config=config,
                server=spec.label,
                db=str(server.db),
                server_cpus=sorted(server_cpus) if server_cpus else None,
                client_cpus=sorted(client_cpus) if client_cpus else None,
            )
            started = time.monotonic()
            asyncio.run(long_run(config, server, server.db, report))
            say(f"done in {time.monotonic() - started:.0f} s; stopping the server")
    report.verdicts = verdicts(report, soak_view(report))
    return report


def main(argv: list[str] | None = None) -> int:
    args = load_parser("python -m chatd.proof.long_run", __doc__, minutes=30).parse_args(argv)
    config = LongRunConfig(**load_config(args))
    return run_program(lambda: run(config), summary, args.json)


if __name__ == "__main__":
    sys.exit(main())
