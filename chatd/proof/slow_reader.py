"""A reader that never reads, in a chat of 1000 connections: is it dropped, and does it cost
the others anything?

    python -m chatd.proof.slow_reader [--rounds 2] [--control] [--connections 1000] [--rate 8]

One buyer writes to a shop at a steady rate; 1000 sockets of the shop's operators (each its
own operator, spread over client processes) read every message and note its delivery latency
(the send time travels in the text). Rounds alternate: without and with one more socket that
completes the handshake, says `hello`, and then never reads again, with a receive window
of 4 KiB. The server lets such a socket go when its send queue is full (1013), or when it
misses the keepalive pong (pings every 20 s, 20 s to answer), whichever comes first. The
program prints the others' latency percentiles for both kinds of round, the ratio of the
p99s, and when the stuck socket's queue filled and its connection was gone. With
`--control`, rounds with an extra socket that reads (and, like the stuck one, answers no
ping) tell the cost of not reading from the cost of one more connection.

One slow message reaches all 1 000 readers late, so a round's p99 is decided by its slowest
few messages: the program lists them with their times, which is how periodic stalls show.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from chatd.client.tokens import mint
from chatd.launcher import Server
from chatd.proof.wire import Frame, wire

LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")
SHOP = "shop-busy"


# ---- readers in child processes -------------------------------------------------------------


def _reader_process(url: str, tokens: list[str], pipe: Connection) -> None:
    asyncio.run(_readers(url, tokens, pipe))


async def _readers(url: str, tokens: list[str], pipe: Connection) -> None:
    # Per delivery: its round (an index into `labels`), message index and latency, in arrays:
    # millions of tuples would make the readers' own garbage collector pause for longer and
    # longer as a run goes on, and the pauses would read as the server's latency.
    labels: dict[str, int] = {}
    rounds_seen = array("H")
    indices = array("I")
    latencies = array("d")
    counts = [0] * len(tokens)
    closes: list[int | None] = []

    def collector(n: int) -> Any:
        def on_push(frame: Frame, _at: float) -> None:
            if frame.get("type") != "event" or frame.get("kind") != "message":
                return
            now = time.time()
            label, index, sent, _pad = str(frame["text"]).split("|", 3)
            rounds_seen.append(labels.setdefault(label, len(labels)))
            indices.append(int(index))
            latencies.append(now - float(sent))
            counts[n] += 1

        return on_push

    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for n, token in enumerate(tokens):
            sockets.append(
                await stack.enter_async_context(
                    wire(url, token, on_push=collector(n), max_queue=None, ping_interval=None)
                )
            )
            if n % 50 == 49:
                await asyncio.sleep(0.05)
        # What is alive now lives to the end: out of the collector's sight.
        gc.collect()
        gc.freeze()
        pipe.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # "stop"
        closes = [s.close_code for s in sockets if s.closed.is_set()]
    names = {number: label for label, number in labels.items()}
    seen = [(names[r], i, x) for r, i, x in zip(rounds_seen, indices, latencies, strict=True)]
    pipe.send((seen, counts, closes))


# ---- the stuck reader -------------------------------------------------------------------------


class StuckReader:
    """A socket that upgrades, says hello, and never reads another byte.

    With `drains`, the control: the same socket, which reads and discards everything (and,
    like the stuck one, never answers a ping), so the only difference is the reading.
    """

    def __init__(self, port: int, token: str, *, drains: bool = False) -> None:
        self.port = port
        self.token = token
        self.drains = drains
        self.sock: socket.socket | None = None

    def open(self) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.port))
        proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{self.port}/ws"))
        proto.send_request(proto.connect())
        sock.sendall(b"".join(proto.data_to_send()))
        while proto.state.name == "CONNECTING":
            proto.receive_data(sock.recv(65536))
        proto.send_text(json.dumps({"type": "hello", "token": self.token}).encode())
        sock.sendall(b"".join(proto.data_to_send()))
        self.sock = sock  # from here on, nothing is read
        if self.drains:
            threading.Thread(target=self._drain, args=(sock,), daemon=True).start()

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# ---- the rounds -------------------------------------------------------------------------------


@dataclass
class Round:
    label: str
    stuck: bool
    control: bool = False  # an extra socket that reads (StuckReader(drains=True))
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    # The slowest delivery of each message, by its index (the send time is index / rate).
    worst: dict[int, float] = field(default_factory=dict)
    dropped_after: float | None = None
    released_after: float | None = None
    seconds: float = 0.0
    unanswered: int = 0  # sends without an ack within 30 s

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _metric(server: Server, name: str) -> float:
    for line in httpx.get(server.http + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"no metric {name}")


async def _watch(server: Server, rnd: Round, started: float, stop: asyncio.Event) -> None:
    """Notes when the stuck socket is closed for its full queue (1013), and when its
    connection is gone, for that or any other reason; polls /metrics from a thread, so the
    writer's schedule never waits for it."""
    drops_before = await asyncio.to_thread(_metric, server, "chatd_queue_drops_total")
    open_before = await asyncio.to_thread(_metric, server, "chatd_connections")
    while not stop.is_set():
        drops = await asyncio.to_thread(_metric, server, "chatd_queue_drops_total")
        if rnd.dropped_after is None and drops > drops_before:
            rnd.dropped_after = time.monotonic() - started
        now_open = await asyncio.to_thread(_metric, server, "chatd_connections")
        if now_open < open_before:
            rnd.released_after = time.monotonic() - started
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def _round(
    server: Server, buyer: Any, chat: str, rnd: Round, rate: float, seconds: float, size: int,
    stuck_token: str,
) -> None:  # fmt: skip
    stuck: StuckReader | None = None
    stop = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    started = time.monotonic()
    extra = rnd.stuck or rnd.control
    if extra:
        stuck = StuckReader(server.port, stuck_token, drains=rnd.control)
        await asyncio.to_thread(stuck.open)
        await asyncio.sleep(0.5)
        started = time.monotonic()
        watcher = asyncio.create_task(_watch(server, rnd, started, stop))
    pad = "ж" * size
    interval = 1.0 / rate
    pending: list[asyncio.Task[Frame]] = []
    n = 0
    while True:
        elapsed = time.monotonic() - started
        if extra:
            # Until the server let the extra socket go, and a little longer.
            if elapsed > seconds or (
                rnd.released_after is not None and elapsed > rnd.released_after + 5
            ):
                break
        elif elapsed >= seconds:
            break
        text = f"{rnd.label}|{n}|{time.time():.6f}|{pad}"[:1000]
        frame = {"type": "send", "chat": chat, "text": text}
        pending.append(asyncio.create_task(buyer.request(frame)))
        n += 1
        await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    rnd.unanswered = sum(1 for o in outcomes if isinstance(o, BaseException))
    refused = [o for o in outcomes if isinstance(o, dict) and o.get("type") != "ack"]
    assert not refused, refused[:3]
    if buyer.closed.is_set():
        raise RuntimeError(f"the writer's socket closed with {buyer.close_code}")
    rnd.messages = n
    if watcher is not None and stuck is not None:
        # Some time for the release, if it comes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), 10)
        stop.set()
        await watcher
        stuck.close()
    rnd.seconds = time.monotonic() - started
    print(
        f"  {rnd.label}: {rnd.seconds:.0f} s, {n} messages, {rnd.unanswered} without an ack"
        f" in 30 s, queue full after {rnd.dropped_after}, gone after {rnd.released_after}",
        file=sys.stderr,
        flush=True,
    )
    await asyncio.sleep(2.0)  # the last deliveries land


