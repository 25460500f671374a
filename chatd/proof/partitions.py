"""Partitions: two chatd nodes, PostgreSQL and Redis on hosts of their own, and the network
between them cut, slowed and made to lose packets while clients write through both nodes.

    python -m chatd.proof.partitions [--scenarios NAME,...] [--chats 12] [--shops 3]
        [--interval 0.25] [--warmup 3] [--cut 10] [--settle 3] [--delay-ms 100]
        [--jitter-ms 20] [--loss 0.05] [--silence-bound 5] [--heal-goal 5] [--seed 1]
        [--workdir DIR] [--json FILE]

The program makes its own network (chatd.proof.netlab): the hosts `cl` (the clients, and
this program), `a` and `b` (a `chatd serve` each), `pg` (a PostgreSQL made by initdb in a
temporary directory, listening on its host's address only) and `redis` (a `redis-server`
bound likewise), each in a network namespace of its own, linked through a switch namespace
where the faults are made. Nothing of the machine's own network or services is touched, and
every namespace and process is gone when the program ends, however it ends (but SIGKILL).
Without root, `ip` or network namespaces it says what is missing and exits with status 2:
it never runs the scenarios on anything else.

Each scenario has clients of its own: `--chats` buyers, each in a chat with one of `--shops`
shops, and two operators of each shop, one at each node (buyers alternate between the
nodes), so every chat's events cross from node to node. Every client is a WebSocket client of
the wire contract that keeps its cursor (the last `event` or `synced` it received) and
writes a message every `--interval` seconds with a nonce, and now and then asks for its chat
list (a read). An error frame makes it send the same nonce again; a third in a row, a closed
socket, or no answer within `--silence-bound` + 3 s makes it go to the other node, as a
client behind a load balancer would, resuming with its cursor. The scenarios (`--scenarios`,
all by default), each a fault of node a for `--cut` seconds:

    redis               node a cut from Redis
    redis-restart       the same, and Redis restarted meanwhile: the close of node a's
                        connections is lost in the cut (as when a partition outlasts TCP's
                        retries), so node a is never told its subscription is gone
    postgres            node a cut from PostgreSQL
    postgres-mid-write  the same, at a moment node a holds the log's write lock (its link
                        slowed to 300 ms first, so that it lives inside write transactions)
    clients             node a cut from its clients
    lossy-postgres      packets between node a and PostgreSQL held `--delay-ms` ±
                        `--jitter-ms` each way, and `--loss` of them dropped
    lossy-redis         the same between node a and Redis

A cut drops every packet between the two hosts without a word, as a partition does; delay
and loss are made per packet by a relay on a TUN device (chatd.proof.impair), because
`tc netem` is not in every kernel (the program says whether this one has it). Each scenario:

1. opens the chats and writes for `--warmup` seconds, then makes the fault;
2. heals it after `--cut` seconds, and measures the time until every client has received
   every event the log held at that moment (the goal: within `--heal-goal` seconds);
3. sends the clients that moved to node b back to node a, and measures until node a acks
   one of their writes (the same goal), until every node's hub is subscribed to Redis,
   and until the nodes take no more events from the log because Redis did not bring them;
4. writes on for `--settle` seconds, stops writing, waits until every client has every event
   of its chats, and checks, against the log read from PostgreSQL and the acks:
   - acked events lost: an ack whose event is not in the log at the acked chat and seq with
     the text sent, or an event a client should have that it never received (must be 0);
   - duplicated: a message in the log twice, a nonce acked with two different events, or an
     event a client received twice across its reconnects (0);
   - seq gaps: a chat whose seqs in the log are not 1, 2, 3, ..., or a client that received
     a chat's events out of order or with one missing between two (0);
   - what clients saw from the cut until every client had every event: error frames by
     code, closes by code (1006: the socket was lost without a close frame), connections
     that failed, and the longest wait for an answer. A wait longer than `--silence-bound`
     where the client's path to its node was intact is a finding: the node should have said
     something (an error, a close) rather than nothing;
   - node b, which nothing cut, must have acked writes all along: a stretch longer than
     `--silence-bound` without one is a finding.

The exit status is 0 when every scenario passes, 1 when one fails, 2 when the run itself
could not be made (no namespaces here, a service that did not start), 130 when interrupted.
SIGTERM, SIGHUP and Ctrl-C end it with everything it made undone; SIGUSR1 prints every
thread's stack and lets it go on (a run that seems stuck says where).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import faulthandler
import glob
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import websockets

from chatd.client.tokens import mint
from chatd.extras import missing_extra
from chatd.launcher import Server
from chatd.proof.netlab import (
    SUBNET,
    Lab,
    LabUnavailable,
    enter_namespace,
    netem_available,
    preflight,
)
from chatd.proof.wire import Frame, Wire
from protocol.events import decode_event

if TYPE_CHECKING:
    import asyncpg

HOSTS = ("cl", "a", "b", "pg", "redis")
PG_PORT = 5432
REDIS_PORT = 6379
NODE_PORT = 8000
CONNECT_TIMEOUT = 3.0  # a TCP connection and the WebSocket handshake
CONVERGE_LIMIT = 60.0  # the longest wait for every client to have every event
SCENARIOS = (
    "redis", "redis-restart", "postgres", "postgres-mid-write", "clients", "lossy-postgres",
    "lossy-redis",
)  # fmt: skip
MID_WRITE_DELAY_MS = 300.0  # each way, on node a's link to PostgreSQL before that cut


def say(*parts: object) -> None:
    print(*parts, flush=True)


# ---- the services, each on its host ------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(f"no {name}: install PostgreSQL's server binaries")
    return found


class LabPostgres:
    """A fresh PostgreSQL cluster in a temporary directory, served on `host`'s address."""

    def __init__(self, lab: Lab, host: str) -> None:
        self.lab = lab
        self.host = host
        self.root = Path(tempfile.mkdtemp(prefix="chatd-partitions-pg-"))
        self.data = self.root / "data"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            shutil.chown(self.root, "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        return f"postgresql://chatd@{self.lab.addr(self.host)}:{PG_PORT}/postgres"

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run(
            [*self._as_postgres, _pg_bin("initdb"), "-D", str(self.data), "-U", "chatd",
             "--auth=trust", "-E", "UTF8", "--no-sync"]
        )  # fmt: skip
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0.0/16 trust\n")
        options = (
            f"-p {PG_PORT} -k {self.root} -c listen_addresses={self.lab.addr(self.host)}"
            " -c fsync=off"
        )
        self._run(
            self.lab.exec(
                self.host,
                [*self._as_postgres, _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                 "-l", str(self.root / "postgres.log"), "-w", "-t", "60", "start"],
            )
        )  # fmt: skip

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(
                    [*self._as_postgres, _pg_bin("pg_ctl"), "-D", str(self.data), "-m",
                     "immediate", "-w", "stop"]
                )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


class LabRedis:
    def __init__(self, lab: Lab, host: str, workdir: Path) -> None:
        self.lab = lab
        self.host = host
        self.dir = workdir / "redis"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.lab.addr(self.host)}:{REDIS_PORT}/0"

    def restart(self) -> None:
        """Ends Redis and starts another on the same address. Its host gives up resending
        the close of a connection after one try, so in a cut that close is lost for good, as
        it is when a partition outlasts the retries (minutes)."""
        self.lab.sysctl(self.host, "net.ipv4.tcp_orphan_retries", "1")
        self.remove()
        self.start()
        wait_for_port(self.lab.addr(self.host), REDIS_PORT)

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("no redis-server: install Redis")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.lab.exec(
                self.host,
                [server, "--bind", self.lab.addr(self.host), "--port", str(REDIS_PORT),
                 "--save", "", "--appendonly", "no", "--protected-mode", "no",
                 "--dir", str(self.dir)],
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class LabNode(Server):
    """`chatd serve` inside a host of the lab, on that host's address."""

    namespace: str = ""
    address: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"ws://{self.address}:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://{self.address}:{self.port}"

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *super().command()]


