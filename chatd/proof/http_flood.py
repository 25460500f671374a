"""An HTTP flood on one server, bounded in time: does it keep answering, does anything pile
up, and does a chat beside it keep working?

    python -m chatd.proof.http_flood [--clients 64] [--seconds 30] [--rounds 1]
        [--idle 1000] [--slow 50] [--oversize 4] [--oversize-every 0.1] [--settle 15]
        [--header-timeout 10] [--rate-limits] [--json FILE] [--workdir DIR]

`chatd serve` starts on a new SQLite database (HTTP rate limits lifted unless
`--rate-limits`: the flood is to reach the handlers, not only the limiter), and then for
`--seconds`:

- `--clients` clients on kept-alive connections, half buyers each with a chat of their own
  and half operators of one shop, send requests one after the other without a pause: chat
  lists, histories, the events feed, claims, balances, templates, messages sent (JSON, with
  an `Idempotency-Key`), small uploads and their downloads, `/healthz`, and wrong ones (an
  unknown route, a wrong method, a bad token, a body that is no JSON);
- `--oversize` clients send bodies past every limit, each on a new connection, one every
  `--oversize-every` seconds: an order declaring 100 MB, an upload declaring 6 MiB, and a
  chunked order that never ends, each pushing up to 1 MiB (or 4 MiB chunked) as fast as it
  goes until the answer comes (413, while the client still sends), then giving up;
- `--slow` connections send a request's headers a line every 2 s, or a body a byte every
  0.5 s, and open again once the server closes them;
- `--idle` connections are opened and left silent (or make one request and keep the
  connection), and opened again once closed;
- a bystander buyer and operator talk over WebSockets, a message every 100 ms, through a
  quiet second before the flood, the flood, and a quiet second after.

With `--rounds`, the flood comes again after `--settle` seconds, so many times: memory
that stays after each round, rather than after the first only, would be a leak.

It prints requests a second, the answers by status, latency (p50, p99, max) of the flood's
requests, what became of the oversize and slow ones, the server's RSS and open files
before, at their peak and `--settle` seconds after the flood, and the bystander's p50 and
p99 (a message from its `send` to its arrival at the other side) in each period.

Verdicts: no 5xx; every flood request answered (no connection lost but those the server
closed on purpose); every oversize body refused with 413; every slow connection closed by
the server within its deadline (the server's `--header-timeout`, 10 s unless
`--header-timeout` says otherwise, and a few seconds of slack);
every bystander message delivered; open files back to within 16 of where they started.
The exit status is 1 when a verdict fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatd.client.tokens import mint
from chatd.launcher import Server
from chatd.proof.wire import Frame, wire

LIFTED_WS = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")
LIFTED_HTTP = ("--http-rate", "1e6", "--http-burst", "1e6")
SHOP = "shop-flood"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 2000
MIB = 1024 * 1024


def say(*parts: object) -> None:
    print(*parts, flush=True)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- a small HTTP/1.1 client on asyncio streams ----------------------------------------------


class Closed(Exception):
    """The server closed the connection."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Http:
    """One kept-alive connection; opened again after the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = 0

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.opened += 1
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nHost: flood\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Length: {len(body)}\r\n"
        for attempt in (1, 2):
            try:
                reader, writer = await self._connect()
                writer.write(head.encode() + b"\r\n" + body)
                await writer.drain()
                answer = await read_answer(reader)
            except (Closed, OSError, asyncio.IncompleteReadError) as exc:
                self.close()
                # A kept-alive connection the server let go between two requests: once more
                # on a new one. A second loss is a real one.
                if attempt == 2:
                    raise Closed(str(exc)) from exc
                continue
            if answer.headers.get("connection", "").lower() == "close":
                self.close()
            return answer
        raise AssertionError("unreachable")


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise Closed("closed before an answer") from exc
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
    return Answer(status, headers, body)


def multipart_file(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = "floodboundary" + secrets.token_hex(4)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# ---- the figures -----------------------------------------------------------------------------


@dataclass
class Flood:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)


@dataclass
class Abuse:
    oversize: Counter[str] = field(default_factory=Counter)
    oversize_bytes: int = 0
    slow_closed: int = 0
    slow_held: list[float] = field(default_factory=list)
    slow_answers: Counter[str] = field(default_factory=Counter)
    idle_opened: int = 0
    idle_closed: int = 0


@dataclass
class Bystander:
    sent: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Watch:
    rss: list[int] = field(default_factory=list)
    files: list[int] = field(default_factory=list)


# ---- the load --------------------------------------------------------------------------------


class Run:
    def __init__(self, server: Server, secret: str, args: argparse.Namespace) -> None:
        self.server = server
        self.secret = secret
        self.args = args
        self.flood = Flood()
        self.abuse = Abuse()
        self.bystander = Bystander()
        self.until = 0.0
        self.round = 0
        self.phase = "quiet before"

    def token(self, role: str, sub: str, shop: str | None = None) -> str:
        return mint(self.secret, role=role, sub=sub, name=sub, seller=shop)  # type: ignore[arg-type]

    async def chats_of_buyers(self, count: int) -> list[tuple[str, str]]:
        """(token, chat) of `count` buyers, each with a chat with the shop."""

        async def one(n: int) -> tuple[str, str]:
            token = self.token("buyer", f"flood-buyer-{n}")
            async with wire(self.server.url, token) as client:
                opened = await client.request({"type": "open", "seller": SHOP})
            if opened.get("type") != "ack":
                raise RuntimeError(f"open refused: {opened}")
            return token, str(opened["chat"])

        found: list[tuple[str, str]] = []
        for start in range(0, count, 32):
            found += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 32))))
        return found

    # -- the flood's clients --

    async def client(self, n: int, token: str, chat: str, operator: bool) -> None:
        http = Http(self.server.port)
        auth = {"Authorization": f"Bearer {token}"}
        cursor = ""
        uploaded: list[str] = []
        steps = itertools.count()
        try:
            while time.monotonic() < self.until:
                step = next(steps)
                kind, method, path, headers, body = self._next(
                    step, n, operator, auth, chat, cursor, uploaded
                )
                started = time.perf_counter()
                try:
                    answer = await http.request(method, path, headers, body)
                except Closed as exc:
                    self.flood.lost.append(f"{kind}: {exc}")
                    continue
                took = time.perf_counter() - started
                self.flood.latencies.append(took)
                self.flood.by_kind.setdefault(kind, []).append(took)
                self.flood.requests += 1
                self.flood.statuses[answer.status] += 1
                self.flood.kinds[f"{kind} {answer.status}"] += 1
                if kind == "events" and answer.status == 200:
                    cursor = json.loads(answer.body)["cursor"]
                if kind == "upload" and answer.status == 201:
                    uploaded.append(json.loads(answer.body)["id"])
                    del uploaded[:-4]
        finally:
            http.close()

    def _next(
        self,
        step: int,
        n: int,
        operator: bool,
        auth: dict[str, str],
        chat: str,
        cursor: str,
        uploaded: list[str],
    ) -> tuple[str, str, str, dict[str, str], bytes]:
        json_type = {"Content-Type": "application/json"}
        message = json.dumps({"text": f"Сообщение {n}-{step}"}).encode()
        plan: list[tuple[str, str, str, dict[str, str], bytes]] = [
            ("chats", "GET", "/api/v1/chats?limit=20", auth, b""),
            ("history", "GET", f"/api/v1/chats/{chat}/history?limit=50", auth, b""),
            ("events", "GET", f"/api/v1/events?limit=100&cursor={cursor}", auth, b""),
            (
                "send",
                "POST",
                f"/api/v1/chats/{chat}/messages",
                {**auth, **json_type, "Idempotency-Key": f"k{n}-{self.round}-{step}"},
                message,
            ),
            ("healthz", "GET", "/healthz", {}, b""),
            ("claims" if operator else "balance", "GET",
             "/api/v1/claims" if operator else "/api/v1/balance", auth, b""),
            ("templates" if operator else "history", "GET",
             "/api/v1/templates" if operator else f"/api/v1/chats/{chat}/history", auth, b""),
            ("unknown route", "GET", "/api/v1/nothing-here", auth, b""),
            ("wrong method", "DELETE", "/api/v1/chats", auth, b""),
            ("bad token", "GET", "/api/v1/chats", {"Authorization": "Bearer not-a-token"}, b""),
            ("not json", "POST", f"/api/v1/chats/{chat}/messages", {**auth, **json_type}, b"{"),
        ]  # fmt: skip
        if step % 12 == 11:
            body, content_type = multipart_file(JPEG, f"photo-{n}.jpg")
            return "upload", "POST", "/api/v1/files", {**auth, "Content-Type": content_type}, body
        if step % 12 == 5 and uploaded:
            return "download", "GET", f"/api/v1/files/{uploaded[-1]}", auth, b""
        return plan[step % len(plan)]

    # -- bodies past every limit --

    async def oversize(self, n: int) -> None:
        system = {"Authorization": f"Bearer {self.token('system', 'marketplace')}"}
        buyer = {"Authorization": f"Bearer {self.token('buyer', f'flood-big-{n}')}"}
        kinds: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("order declaring 100 MB", lambda: self._declared(system, "/api/v1/orders", 100 * MIB)),
            ("upload declaring 6 MiB", lambda: self._declared(buyer, "/api/v1/files", 6 * MIB)),
            ("chunked order without end", lambda: self._chunked(system, "/api/v1/orders")),
        ]
        for step in itertools.count():
            if time.monotonic() >= self.until:
                return
            name, attempt = kinds[(n + step) % len(kinds)]
            began = time.monotonic()
            try:
                outcome = await asyncio.wait_for(attempt(), 30)
            except (TimeoutError, ConnectionError, OSError) as exc:
                outcome = f"client {type(exc).__name__}"
            self.abuse.oversize[f"{name}: {outcome}"] += 1
            # Bounded: `--oversize-every` seconds between two attempts of a client. As fast
            # as loopback goes, four clients push ~200 MB/s, which measures the load
            # generator and the discarding of refused bytes more than anything else.
            await asyncio.sleep(max(0.0, self.args.oversize_every - (time.monotonic() - began)))

    async def _declared(self, headers: dict[str, str], path: str, size: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            head = f"POST {path} HTTP/1.1\r\nHost: flood\r\nContent-Length: {size}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += "Content-Type: application/json\r\n\r\n"
            writer.write(head.encode())
            # Up to 1 MiB of the body, as fast as it goes, then the answer.
            chunk = b"x" * 65536
            reading = asyncio.create_task(read_answer(reader))
            for _ in range(16):
                if reading.done():
                    break
                writer.write(chunk)
                await writer.drain()
                self.abuse.oversize_bytes += len(chunk)
            answer = await asyncio.wait_for(reading, 10)
            return f"{answer.status}"
        except Closed:
            return "closed without an answer"
        finally:
            writer.close()

    async def _chunked(self, headers: dict[str, str], path: str) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            head = f"POST {path} HTTP/1.1\r\nHost: flood\r\nTransfer-Encoding: chunked\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += "Content-Type: application/json\r\n\r\n"
            writer.write(head.encode())
            reading = asyncio.create_task(read_answer(reader))
            chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
            for _ in range(64):
                if reading.done():
                    break
                writer.write(chunk)
                await writer.drain()
                self.abuse.oversize_bytes += len(chunk)
            answer = await asyncio.wait_for(reading, 10)
            return f"{answer.status}"
        except Closed:
            return "closed without an answer"
        finally:
            writer.close()

    # -- slow requests --

    async def slow(self, n: int) -> None:
        system = f"Bearer {self.token('system', 'marketplace')}"
        while time.monotonic() < self.until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            except OSError as exc:
                self.abuse.slow_answers[f"could not connect: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)
                continue
            started = time.monotonic()
            if n % 2 == 0:
                # Headers a line at a time, every 2 s.
                lines = [b"POST /api/v1/orders HTTP/1.1\r\n", b"Host: flood\r\n"]
                lines += [f"X-Slow-{i}: {'x' * 20}\r\n".encode() for i in range(1000)]
                pace, what = 2.0, "slow headers"
            else:
                # A body the route reads (under its 64 KiB), or one it refuses at once by its
                # declared length (and then discards as it trickles in).
                size, what = (60000, "slow body") if n % 4 == 1 else (100000, "slow body, 413")
                head = (
                    f"POST /api/v1/orders HTTP/1.1\r\nHost: flood\r\nAuthorization: {system}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n{{"
                ).encode()
                lines = [head] + [b" "] * size
                pace = 0.5
            reading = asyncio.create_task(reader.read())
            try:
                for line in lines:
                    if (
                        reading.done()
                        or time.monotonic() >= self.until + self.args.header_timeout + 5
                    ):
                        break
                    writer.write(line)
                    await writer.drain()
                    await asyncio.sleep(pace)
            except (ConnectionError, OSError):
                pass
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                await asyncio.wait_for(asyncio.shield(reading), 1)
            held = time.monotonic() - started
            if reading.done() and not reading.cancelled():
                # Closed by the server: with a FIN, or with a reset when bytes of ours were
                # still unread on its side.
                self.abuse.slow_closed += 1
                self.abuse.slow_held.append(held)
                if reading.exception() is not None:
                    status = "reset"
                else:
                    answer = reading.result()
                    status = answer.split(b" ", 2)[1].decode() if answer else "no answer"
                self.abuse.slow_answers[f"{what}: closed, {status}"] += 1
            else:
                self.abuse.slow_answers[f"{what}: still open at the end"] += 1
            reading.cancel()
            writer.close()

    # -- idle connections --

    async def idle(self, n: int) -> None:
        while time.monotonic() < self.until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.abuse.idle_opened += 1
            if n % 2 == 1:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n")
                with contextlib.suppress(Exception):
                    await read_answer(reader)
            with contextlib.suppress(Exception):
                left = self.until - time.monotonic()
                if await asyncio.wait_for(reader.read(), max(left, 0.01)) == b"":
                    self.abuse.idle_closed += 1
            writer.close()

    # -- the bystander --

    async def talk(self, stop: asyncio.Event) -> None:
        buyer_token = self.token("buyer", "bystander")
        operator_token = self.token("seller", "bystander-op", SHOP)
        arrived: dict[str, float] = {}

        def heard(frame: Frame, at: float) -> None:
            if frame.get("type") == "event" and frame.get("kind") == "message":
                arrived[str(frame.get("text"))] = time.perf_counter()

        async with (
            wire(self.server.url, buyer_token, on_push=heard) as buyer,
            wire(self.server.url, operator_token) as operator,
        ):
            opened = await buyer.request({"type": "open", "seller": SHOP})
            chat = opened["chat"]
            sent: list[tuple[str, str, float]] = []
            n = 0
            while not stop.is_set():
                n += 1
                text = f"Ответ продавца {n}"
                phase = self.phase
                started = time.perf_counter()
                sent.append((phase, text, started))
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await operator.request({"type": "send", "chat": chat, "text": text}, within=30)
                await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
            await asyncio.sleep(2)
        for phase, text, at in sent:
            self.bystander.sent[phase] = self.bystander.sent.get(phase, 0) + 1
            if text in arrived:
                self.bystander.delivered[phase] = self.bystander.delivered.get(phase, 0) + 1
                self.bystander.latency_ms.setdefault(phase, []).append((arrived[text] - at) * 1000)


async def watch(server: Server, stop: asyncio.Event, into: Watch) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            into.rss.append(server.rss())
            into.files.append(open_files(server.pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    extra = (
        *LIFTED_WS,
        *(() if args.rate_limits else LIFTED_HTTP),
        "--header-timeout",
        f"{args.header_timeout:g}",
    )
    server = Server(db=work / "chatd.db", secret=secret, extra_args=extra)
    await asyncio.to_thread(server.start, 60.0)
    try:
        run = Run(server, secret, args)
        buyers = await run.chats_of_buyers(max(1, args.clients // 2))
        stop_talk, stop_watch = asyncio.Event(), asyncio.Event()
        watched = Watch()
        watcher = asyncio.create_task(watch(server, stop_watch, watched))
        await asyncio.sleep(0.5)
        before = {"rss": server.rss(), "files": open_files(server.pid)}
        talker = asyncio.create_task(run.talk(stop_talk))
        await asyncio.sleep(args.quiet)
        flooded = 0.0
        rounds: list[dict[str, float]] = []
        for round_ in range(args.rounds):
            if round_:
                # Between two rounds, as after the last: the connections the flood left
                # are let go, and what stays of the memory shows.
                await asyncio.sleep(args.settle)
                rounds.append({"rss_mib": server.rss() / MIB, "files": open_files(server.pid)})
            run.phase = "flood"
            run.round = round_
            run.until = time.monotonic() + args.seconds
            started = time.monotonic()
            tasks: list[Awaitable[None]] = []
            for n in range(args.clients):
                token, chat = buyers[(n // 2) % len(buyers)]
                if n % 2 == 1:
                    token = run.token("seller", f"flood-op-{n}", SHOP)
                tasks.append(run.client(n, token, chat, operator=n % 2 == 1))
            tasks += [run.oversize(n) for n in range(args.oversize)]
            tasks += [run.slow(n) for n in range(args.slow)]
            tasks += [run.idle(n) for n in range(args.idle)]
            flood = asyncio.gather(*tasks)
            await asyncio.sleep(args.seconds)
            run.phase = "quiet after"
            flooded += time.monotonic() - started
            await flood
        await asyncio.sleep(args.quiet)
        stop_talk.set()
        await talker
        peak = {"rss": max(watched.rss, default=0), "files": max(watched.files, default=0)}
        await asyncio.sleep(args.settle)
        stop_watch.set()
        await watcher
        after = {"rss": server.rss(), "files": open_files(server.pid)}
        rounds.append({"rss_mib": after["rss"] / MIB, "files": after["files"]})
        alive = server.process is not None and server.process.poll() is None
    finally:
        await asyncio.to_thread(server.stop)
    result = report(run, flooded, before, peak, after, alive)
    result["after_each_round"] = [
        {"rss_mib": round(r["rss_mib"], 1), "files": int(r["files"])} for r in rounds
    ]
    return result


def report(
    run: Run,
    seconds: float,
    before: dict[str, int],
    peak: dict[str, int],
    after: dict[str, int],
    alive: bool,
) -> dict[str, Any]:
    flood, abuse, talk = run.flood, run.abuse, run.bystander
    ms = [s * 1000 for s in flood.latencies]
    bystander = {
        phase: {
            "sent": talk.sent.get(phase, 0),
            "delivered": talk.delivered.get(phase, 0),
            "p50_ms": round(percentile(talk.latency_ms.get(phase, []), 0.5), 1),
            "p99_ms": round(percentile(talk.latency_ms.get(phase, []), 0.99), 1),
        }
        for phase in ("quiet before", "flood", "quiet after")
    }
    verdicts = {
        "the server is alive": alive,
        "no 5xx": not any(status >= 500 for status in flood.statuses),
        "every flood request answered": not flood.lost,
        "every oversize body refused with 413": all(
            outcome.endswith(": 413") for outcome in abuse.oversize
        )
        and bool(abuse.oversize) == (run.args.oversize > 0),
        "every slow connection closed in time": all(
            "still open" not in k for k in abuse.slow_answers
        )
        and all(held <= run.args.header_timeout + 6 for held in abuse.slow_held),
        "every bystander message delivered": all(
            row["sent"] == row["delivered"] for row in bystander.values()
        ),
        "open files back to where they were (±16)": after["files"] <= before["files"] + 16,
    }
    return {
        "seconds": round(seconds, 2),
        "clients": run.args.clients,
        "requests": flood.requests,
        "requests_per_second": round(flood.requests / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(flood.statuses.items())},
        "kinds": dict(sorted(flood.kinds.items())),
        "latency_ms": {
            "p50": round(statistics.median(ms), 2) if ms else 0.0,
            "p99": round(percentile(ms, 0.99), 2),
            "max": round(max(ms, default=0.0), 2),
        },
        "p50_ms_by_kind": {
            kind: round(percentile([t * 1000 for t in took], 0.5), 1)
            for kind, took in sorted(flood.by_kind.items())
        },
        "p99_ms_by_kind": {
            kind: round(percentile([t * 1000 for t in took], 0.99), 1)
            for kind, took in sorted(flood.by_kind.items())
        },
        "lost": flood.lost[:20],
        "oversize": dict(sorted(abuse.oversize.items())),
        "oversize_mib_sent": round(abuse.oversize_bytes / MIB, 1),
        "slow": {
            "connections": run.args.slow,
            "closed": abuse.slow_closed,
            "held_s": {
                "p50": round(percentile(abuse.slow_held, 0.5), 1),
                "max": round(max(abuse.slow_held, default=0.0), 1),
            },
            "answers": dict(sorted(abuse.slow_answers.items())),
        },
        "idle": {
            "connections": run.args.idle,
            "opened": abuse.idle_opened,
            "closed_by_server": abuse.idle_closed,
        },
        "server": {
            "rss_mib": {k: round(v[0] / MIB, 1) for k, v in _rows(before, peak, after).items()},
            "open_files": {k: v[1] for k, v in _rows(before, peak, after).items()},
        },
        "bystander": bystander,
        "verdicts": verdicts,
        "ok": all(verdicts.values()),
    }


def _rows(before: dict[str, int], peak: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    return {
        "before": (before["rss"], before["files"]),
        "peak": (peak["rss"], peak["files"]),
        "after": (after["rss"], after["files"]),
    }


def print_report(r: dict[str, Any]) -> None:
    say(
        f"flood: {r['clients']} clients for {r['seconds']} s: {r['requests']} requests,"
        f" {r['requests_per_second']}/s; latency p50 {r['latency_ms']['p50']} ms,"
        f" p99 {r['latency_ms']['p99']} ms, max {r['latency_ms']['max']} ms"
    )
    say(f"  statuses: {r['statuses']}")
    say(f"  by kind: {r['kinds']}")
    say(f"  p50 ms by kind: {r['p50_ms_by_kind']}")
    say(f"  p99 ms by kind: {r['p99_ms_by_kind']}")
    if r["lost"]:
        say(f"  lost: {r['lost']}")
    say(f"  oversize bodies ({r['oversize_mib_sent']} MiB sent): {r['oversize']}")
    slow = r["slow"]
    say(
        f"  slow connections ({slow['connections']} at a time): {slow['closed']} closed by the"
        f" server, held p50 {slow['held_s']['p50']} s, max {slow['held_s']['max']} s;"
        f" {slow['answers']}"
    )
    idle = r["idle"]
    say(
        f"  idle connections ({idle['connections']} at a time): {idle['opened']} opened,"
        f" {idle['closed_by_server']} closed by the server"
    )
    server = r["server"]
    say(
        "  server RSS MiB before / peak / after: "
        + " / ".join(str(server["rss_mib"][k]) for k in ("before", "peak", "after"))
        + "; open files: "
        + " / ".join(str(server["open_files"][k]) for k in ("before", "peak", "after"))
    )
    if len(r["after_each_round"]) > 1:
        say(f"  server after each round: {r['after_each_round']}")
    for phase, row in r["bystander"].items():
        say(
            f"  bystander chat, {phase}: {row['delivered']}/{row['sent']} delivered,"
            f" p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
        )
    say("verdicts:")
    for name, ok in r["verdicts"].items():
        say(f"  {'ok  ' if ok else 'FAIL'} {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.http_flood",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of one round")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of flood, `--settle` seconds apart"
    )
    parser.add_argument("--idle", type=int, default=1000, help="idle connections at a time")
    parser.add_argument("--slow", type=int, default=50, help="slow connections at a time")
    parser.add_argument("--oversize", type=int, default=4, help="clients of oversize bodies")
    parser.add_argument(
        "--oversize-every", type=float, default=0.1, help="seconds between a client's attempts"
    )
    parser.add_argument("--quiet", type=float, default=1.0, help="seconds before and after")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before 'after'")
    parser.add_argument("--rate-limits", action="store_true", help="keep the HTTP rate limits")
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="the server's --header-timeout"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the database here")
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    work = Path(tempfile.mkdtemp(prefix="chatd-http-flood-", dir=args.workdir))
    try:
        result = asyncio.run(measure(args, work))
    except (OSError, RuntimeError, TimeoutError, ConnectionError) as exc:
        traceback.print_exc()
        say(f"failed: {type(exc).__name__}: {exc}")
        return 2
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print_report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