@dataclass
class Outcome:
    connections: int
    rounds: list[Round]
    delivered: int
    expected: int
    closed_readers: int


async def measure(
    connections: int = 1000,
    rate: float = 8.0,
    seconds: float = 600.0,
    size: int = 980,
    rounds: int = 1,
    queue: int = 64,
    processes: int = 2,
    base_seconds: float = 45.0,
    control: bool = False,
) -> Outcome:
    secret = secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="chatd-slow-reader-"))
    server = Server(
        work / "chatd.db",
        secret,
        (*LIFTED, "--queue", str(queue), "--max-connections-per-user", str(connections + 8)),
    )
    server.start()
    ctx = mp.get_context("spawn")
    children: list[tuple[Any, Connection]] = []
    try:
        tokens = [
            mint(secret, role="seller", sub=f"op-{n}", name=f"op {n}", seller=SHOP)
            for n in range(connections)
        ]
        share = -(-connections // processes)
        for p in range(processes):
            here, there = ctx.Pipe()
            child = ctx.Process(
                target=_reader_process,
                args=(server.url, tokens[p * share : (p + 1) * share], there),
                daemon=True,
            )
            child.start()
            children.append((child, here))
        for _, pipe in children:
            if not pipe.poll(120):
                raise RuntimeError("the readers did not connect")
            assert pipe.recv() == "ready"
        # Baselines bracket every stuck round, so drift over time weighs on neither side.
        # A first round warms everything up and counts for nothing.
        plan = [Round("warmup", False), Round("base1", False)]
        for k in range(rounds):
            plan += [Round(f"stuck{k + 1}", True), Round(f"base{k + 2}", False)]
            if control:
                plan += [
                    Round(f"control{k + 1}", False, control=True),
                    Round(f"base{k + 2}b", False),
                ]
        buyer_token = mint(secret, role="buyer", sub="buyer-busy", name="Покупатель")
        async with wire(server.url, buyer_token, ping_interval=None) as buyer:
            chat = str((await buyer.request({"type": "open", "seller": SHOP}))["chat"])
            await asyncio.sleep(1.0)
            for k, rnd in enumerate(plan):
                stuck_token = mint(
                    secret, role="seller", sub=f"stuck-{k}", name="stuck", seller=SHOP
                )
                # A stuck round lasts until the socket is let go (at most `seconds`).
                extra = rnd.stuck or rnd.control
                length = seconds if extra else base_seconds / (2 if k == 0 else 1)
                await _round(server, buyer, chat, rnd, rate, length, size, stuck_token)
        by_label = {rnd.label: rnd for rnd in plan}
        delivered = 0
        closed = 0
        for _, pipe in children:
            pipe.send("stop")
        for child, pipe in children:
            seen, counts, closes = pipe.recv()
            child.join(30)
            delivered += sum(counts)
            closed += len(closes)
            for label, index, latency in seen:
                rnd = by_label[label]
                rnd.latencies.append(latency)
                rnd.worst[index] = max(latency, rnd.worst.get(index, 0.0))
        expected = connections * sum(r.messages for r in plan)
        return Outcome(connections, plan, delivered, expected, closed)
    finally:
        for child, _ in children:
            if child.is_alive():
                child.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(outcome: Outcome, args: argparse.Namespace) -> tuple[str, bool]:
    base = [r for r in outcome.rounds if not r.stuck and not r.control and r.label != "warmup"]
    controls = [r for r in outcome.rounds if r.control]
    stuck = [r for r in outcome.rounds if r.stuck]
    # Every delivery of a kind of round pooled: one hiccup weighs by its share, not by round.
    pooled_base = Round("base", False, latencies=[x for r in base for x in r.latencies])
    pooled_stuck = Round("stuck", True, latencies=[x for r in stuck for x in r.latencies])
    p99_base = pooled_base.percentile(0.99)
    p99_stuck = pooled_stuck.percentile(0.99)
    ratio = p99_stuck / p99_base if p99_base > 0 else float("inf")
    lines = [
        "",
        f"chatd slow reader proof: {outcome.connections} readers of one chat, "
        f"{args.rate:g} messages/s of {args.size} characters, "
        f"--queue {args.queue}, {os.cpu_count()} CPUs",
        f"  {'round':<9} {'seconds':>7} {'messages':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8}  extra socket",
    ]
    for r in outcome.rounds:
        note = ""
        if r.stuck or r.control:
            closed_note = (
                f"queue full, closed 1013 after {r.dropped_after:.1f} s"
                if r.dropped_after is not None
                else "queue never full"
            )
            released_note = (
                f"connection gone after {r.released_after:.1f} s"
                if r.released_after is not None
                else "connection still open at the end"
            )
            note = f"{closed_note}; {released_note}"
        lines.append(
            f"  {r.label:<9} {r.seconds:>7.0f} {r.messages:>8} {1000 * r.percentile(0.5):>8.1f}"
            f" {1000 * r.percentile(0.99):>8.1f} {1000 * max(r.latencies, default=0):>8.1f}  {note}"
        )
    # One message reaches every reader, so one slow message is 1/messages of a round's
    # deliveries: the p99 of a round is decided by its slowest one or two messages.
    for r in outcome.rounds:
        slowest = sorted(r.worst.items(), key=lambda item: -item[1])[:3]
        at = ", ".join(f"#{n} at {n / args.rate:.1f} s: {1000 * v:.0f} ms" for n, v in slowest)
        lines.append(f"  slowest in {r.label:<8} {at}")
    lines += [
        f"  deliveries to the readers           {outcome.delivered} of {outcome.expected}",
        f"  readers closed by the server        {outcome.closed_readers}",
        f"  sends without an ack within 30 s    {sum(r.unanswered for r in outcome.rounds)}",
        f"  p99 without a stuck reader          {1000 * p99_base:.1f} ms (all its rounds)",
        f"  p99 with a stuck reader             {1000 * p99_stuck:.1f} ms (all its rounds)",
        f"  p50 without / with                  {1000 * pooled_base.percentile(0.5):.1f} /"
        f" {1000 * pooled_stuck.percentile(0.5):.1f} ms",
        f"  ratio                               {ratio:.3f} (promise: at most 1.10)",
    ]
    if controls:
        # The control isolates the reading: same socket, same keepalive drop, but it reads.
        pooled_control = Round(
            "control", False, latencies=[x for r in controls for x in r.latencies]
        )
        p99_control = pooled_control.percentile(0.99)
        lines += [
            f"  p99 with a reading extra socket     {1000 * p99_control:.1f} ms (all its rounds)",
            f"  ratio stuck / reading               {p99_stuck / p99_control:.3f}",
        ]
    released = all(r.released_after is not None for r in stuck)
    if p99_base > 1.0:
        lines.append(
            "  note: a p99 over a second without a stuck reader means the machine is saturated"
            " (other load, or --rate too high for it); the comparison then says little"
        )
    ok = (
        ratio <= 1.10
        and outcome.delivered == outcome.expected
        and outcome.closed_readers == 0
        and not any(r.unanswered for r in outcome.rounds)
    )
    lines.append(f"  stuck reader let go in every round  {'yes' if released else 'NO'}")
    lines.append(f"  verdict                             {'PASS' if ok and released else 'FAIL'}")
    return "\n".join(lines), ok and released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatd.proof.slow_reader", description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=8.0, help="messages a second")
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="longest wait for the stuck socket's close"
    )
    parser.add_argument("--size", type=int, default=980, help="characters of a message")
    parser.add_argument("--rounds", type=int, default=1, help="rounds with a stuck reader")
    parser.add_argument(
        "--base-seconds", type=float, default=45.0, help="length of a round without one"
    )
    parser.add_argument("--queue", type=int, default=64, help="the server's --queue")
    parser.add_argument("--processes", type=int, default=2, help="reader processes")
    parser.add_argument(
        "--control",
        action="store_true",
        help="also rounds with an extra socket that reads, to tell the cost of not reading"
        " from the cost of one more connection",
    )
    args = parser.parse_args(argv)
    outcome = asyncio.run(
        measure(
            args.connections, args.rate, args.seconds, args.size, args.rounds, args.queue,
            args.processes, args.base_seconds, args.control,
        )
    )  # fmt: skip
    text, ok = report(outcome, args)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