def wait_for_port(address: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.3)
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout:.0f} s")


# ---- what the clients saw ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sight:
    """One thing a client saw: an error frame, a close, a failed connection, or a wait."""

    at: float  # time.monotonic() when it began
    what: str  # "error", "close", "connect", "wait"
    detail: str = ""  # the error's or the close's code, why a connection failed
    wait: float = 0.0  # seconds: how long the client waited for an answer
    node: str = ""


@dataclass(frozen=True)
class Config:
    scenarios: tuple[str, ...] = SCENARIOS
    chats: int = 12
    shops: int = 3
    interval: float = 0.25
    read_every: int = 8
    warmup: float = 3.0
    cut: float = 10.0
    settle: float = 3.0
    delay_ms: float = 100.0
    jitter_ms: float = 20.0
    loss: float = 0.05
    silence_bound: float = 5.0
    heal_goal: float = 5.0
    seed: int = 1

    @property
    def answer_timeout(self) -> float:
        return self.silence_bound + 3.0


class Client:
    """One user's WebSocket client, resuming with its cursor on whichever node answers."""

    def __init__(
        self,
        name: str,
        token: str,
        nodes: dict[str, str],
        home: str,
        config: Config,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.token = token
        self.nodes = nodes  # node name -> ws url
        self.order = [home, *(n for n in nodes if n != home)]
        self.home = home
        self.node = home
        self.config = config
        self.rng = rng
        self.chats: list[str] = []  # where it writes
        self.shop: str | None = None  # a buyer's shop, for `open`
        self.cursor: str | None = None
        # What it received: (chat, seq) -> position, and the last seq of each chat.
        self.events: dict[tuple[str, int], int] = {}
        self.last_seq: dict[str, int] = {}
        self.doubled = 0
        self.out_of_order: list[str] = []
        self.unsolicited: Counter[str] = Counter()
        # What it wrote: nonce -> (chat, text), the acks by nonce, nonces sent more than once.
        self.sent: dict[str, tuple[str, str]] = {}
        self.acks: dict[str, tuple[str, int]] = {}
        self.ack_conflicts: list[str] = []
        self.acked_at: list[tuple[float, str]] = []  # (when, through which node)
        self.resent = 0
        self.sights: list[Sight] = []
        self.connected = asyncio.Event()
        self.writing = False
        self.done = False
        self.go_home = False  # move back to the home node (after a heal)
        self.asking = False  # a request waits for its answer
        self._n = 0
        self._pending: str | None = None
        self._failures = 0

    # ---- receiving ---------------------------------------------------------------------------

    def on_push(self, frame: Frame, _t: float) -> None:
        kind = frame.get("type")
        if kind == "event":
            chat, seq = str(frame["chat"]), int(frame["seq"])
            cursor = str(frame["cursor"])
            pos = int(cursor.rpartition(".")[2], 16)
            if (chat, seq) in self.events:
                self.doubled += 1
            else:
                self.events[(chat, seq)] = pos
            last = self.last_seq.get(chat, 0)
            if seq != last + 1:
                self.out_of_order.append(f"{chat}: {seq} after {last}")
            self.last_seq[chat] = max(last, seq)
            self.cursor = cursor
        elif kind == "synced":
            self.cursor = str(frame["cursor"])
        elif kind == "error":
            code = str(frame.get("code"))
            self.unsolicited[code] += 1
            self.sights.append(Sight(time.monotonic(), "error", code, node=self.node))

    # ---- the connection --------------------------------------------------------------------

    def _switch(self) -> None:
        i = self.order.index(self.node)
        self.node = self.order[(i + 1) % len(self.order)]

    async def _connect(self) -> Wire | None:
        started = time.monotonic()
        url = self.nodes[self.node]
        try:
            ws = await websockets.connect(
                url,
                subprotocols=["chatd.v1.json"],  # type: ignore[list-item]
                open_timeout=CONNECT_TIMEOUT,
                ping_interval=1.0,
                ping_timeout=3.0,
                close_timeout=1.0,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            why = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            self.sights.append(
                Sight(started, "connect", why, time.monotonic() - started, node=self.node)
            )
            return None
        client = Wire(ws, self.on_push)
        hello: Frame = {"type": "hello", "token": self.token}
        if self.cursor is not None:
            hello["since"] = self.cursor
        try:
            await ws.send(json.dumps(hello))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), self.config.answer_timeout))
        except (TimeoutError, websockets.ConnectionClosed, OSError) as exc:
            waited = time.monotonic() - started
            if isinstance(exc, TimeoutError):
                self.sights.append(Sight(started, "wait", "hello", waited, node=self.node))
            else:
                code = str(ws.close_code or 1006)
                self.sights.append(Sight(started, "close", code, waited, node=self.node))
            with contextlib.suppress(Exception):
                await ws.close()
            return None
        self.sights.append(Sight(started, "wait", "hello", time.monotonic() - started, self.node))
        if welcome.get("type") != "welcome":
            code = str(welcome.get("code"))
            self.sights.append(Sight(started, "error", code, node=self.node))
            with contextlib.suppress(Exception):
                await ws.close()
            return None
        if self.cursor is None:
            self.cursor = str(welcome["cursor"])
        client.welcome = welcome
        client.start()
        return client

    async def run(self) -> None:
        while not self.done:
            conn = await self._connect()
            if conn is None:
                self._switch()
                await asyncio.sleep(0.2 + self.rng.random() * 0.3)
                continue
            self.connected.set()
            try:
                keep = await self._use(conn)
            finally:
                self.connected.clear()
                await conn.close()
            if not keep:
                self._switch()
                await asyncio.sleep(0.1 + self.rng.random() * 0.2)

    async def _use(self, conn: Wire) -> bool:
        """Works on one connection; False when it failed (try the other node next)."""
        while not self.done:
            if conn.closed.is_set():
                code = str(conn.close_code or 1006)
                self.sights.append(Sight(time.monotonic(), "close", code, node=self.node))
                return False
            if self.go_home:
                self.go_home = False
                if self.node != self.home:
                    self.node = self.home  # back with its cursor, as after a rebalance
                    return True
            if self.shop is not None and not self.chats:
                reply = await self._request(conn, {"type": "open", "seller": self.shop})
                if reply is None or reply.get("type") != "ack":
                    return self._failed(reply)
                self.chats.append(str(reply["chat"]))
                continue
            if not (self.writing and self.chats):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.closed.wait(), 0.1)
                continue
            if not await self._write(conn):
                return False
            await self._pause(conn)
        return True

    def _failed(self, reply: Frame | None) -> bool:
        """After a failed request: go on here (an error frame, up to three in a row), or not."""
        self._failures += 1
        if reply is None or self._failures >= 3:
            self._failures = 0
            return False
        return True

    async def _pause(self, conn: Wire) -> None:
        delay = self.config.interval * (0.5 + self.rng.random())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.closed.wait(), delay)

    async def _write(self, conn: Wire) -> bool:
        if self._pending is None:
            self._n += 1
            nonce = f"{self.name}-{self._n}"
            chat = self.chats[self._n % len(self.chats)]
            self.sent[nonce] = (chat, f"{self.name} пишет {self._n}")
            self._pending = nonce
        else:
            self.resent += 1
        nonce = self._pending
        chat, text = self.sent[nonce]
        frame = {"type": "send", "chat": chat, "text": text, "nonce": nonce}
        reply = await self._request(conn, frame)
        if reply is None:
            return False
        if reply.get("type") != "ack":
            await asyncio.sleep(0.3)
            return self._failed(reply)
        self._failures = 0
        answer = (str(reply["chat"]), int(reply["seq"]))
        known = self.acks.get(nonce)
        if known is not None and known != answer:
            self.ack_conflicts.append(f"{nonce} acked as {known} and as {answer}")
        self.acks[nonce] = answer
        self.acked_at.append((time.monotonic(), self.node))
        self._pending = None
        if self._n % self.config.read_every == 0:
            reply = await self._request(conn, {"type": "chats", "limit": 20})
            if reply is None:
                return False
            if reply.get("type") != "chats":
                return self._failed(reply)
        return True

    async def _request(self, conn: Wire, frame: Frame) -> Frame | None:
        """The answer, or None when none came (silence) or the socket went."""
        started = time.monotonic()
        what = str(frame["type"])
        self.asking = True
        try:
            reply = await conn.request(frame, within=self.config.answer_timeout)
        except TimeoutError:
            waited = time.monotonic() - started
            self.sights.append(Sight(started, "wait", what, waited, node=self.node))
            return None
        except ConnectionError:
            waited = time.monotonic() - started
            code = str(conn.close_code or 1006)
            self.sights.append(Sight(started, "close", code, waited, node=self.node))
            return None
        finally:
            self.asking = False
        waited = time.monotonic() - started
        self.sights.append(Sight(started, "wait", what, waited, node=self.node))
        if reply.get("type") == "error":
            self.sights.append(Sight(started, "error", str(reply.get("code")), node=self.node))
        return reply


# ---- one scenario ------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the clients saw in a window of time."""

    errors: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    failed_connects: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    longest_wait_s: float = 0.0
    longest_wait_on: str = ""
    silent: int = 0  # waits longer than the bound
    longest: dict[str, float] = field(default_factory=dict)  # by what was waited for


@dataclass
class Figures:
    scenario: str
    title: str
    clients: int
    chats: int
    cut_s: float
    acked: int = 0
    resent: int = 0
    events: int = 0
    lost: int = 0  # acked events not in the log as acked
    undelivered: int = 0  # (client, event) pairs never received
    duplicated: int = 0  # messages twice in the log, nonces acked twice differently
    doubled: int = 0  # events a client received twice
    seq_gaps: int = 0
    heal_s: float | None = None
    final_s: float | None = None
    other_stall_s: float = 0.0  # the longest time node b acked no write during the cut
    # From the heal until every node's hub was subscribed to Redis, and until the last event
    # a node had to take from the log instead (then a second with none, under the load).
    hubs_up_s: float | None = None
    redis_back_s: float | None = None
    home_acks: int = 0  # writes acked through node a once its clients came back after the heal
    a_back_s: float | None = None  # from the heal until node a acked one of them
    seconds: float = 0.0  # the whole scenario took
    held_lock: bool | None = None  # a cut in the middle of a write found node a holding the lock
    seen: Seen = field(default_factory=Seen)
    silence_expected: bool = False
    impairment: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class Fault:
    name: str
    title: str
    a: str
    b: str
    impair: bool = False
    # Cut only once `a` holds the log's write lock (its link to `b` slowed first, so that it
    # spends its time inside write transactions).
    mid_write: bool = False
    # Restart Redis during the cut: its connections end, and their close is lost in the cut.
    restart_redis: bool = False

    @property
    def cuts_clients(self) -> bool:
        return not self.impair and "cl" in (self.a, self.b)


FAULTS = {
    "redis": Fault("redis", "node a cut from Redis", "a", "redis"),
    "postgres": Fault("postgres", "node a cut from PostgreSQL", "a", "pg"),
    "postgres-mid-write": Fault(
        "postgres-mid-write",
        "node a cut from PostgreSQL while it holds the log's write lock",
        "a",
        "pg",
        mid_write=True,
    ),
    "redis-restart": Fault(
        "redis-restart",
        "node a cut from Redis, and Redis restarted meanwhile",
        "a",
        "redis",
        restart_redis=True,
    ),
    "clients": Fault("clients", "node a cut from its clients", "a", "cl"),
    "lossy-postgres": Fault(
        "lossy-postgres", "delay and loss between node a and PostgreSQL", "a", "pg", True
    ),
    "lossy-redis": Fault(
        "lossy-redis", "delay and loss between node a and Redis", "a", "redis", True
    ),
}


class Cluster:
    """The lab's services as the scenarios use them."""

    def __init__(
        self,
        lab: Lab,
        config: Config,
        secret: str,
        pg: LabPostgres,
        redis: LabRedis,
        nodes: dict[str, LabNode],
    ) -> None:
        self.lab = lab
        self.config = config
        self.secret = secret
        self.pg = pg
        self.redis = redis
        self.nodes = nodes
        self.rng = random.Random(config.seed)
        self._db: asyncpg.Connection[asyncpg.Record] | None = None

    async def db(self) -> asyncpg.Connection[asyncpg.Record]:
        import asyncpg

        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(self.pg.dsn, timeout=10)
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            # Bounded: this runs on the way out, maybe while a fault still stands.
            try:
                await self._db.close(timeout=5)
            except TimeoutError:
                self._db.terminate()

    async def log_of(self, chats: list[str]) -> list[tuple[int, str, int, str, str | None]]:
        """(pos, chat, seq, kind, text) of the events of these chats, by position."""
        rows = await (await self.db()).fetch(
            "SELECT pos, stream, seq, kind, body FROM events WHERE stream = ANY($1::text[])"
            " ORDER BY pos",
            chats,
        )
        out = []
        for row in rows:
            event = decode_event(bytes(row["body"]))
            out.append(
                (int(row["pos"]), str(row["stream"]), int(row["seq"]), row["kind"], event.text)
            )
        return out

    async def head(self) -> int:
        return int(await (await self.db()).fetchval("SELECT coalesce(max(pos), 0) FROM events"))

    # ---- the parties of one scenario -----------------------------------------------------------

    def clients_for(self, tag: str) -> tuple[list[Client], list[Client], dict[str, list[Client]]]:
        config = self.config
        urls = {name: node.url for name, node in self.nodes.items()}
        names = sorted(urls)
        operators: list[Client] = []
        by_shop: dict[str, list[Client]] = {}
        for s in range(config.shops):
            shop = f"{tag}-shop{s}"
            by_shop[shop] = []
            for home in names:
                sub = f"{tag}-op{s}{home}"
                token = mint(self.secret, role="seller", sub=sub, name=sub, seller=shop, ttl=7200)
                client = Client(sub, token, urls, home, config, random.Random(self.rng.random()))
                operators.append(client)
                by_shop[shop].append(client)
        buyers: list[Client] = []
        for c in range(config.chats):
            sub = f"{tag}-buyer{c}"
            token = mint(self.secret, role="buyer", sub=sub, name=sub, ttl=7200)
            home = names[c % len(names)]
            client = Client(sub, token, urls, home, config, random.Random(self.rng.random()))
            client.shop = f"{tag}-shop{c % config.shops}"
            buyers.append(client)
        return buyers, operators, by_shop

    # ---- faults --------------------------------------------------------------------------------

    async def make(self, fault: Fault) -> bool | None:
        """Makes the fault; for a cut in the middle of a write, whether node a held the
        log's lock when it was cut."""
        lab, config = self.lab, self.config
        if fault.impair:
            await asyncio.to_thread(
                lab.impair, fault.a, fault.b, delay_ms=config.delay_ms,
                jitter_ms=config.jitter_ms, loss=config.loss, seed=config.seed,
            )  # fmt: skip
            return None
        held = None
        if fault.mid_write:
            await asyncio.to_thread(
                lab.impair, fault.a, fault.b, delay_ms=MID_WRITE_DELAY_MS, seed=config.seed
            )
            held = await _until_async(lambda: self.holds_log_lock(fault.a), 20.0)
        await asyncio.to_thread(lab.cut, fault.a, fault.b)
        if fault.restart_redis:
            await asyncio.to_thread(self.redis.restart)
        return held

    async def holds_log_lock(self, host: str) -> bool:
        """Whether a session of `host` holds an advisory lock (the log's write lock: the
        only one a running node takes)."""
        found = await (await self.db()).fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND s.client_addr = $1::inet",
            self.lab.addr(host),
        )
        return bool(found)

    async def heal(self, fault: Fault) -> dict[str, int]:
        lab = self.lab
        if not fault.impair:
            await asyncio.to_thread(lab.heal, fault.a, fault.b)
        if fault.impair or fault.mid_write:
            impairment = await asyncio.to_thread(lab.restore, fault.a, fault.b)
            return impairment.counts if impairment is not None and fault.impair else {}
        return {}

    async def hub_metrics(self) -> dict[str, tuple[bool, int]]:
        """Each node's hub: whether it is subscribed to Redis (`chatd_hub_up`), and how many
        events it had to take from the log because Redis had not brought them
        (`chatd_hub_log_deliveries`)."""
        found: dict[str, tuple[bool, int]] = {}
        async with httpx.AsyncClient(timeout=5.0) as http:
            for name, node in self.nodes.items():
                values: dict[str, float] = {}
                for line in (await http.get(node.http + "/metrics")).text.splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("chatd_hub_up", "chatd_hub_log_deliveries_total"):
                        values[key] = float(value)
                found[name] = (
                    values.get("chatd_hub_up") == 1.0,
                    int(values.get("chatd_hub_log_deliveries_total", 0)),
                )
        return found

    async def hubs_up(self, since: float, within: float) -> float | None:
        """Seconds from `since` until every node's hub is subscribed to Redis, or None."""
        while not all(up for up, _ in (await self.hub_metrics()).values()):
            if time.monotonic() - since > within:
                return None
            await asyncio.sleep(0.1)
        return time.monotonic() - since

    async def redis_back(self, since: float, within: float, quiet: float = 1.0) -> float | None:
        """Seconds from `since` until the last event a node had to take from the log (or,
        when none did, until the first look), once a whole `quiet` second has passed, under
        the load, with every hub subscribed and no node taking any: Redis carries the
        events between the nodes again. None when that did not happen within `within`
        seconds. (Right after a heal TCP may still be resending what the cut lost, a second
        or more, and the log fills in meanwhile.)"""
        last: dict[str, int] | None = None
        changed = since
        while True:
            now = time.monotonic()
            found = await self.hub_metrics()
            counts = {name: taken for name, (_, taken) in found.items()}
            if counts != last or not all(up for up, _ in found.values()):
                changed = now
                last = counts
            elif now - changed >= quiet:
                return changed - since
            if now - since > within:
                return None
            await asyncio.sleep(0.1)

    async def healthy(self, within: float = 30.0) -> None:
        """Both nodes answer /readyz (the store and the hub reachable) again."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as http:
            for name, node in self.nodes.items():
                while True:
                    try:
                        if (await http.get(node.http + "/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"node {name} is not ready {within:.0f} s after a heal")
                    await asyncio.sleep(0.2)

    # ---- running one -----------------------------------------------------------------------------

    async def scenario(self, fault: Fault, number: int) -> Figures:
        config = self.config
        # Parties of their own: a scenario that runs twice opens new chats.
        tag = f"s{number}{fault.name.replace('-', '')}"
        buyers, operators, by_shop = self.clients_for(tag)
        everyone = [*operators, *buyers]
        tasks: list[asyncio.Task[None]] = []
        figures = Figures(
            scenario=fault.name,
            title=fault.title,
            clients=len(everyone),
            chats=len(buyers),
            cut_s=config.cut,
            silence_expected=fault.cuts_clients,
        )
        try:
            # Operators first: each sees its shop's chats open. Then the buyers open them.
            for group in (operators, buyers):
                tasks.extend(asyncio.create_task(c.run()) for c in group)
                await _all_set([c.connected for c in group], 30.0, "clients connecting")
            await _until(lambda: all(b.chats for b in buyers), 30.0, "chats opening")
            for buyer in buyers:
                assert buyer.shop is not None
                for operator in by_shop[buyer.shop]:
                    operator.chats.extend(buyer.chats)
            chats = [b.chats[0] for b in buyers]
            for client in everyone:
                client.writing = True
            await asyncio.sleep(config.warmup)

            cut_at = time.monotonic()
            figures.held_lock = await self.make(fault)
            if fault.mid_write:
                cut_at = time.monotonic()  # the slowed link before it is no part of the cut
            await asyncio.sleep(config.cut)
            figures.impairment = await self.heal(fault)
            healed_at = time.monotonic()
            figures.other_stall_s = _stall(everyone, "b", cut_at, healed_at)
            figures.cut_s = healed_at - cut_at
            head = await self.head()
            wanted = _wanted(everyone, await self.log_of(chats), head)
            figures.heal_s = await _converge(everyone, wanted, CONVERGE_LIMIT)
            recovered_at = time.monotonic()
            # Clients that moved to node b go back to node a, as a balancer would move them:
            # node a must serve again.
            for client in everyone:
                client.go_home = True
            # Redis carries events between the nodes again: every hub subscribed, and then
            # (a subscription that only seems alive would show here) no events taken from
            # the log while the load settles.
            figures.hubs_up_s = await self.hubs_up(healed_at, CONVERGE_LIMIT)
            figures.redis_back_s = await self.redis_back(healed_at, CONVERGE_LIMIT)
            if await _until(
                lambda: _first_ack(everyone, "a", recovered_at) is not None, CONVERGE_LIMIT, None
            ):
                figures.a_back_s = (_first_ack(everyone, "a", recovered_at) or 0.0) - healed_at
            await asyncio.sleep(config.settle)
            figures.home_acks = _acks_through(everyone, "a", recovered_at)

            for client in everyone:
                client.writing = False
            # A request under way is answered (or given up) before the log is read: an ack
            # that came after the reading would name an event the reading could not hold.
            await _until(
                lambda: not any(c.asking for c in everyone), config.answer_timeout + 5, None
            )
            log = await self.log_of(chats)
            final = _wanted(everyone, log, max((row[0] for row in log), default=0))
            figures.final_s = await _converge(everyone, final, CONVERGE_LIMIT)
            window_end = recovered_at if figures.heal_s is not None else time.monotonic()
            figures.seen = _seen(everyone, cut_at, window_end, config.silence_bound)
            _check(figures, everyone, log, final)
            _judge(figures, config)
            await self.healthy()
        finally:
            for client in everyone:
                client.done = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return figures


async def _all_set(events: list[asyncio.Event], within: float, what: str) -> None:
    try:
        async with asyncio.timeout(within):
            for event in events:
                await event.wait()
    except TimeoutError:
        raise RuntimeError(f"{what} took more than {within:.0f} s") from None


async def _until_async(done: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while not await done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _first_ack(clients: list[Client], node: str, since: float) -> float | None:
    return min(
        (t for c in clients for t, n in c.acked_at if n == node and t >= since), default=None
    )


def _acks_through(clients: list[Client], node: str, since: float) -> int:
    return sum(1 for c in clients for t, n in c.acked_at if n == node and t >= since)


def _stall(clients: list[Client], node: str, start: float, end: float) -> float:
    """The longest time in [start, end] in which no write through `node` was acked."""
    times = sorted(t for c in clients for t, n in c.acked_at if n == node and start <= t <= end)
    marks = [start, *times, end]
    return max(later - earlier for earlier, later in itertools.pairwise(marks))


async def _until(done: Callable[[], bool], within: float, what: str | None) -> bool:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            if what is not None:
                raise RuntimeError(f"{what} took more than {within:.0f} s")
            return False
        await asyncio.sleep(0.05)
    return True


def _wanted(
    clients: list[Client], log: list[tuple[int, str, int, str, str | None]], upto: int
) -> dict[str, set[tuple[str, int]]]:
    """For each client, the events of its chats in the log up to position `upto`."""
    by_chat: dict[str, set[tuple[str, int]]] = {}
    for pos, chat, seq, _kind, _text in log:
        if pos <= upto:
            by_chat.setdefault(chat, set()).add((chat, seq))
    return {c.name: set().union(*(by_chat.get(chat, set()) for chat in c.chats)) for c in clients}


async def _converge(
    clients: list[Client], wanted: dict[str, set[tuple[str, int]]], limit: float
) -> float | None:
    """Seconds until every client has received every event it is to have, or None."""
    started = time.monotonic()
    while True:
        if all(wanted[c.name] <= c.events.keys() for c in clients):
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            return None
        await asyncio.sleep(0.02)


def _seen(clients: list[Client], start: float, end: float, bound: float) -> Seen:
    seen = Seen()
    errors: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    connects: Counter[str] = Counter()
    for client in clients:
        for sight in client.sights:
            # A wait counts if any of it fell in the window.
            if sight.at > end or sight.at + sight.wait < start:
                continue
            if sight.what == "error":
                errors[sight.detail] += 1
            elif sight.what == "close":
                closes[sight.detail] += 1
            elif sight.what == "connect":
                connects[sight.detail] += 1
            elif sight.what == "wait":
                seen.answered += 1
            if sight.wait:
                key = sight.detail if sight.what == "wait" else f"{sight.what} {sight.detail}"
                key = f"{key} on {sight.node}"
                seen.longest[key] = round(max(seen.longest.get(key, 0.0), sight.wait), 3)
            if sight.wait > seen.longest_wait_s:
                seen.longest_wait_s = sight.wait
                seen.longest_wait_on = f"{sight.what} {sight.detail} on node {sight.node}"
            if sight.wait > bound and sight.what in ("wait", "close"):
                seen.silent += 1
    seen.errors, seen.closes, seen.failed_connects = dict(errors), dict(closes), dict(connects)
    return seen


def _check(
    figures: Figures,
    clients: list[Client],
    log: list[tuple[int, str, int, str, str | None]],
    wanted: dict[str, set[tuple[str, int]]],
) -> None:
    at: dict[tuple[str, int], str | None] = {}
    seqs: dict[str, list[int]] = {}
    texts: Counter[str] = Counter()
    for _pos, chat, seq, kind, text in log:
        at[(chat, seq)] = text
        seqs.setdefault(chat, []).append(seq)
        if kind == "message" and text is not None:
            texts[text] += 1
    figures.events = len(log)
    figures.duplicated = sum(n - 1 for n in texts.values() if n > 1)
    for chat, found in seqs.items():
        ordered = sorted(found)
        if ordered != list(range(1, len(ordered) + 1)):
            figures.seq_gaps += 1
            figures.notes.append(f"{chat}: seqs {ordered[:10]}...")
    for client in clients:
        figures.acked += len(client.acks)
        figures.resent += client.resent
        figures.duplicated += len(client.ack_conflicts)
        figures.notes.extend(client.ack_conflicts[:3])
        for nonce, (chat, seq) in client.acks.items():
            sent_chat, text = client.sent[nonce]
            if chat != sent_chat or at.get((chat, seq), "\0") != text:
                figures.lost += 1
                figures.notes.append(
                    f"{client.name}: {nonce} acked as {chat}/{seq}, not in the log"
                )
        missing = wanted[client.name] - client.events.keys()
        figures.undelivered += len(missing)
        if missing:
            figures.notes.append(f"{client.name} never received {sorted(missing)[:5]}")
        figures.doubled += client.doubled
        figures.seq_gaps += len(client.out_of_order)
        figures.notes.extend(f"{client.name}: {gap}" for gap in client.out_of_order[:3])
        for code, n in client.unsolicited.items():
            figures.notes.append(f"{client.name}: {n} unasked error(s) {code}")


def _judge(figures: Figures, config: Config) -> None:
    found = figures.findings
    if figures.lost or figures.undelivered:
        found.append(f"{figures.lost} acked events lost, {figures.undelivered} never delivered")
    if figures.duplicated or figures.doubled:
        found.append(f"{figures.duplicated} duplicated, {figures.doubled} delivered twice")
    if figures.seq_gaps:
        found.append(f"{figures.seq_gaps} seq gaps")
    if figures.heal_s is None:
        found.append(f"clients did not have every event within {CONVERGE_LIMIT:.0f} s of the heal")
    elif figures.heal_s > config.heal_goal:
        found.append(f"every event reached every client {figures.heal_s:.1f} s after the heal")
    if figures.final_s is None:
        found.append("clients did not have every event at the end")
    if figures.other_stall_s > config.silence_bound:
        found.append(
            f"node b acked no write for {figures.other_stall_s:.1f} s while node a was cut off"
        )
    if figures.hubs_up_s is None or figures.redis_back_s is None:
        found.append(
            f"Redis did not carry events between the nodes again within {CONVERGE_LIMIT:.0f} s"
            " of the heal (the nodes kept taking them from the log)"
        )
    if figures.a_back_s is None:
        found.append(
            f"node a acked no write within {CONVERGE_LIMIT:.0f} s of the heal, its clients"
            " back on it"
        )
    elif figures.a_back_s > config.heal_goal:
        found.append(
            f"node a acked a write only {figures.a_back_s:.1f} s after the heal, its clients"
            " back on it"
        )
    if figures.held_lock is False:
        found.append(
            "node a never held the log's lock, so the cut could not find it inside a write"
        )
    if figures.seen.silent and not figures.silence_expected:
        found.append(
            f"{figures.seen.silent} waits for an answer over {config.silence_bound:.0f} s"
            f" (longest {figures.seen.longest_wait_s:.1f} s, {figures.seen.longest_wait_on})"
        )


# ---- output ------------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items())) or "none"


def describe(f: Figures, config: Config) -> str:
    heal = "—" if f.heal_s is None else f"{f.heal_s:.2f} s"
    seen = f.seen
    lines = [
        f"{f.scenario}: {f.title}, {f.cut_s:.1f} s (the scenario: {f.seconds:.0f} s)",
        f"  {f.clients} clients in {f.chats} chats; {f.acked} acked writes ({f.resent} resent"
        f" with their nonce), {f.events} events in the log",
        f"  acked events lost {f.lost}, duplicated {f.duplicated}, seq gaps {f.seq_gaps};"
        f" never delivered {f.undelivered}, delivered twice {f.doubled}",
        f"  heal → every client has every event: {heal} (goal ≤ {config.heal_goal:.0f} s);"
        f" node b's longest time without an ack during the cut {f.other_stall_s:.2f} s",
        f"  clients saw, from the cut until then: errors {_counts(seen.errors)}; closes"
        f" {_counts(seen.closes)}; failed connections {_counts(seen.failed_connects)}",
        f"  longest wait for an answer {seen.longest_wait_s:.2f} s ({seen.longest_wait_on or '-'});"
        f" waits over {config.silence_bound:.0f} s: {seen.silent}"
        + (
            " (the clients' own path was cut: silence is all they can hear)"
            if f.silence_expected
            else ""
        ),
    ]
    waits = ", ".join(f"{what} {wait:.2f} s" for what, wait in sorted(seen.longest.items()))
    lines.append(f"  longest wait by request: {waits or '-'}")
    hubs = "—" if f.hubs_up_s is None else f"{f.hubs_up_s:.2f} s"
    back = "—" if f.redis_back_s is None else f"{f.redis_back_s:.2f} s"
    a_back = "—" if f.a_back_s is None else f"{f.a_back_s:.2f} s"
    lines.append(
        f"  after the heal: every hub subscribed to Redis after {hubs}; the last event a node"
        f" had to take from the log instead came {back} after the heal; node a acked"
        f" {f.home_acks} writes of its clients, back on it, the first {a_back} after the heal"
    )
    if f.impairment:
        lines.append(f"  the relay: {_counts(f.impairment)} packets")
    if f.held_lock:
        lines.append("  node a held the log's write lock when it was cut")
    for note in f.notes[:8]:
        lines.append(f"  note: {note}")
    lines.append("  verdict: " + ("ok" if f.ok else "FAILED: " + "; ".join(f.findings)))
    return "\n".join(lines)


def table(figures: list[Figures]) -> str:
    header = (
        f"{'scenario':<18} {'cut s':>5} {'acked':>6} {'lost':>4} {'dup':>4} {'gaps':>4}"
        f" {'heal s':>6} {'longest wait':>12}  {'errors / closes during the cut':<34} verdict"
    )
    rows = [header]
    for f in figures:
        heal = "—" if f.heal_s is None else f"{f.heal_s:.2f}"
        saw = (
            "; ".join(
                part
                for part in (
                    _counts(f.seen.errors) if f.seen.errors else "",
                    ("closes " + _counts(f.seen.closes)) if f.seen.closes else "",
                )
                if part
            )
            or "none"
        )
        rows.append(
            f"{f.scenario:<18} {f.cut_s:>5.1f} {f.acked:>6} {f.lost + f.undelivered:>4}"
            f" {f.duplicated + f.doubled:>4} {f.seq_gaps:>4} {heal:>6}"
            f" {f.seen.longest_wait_s:>10.2f} s  {saw:<34} {'ok' if f.ok else 'FAILED'}"
        )
    return "\n".join(rows)


# ---- the run -----------------------------------------------------------------------------------


class Teardown:
    """Undoes what was made, once, on every way out: `finally`, atexit and signals."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], None]] = []
        self.done = False

    def add(self, step: Callable[[], None]) -> None:
        self.steps.append(step)

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        for step in reversed(self.steps):
            try:
                step()
            except Exception as exc:  # one failed step must not leave the rest undone
                with contextlib.suppress(OSError):  # nor a closed pipe where this is written
                    print(f"cleanup: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so `finally` runs."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(config: Config, workdir: Path | None) -> list[Figures]:
    problems = preflight()
    if problems:
        raise LabUnavailable("; ".join(problems))
    teardown = Teardown()
    atexit.register(teardown)
    try:
        root = workdir or Path(tempfile.mkdtemp(prefix="chatd-partitions-"))
        root.mkdir(parents=True, exist_ok=True)
        if workdir is None:
            teardown.add(lambda: shutil.rmtree(root, ignore_errors=True))
        lab = Lab(HOSTS)
        teardown.add(lab.destroy)
        say(
            f"network: namespaces {lab.prefix}{{{','.join(('sw', *HOSTS))}}},"
            f" subnet {SUBNET}.0.0/16"
        )
        lab.build()
        # From here on this process is the clients' host.
        enter_namespace(lab.netns_path("cl"))
        pg = LabPostgres(lab, "pg")
        teardown.add(pg.remove)
        pg.start()
        redis = LabRedis(lab, "redis", root)
        teardown.add(redis.remove)
        redis.start()
        wait_for_port(lab.addr("redis"), REDIS_PORT)
        say(
            f"PostgreSQL at {lab.addr('pg')}:{PG_PORT} (data in {pg.data}), Redis at"
            f" {lab.addr('redis')}:{REDIS_PORT}"
        )
        secret = secrets.token_urlsafe(32)
        nodes: dict[str, LabNode] = {}
        for name in ("a", "b"):
            node = LabNode(
                db=root / f"{name}.db",
                secret=secret,
                port=NODE_PORT,
                name=f"node {name}",
                namespace=lab.ns(name),
                address=lab.addr(name),
                extra_args=(
                    "--host", lab.addr(name), "--store", pg.dsn, "--hub", redis.url,
                    "--files", str(root / "files"), "--log-level", "info",
                    "--metrics-allow", f"{SUBNET}.0.0/16",
                ),
            )  # fmt: skip
            nodes[name] = node
            teardown.add(node.stop)
            node.start(timeout=60)
        # First on the way out: the nodes stop sooner with their network whole.
        teardown.add(lab.clear_faults)
        say(f"nodes: a at {nodes['a'].http}, b at {nodes['b'].http}; logs in {root}")
        if netem_available():
            say("delay and loss: the TUN relay (chatd.proof.impair), per packet")
        else:
            say(
                "delay and loss: this kernel has no `tc netem` (sch_netem); the TUN relay"
                " (chatd.proof.impair) delays and drops per packet instead"
            )
        return asyncio.run(_scenarios(Cluster(lab, config, secret, pg, redis, nodes)))
    finally:
        teardown()
        atexit.unregister(teardown)


async def _scenarios(cluster: Cluster) -> list[Figures]:
    config = cluster.config
    results: list[Figures] = []
    try:
        for number, name in enumerate(config.scenarios, start=1):
            fault = FAULTS[name]
            say(f"\n-- {name}: {fault.title}")
            started = time.monotonic()
            figures = await cluster.scenario(fault, number)
            figures.seconds = time.monotonic() - started
            say(describe(figures, config))
            results.append(figures)
    finally:
        await cluster.close()
    return results


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0: {text}")
        return value

    return parse


def _scenario_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAULTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or text!r}; known: {', '.join(SCENARIOS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.partitions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenarios", type=_scenario_list, default=SCENARIOS)
    parser.add_argument("--chats", type=_positive(int), default=12)
    parser.add_argument("--shops", type=_positive(int), default=3)
    parser.add_argument("--interval", type=_positive(float), default=0.25)
    parser.add_argument("--warmup", type=_positive(float), default=3.0)
    parser.add_argument("--cut", type=_positive(float), default=10.0)
    parser.add_argument("--settle", type=_positive(float), default=3.0)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--silence-bound", type=_positive(float), default=5.0)
    parser.add_argument("--heal-goal", type=_positive(float), default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the nodes' logs here")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if not 0.0 <= args.loss < 1.0:
        parser.error("--loss is a share of packets, from 0 to below 1")
    config = Config(
        scenarios=args.scenarios,
        chats=args.chats,
        shops=min(args.shops, args.chats),
        interval=args.interval,
        warmup=args.warmup,
        cut=args.cut,
        settle=args.settle,
        delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
        loss=args.loss,
        silence_bound=args.silence_bound,
        heal_goal=args.heal_goal,
        seed=args.seed,
    )
    missing = missing_extra("postgres") or missing_extra("redis")
    if missing is not None:
        say(f"cannot run: {missing}")
        return 2
    import asyncpg

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    started = time.monotonic()
    try:
        with signals_unwind():
            figures = run(config, args.workdir)
    except LabUnavailable as exc:
        say(f"cannot make the network namespaces this program needs: {exc}")
        say("nothing was run: the scenarios need hosts of their own")
        return 2
    except KeyboardInterrupt:
        say("interrupted: every namespace and process it made is gone")
        return 130
    except (OSError, RuntimeError, TimeoutError, ConnectionError, asyncpg.PostgresError) as exc:
        say(f"failed: {type(exc).__name__}: {exc}")
        return 2
    say(f"\n{table(figures)}")
    ok = all(f.ok for f in figures)
    say(
        f"\n{len(figures)} scenarios in {time.monotonic() - started:.0f} s: "
        + ("all passed" if ok else "FAILED")
    )
    if args.json is not None:
        report = {
            "program": "chatd.proof.partitions",
            "config": asdict(config),
            "scenarios": [{**asdict(f), "ok": f.ok} for f in figures],
            "ok": ok,
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
