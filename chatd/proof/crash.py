"""kill -9 under load, again and again, and a proof after each crash that the log is whole.

    python -m chatd.proof.crash --cycles 50 [--workers 8] [--sync full|normal] [--seed 1]

Each cycle starts `chatd serve` on the same database, puts it under a replay of
conversations (buyers and shop operators writing with nonces, read marks, orders registered
over HTTP, return requests approved with a refund), kills it with SIGKILL at a random moment,
and then, with the server dead, checks the database file itself:

- SQLite's `PRAGMA integrity_check` is `ok`;
- every acked event is there, at the acked `seq`, with the acked kind and text;
- every message is there at most once (exactly once when acked), across resends of in-flight
  messages with their nonce after the restart;
- every chat's `seq` runs 1, 2, 3, ... without a gap, and positions are unique;
- every chat event is in the feed of its buyer and its shop;
- the projections (chats, search, claims, orders, ledger, files) equal what `chatd rebuild`
  derives from the log on a copy of the database.

After the last cycle the server is started once more and each shop replays its whole feed
from the first position over the wire: every event once, in `seq` order per chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from chatd.client.tokens import mint
from chatd.launcher import Server
from chatd.projection import LogProjector
from chatd.proof.wire import Frame, wire
from chatd.store.sqlite import SqliteStore
from chatd.store.sqlite_schema import PROJECTION_TABLES
from protocol.events import decode_event

LOST = (ConnectionError, OSError, TimeoutError, websockets.ConnectionClosed, httpx.HTTPError)
LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")
PRICE = {"value": 118600, "currency": "RUB"}


# ---- what the load was told ------------------------------------------------------------------


@dataclass(frozen=True)
class Acked:
    chat: str
    seq: int
    kind: str
    text: str | None


@dataclass
class Ledger:
    """Every ack the load received, and the messages it sent."""

    acked: dict[tuple[str, int], Acked] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    texts_sent: set[str] = field(default_factory=set)

    def ack(self, item: Acked) -> None:
        known = self.acked.get((item.chat, item.seq))
        if known is not None and known != item:
            self.conflicts.append(f"{item.chat}/{item.seq} acked as {known} and as {item}")
        self.acked[(item.chat, item.seq)] = item


@dataclass
class Worker:
    """One conversation: a buyer and an operator of the shop, writing in turn."""

    n: int
    buyer: str
    shop: str
    operator: str
    chat: str | None = None
    step: int = 0
    pending_text: tuple[str, str, str] | None = None  # (side, nonce, text) in flight
    return_order: str | None = None
    return_phase: str = "request"
    orders: int = 0


# ---- the load ------------------------------------------------------------------------------


class Load:
    def __init__(self, server: Server, secret: str, workers: list[Worker], ledger: Ledger) -> None:
        self.server = server
        self.secret = secret
        self.workers = workers
        self.ledger = ledger
        self.acks = 0

    def token(self, role: str, sub: str, shop: str | None = None) -> str:
        return mint(self.secret, role=role, sub=sub, name=sub, seller=shop)  # type: ignore[arg-type]

    async def run(self) -> None:
        """Until the server dies. A refusal or a wrong answer is raised; a lost socket ends
        that conversation quietly (what was in flight is resent after the restart)."""
        async with httpx.AsyncClient(base_url=self.server.http, timeout=10) as http:
            outcomes = await asyncio.gather(
                *(self._converse(w, http) for w in self.workers), return_exceptions=True
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, LOST):
                raise outcome

    async def _converse(self, w: Worker, http: httpx.AsyncClient) -> None:
        buyer_token = self.token("buyer", w.buyer)
        operator_token = self.token("seller", w.operator, w.shop)
        async with (
            wire(self.server.url, buyer_token) as buyer,
            wire(self.server.url, operator_token) as operator,
        ):
            if w.chat is None:
                opened = await buyer.request({"type": "open", "seller": w.shop})
                w.chat = str(opened["chat"])
                self._ack(opened, "chat.opened", None)
            while True:
                if w.pending_text is not None:
                    side, nonce, text = w.pending_text
                    client = buyer if side == "buyer" else operator
                    frame = {"type": "send", "chat": w.chat, "text": text, "nonce": nonce}
                    self._ack(await client.request(frame), "message", text)
                    w.pending_text = None
                    continue
                if w.return_order is not None:
                    await self._return(w, buyer, operator, http)
                    continue
                w.step += 1
                if w.step % 6 == 5:
                    await buyer.send({"type": "read", "chat": w.chat, "seq": 1 + w.step // 2})
                    if w.step % 18 == 17:
                        w.orders += 1
                        w.return_order = f"{w.buyer}-o{w.orders}"
                        w.return_phase = "register"
                    continue
                side = "operator" if w.step % 6 in (1, 3) else "buyer"
                text = f"{w.buyer} {side} сообщение {w.step}"
                self.ledger.texts_sent.add(text)
                w.pending_text = (side, f"n{w.step}", text)

    async def _return(self, w: Worker, buyer: Any, operator: Any, http: httpx.AsyncClient) -> None:
        assert w.chat is not None and w.return_order is not None
        if w.return_phase == "register":
            body = _order(w.return_order, w.buyer, w.shop)
            headers = {"Authorization": f"Bearer {self.token('system', 'marketplace')}"}
            response = await http.post("/api/v1/orders", json=body, headers=headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"order refused: {response.text}")
            w.return_phase = "request"
        if w.return_phase == "request":
            frame = {"type": "return.request", "chat": w.chat, "order": w.return_order}
            reply = await buyer.request(frame)
            if reply["type"] == "ack":
                self._ack(reply, "return.requested", None)
            elif reply.get("code") != "return_already_requested":  # done before the crash
                raise RuntimeError(f"return.request refused: {reply}")
            w.return_phase = "approve"
        claim = _claim_of(w.return_order)
        reply = await operator.request(
            {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": PRICE}
        )
        if reply["type"] == "ack":
            self._ack(reply, "return.approved", None)
            self.ledger.ack(Acked(w.chat, int(reply["seq"]) + 1, "refund.issued", None))
        elif reply.get("code") not in ("conflict", "not_found"):
            raise RuntimeError(f"return.approve refused: {reply}")
        w.return_order = None

    def _ack(self, reply: Frame, kind: str, text: str | None) -> None:
        if reply.get("type") != "ack":
            raise RuntimeError(f"refused: {reply}")
        self.acks += 1
        self.ledger.ack(Acked(str(reply["chat"]), int(reply["seq"]), kind, text))


def _order(order: str, buyer: str, shop: str) -> dict[str, Any]:
    return {
        "id": order,
        "buyer": {"id": buyer, "name": buyer},
        "seller": {"id": shop, "name": "Shop " + shop},
        "article": "140158860",
        "name": "Юбка короткая плиссе со складками",
        "brand": "SK - Line",
        "size": "S",
        "price": PRICE,
        "purchased_at": "2023-08-10T09:00:00Z",
        "received_at": "2023-08-17T09:00:00Z",
        "non_returnable": False,
    }


def _claim_of(order: str) -> str:
    from chatd.domain.ids import claim_id

    return claim_id(order)


# ---- the checks ------------------------------------------------------------------------------


@dataclass
class Findings:
    integrity: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    feed: list[str] = field(default_factory=list)
    projections: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return (
            self.integrity + self.lost + self.duplicates + self.gaps + self.feed + self.projections
        )


def _rows(db: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    if table == "search":
        # The index and its queue as one: which of the two holds a text depends only on
        # when the writer last indexed the queue.
        return sorted(
            db.execute(
                "SELECT rowid, text, chat FROM search"
                " UNION ALL SELECT pos, text, chat FROM search_queue"
            ).fetchall()
        )
    return sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


async def rebuilt_copy(path: Path, copy: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(path)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    store = SqliteStore(copy)
    await store.open()
    try:
        await store.rebuild(LogProjector())
    finally:
        await store.close()


def _fresh(copy: Path) -> Path:
    for stale in copy.parent.glob(copy.name + "*"):
        stale.unlink()
    return copy


async def check_database(path: Path, ledger: Ledger, scratch: Path) -> tuple[Findings, int]:
    """What the crashed database holds against what was acked; (findings, events)."""
    found = Findings()
    with contextlib.closing(sqlite3.connect(path)) as db:
        check = db.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            found.integrity.append(repr(check))
        rows = db.execute("SELECT pos, stream, seq, kind, body FROM events ORDER BY pos").fetchall()
        missing_feed = db.execute(
            "SELECT e.pos FROM events e JOIN chats c ON c.chat = e.stream WHERE NOT EXISTS"
            " (SELECT 1 FROM feed f WHERE f.key = 'b:' || c.buyer_id AND f.pos = e.pos)"
            " OR NOT EXISTS"
            " (SELECT 1 FROM feed f WHERE f.key = 's:' || c.seller_id AND f.pos = e.pos)"
        ).fetchall()
        found.feed += [f"event at position {pos} is missing from a feed" for (pos,) in missing_feed]
    stored: dict[tuple[str, int], tuple[str, str | None]] = {}
    seqs: defaultdict[str, list[int]] = defaultdict(list)
    texts: Counter[str] = Counter()
    for _pos, stream, seq, kind, body in rows:
        event = decode_event(bytes(body))
        stored[(stream, seq)] = (kind, event.text)
        seqs[stream].append(seq)
        if kind == "message" and event.text is not None:
            texts[event.text] += 1
    for (chat, seq), item in ledger.acked.items():
        got = stored.get((chat, seq))
        if got is None:
            found.lost.append(f"acked {item.kind} {chat}/{seq} is missing")
        elif got[0] != item.kind or (item.text is not None and got[1] != item.text):
            found.lost.append(f"{chat}/{seq} holds {got}, acked as {item.kind} {item.text!r}")
    found.duplicates += [f"{text!r} {count} times" for text, count in texts.items() if count > 1]
    found.duplicates += ledger.conflicts
    for stream, numbers in seqs.items():
        if numbers != list(range(1, len(numbers) + 1)):
            found.gaps.append(f"{stream}: {numbers[:5]}...{numbers[-5:]}")
    copy = _fresh(scratch / "rebuilt.db")
    await rebuilt_copy(path, copy)
    with (
        contextlib.closing(sqlite3.connect(path)) as live,
        contextlib.closing(sqlite3.connect(copy)) as rebuilt,
    ):
        for table in PROJECTION_TABLES:
            if table == "search_queue":
                continue  # compared with `search`
            if _rows(live, table) != _rows(rebuilt, table):
                found.projections.append(f"{table} differs from its rebuild")
    return found, len(rows)


async def replay_feeds(server: Server, secret: str, shops: list[str], db: Path) -> list[str]:
    """Each shop's whole feed over the wire from the first position: every event of its chats
    once, in seq order per chat."""
    problems: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        log_id = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
    for shop in shops:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            expected = conn.execute(
                "SELECT count(*) FROM events e JOIN chats c ON c.chat = e.stream"
                " WHERE c.seller_id = ?",
                (shop,),
            ).fetchone()[0]
        got: list[tuple[str, int]] = []
        done = asyncio.Event()

        def collect(
            frame: Frame, _at: float, into: list[tuple[str, int]] = got, end: Any = done
        ) -> None:
            if frame.get("type") == "event":
                into.append((str(frame["chat"]), int(frame["seq"])))
            elif frame.get("type") in ("synced", "error"):
                end.set()

        token = mint(secret, role="seller", sub="replayer", name="replayer", seller=shop)
        async with wire(server.url, token, since=f"{log_id}.0", on_push=collect):
            await asyncio.wait_for(done.wait(), 60)
        per_chat: defaultdict[str, list[int]] = defaultdict(list)
        for chat, seq in got:
            per_chat[chat].append(seq)
        if len(got) != expected:
            problems.append(f"{shop}: {len(got)} events replayed, {expected} in the log")
        for chat, numbers in per_chat.items():
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"{shop}: chat {chat} replayed as {numbers[:8]}...")
    return problems


# ---- the cycles ----------------------------------------------------------------------------


@dataclass
class Cycle:
    n: int
    load_seconds: float
    acks: int
    events: int
    restart_seconds: float
    in_flight: int
    in_flight_kept: int
    problems: list[str]


@dataclass
class Report:
    sync: str
    workers: int
    cycles: list[Cycle] = field(default_factory=list)
    final_replay: list[str] = field(default_factory=list)
    acked_total: int = 0
    findings: Findings = field(default_factory=Findings)

    @property
    def ok(self) -> bool:
        return not self.findings.all() and not self.final_replay


async def run(
    cycles: int,
    *,
    workers: int = 8,
    sync: str = "full",
    seed: int = 1,
    root: Path | None = None,
    min_load: float = 0.3,
    max_load: float = 2.0,
    echo: bool = True,
) -> Report:
    rng = random.Random(seed)
    secret = secrets.token_urlsafe(32)
    work = root or Path(tempfile.mkdtemp(prefix="chatd-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "chatd.db"
    server = Server(db, secret, (*LIFTED, "--sync", sync))
    shops = ["crash-shop-0", "crash-shop-1"]
    team = [Worker(n, f"crash-buyer-{n}", shops[n % 2], f"crash-op-{n}") for n in range(workers)]
    ledger = Ledger()
    report = Report(sync=sync, workers=workers)
    total = Findings()
    try:
        for n in range(1, cycles + 1):
            restart = server.start()
            load = Load(server, secret, team, ledger)
            task = asyncio.create_task(load.run())
            planned = rng.uniform(min_load, max_load)
            started = time.monotonic()
            await asyncio.sleep(planned)
            server.kill()
            elapsed = time.monotonic() - started
            await asyncio.wait_for(task, 30)
            in_flight = [w.pending_text[2] for w in team if w.pending_text is not None]
            found, events = await check_database(db, ledger, work)
            kept = _count_texts(db, in_flight)
            cycle = Cycle(n, elapsed, load.acks, events, restart, len(in_flight), kept, found.all())
            report.cycles.append(cycle)
            for name in ("integrity", "lost", "duplicates", "gaps", "feed", "projections"):
                getattr(total, name).extend(getattr(found, name))
            if echo:
                status = "ok" if not cycle.problems else "; ".join(cycle.problems[:3])
                print(
                    f"cycle {n:3d}: load {elapsed:4.2f} s, {load.acks:5d} acks"
                    f" ({load.acks / elapsed:6.0f}/s), {events:6d} events in the log,"
                    f" {len(in_flight)} in flight ({kept} of them kept): {status}",
                    flush=True,
                )
        server.start()
        report.final_replay = await replay_feeds(server, secret, shops, db)
    finally:
        server.stop()
        if root is None:
            shutil.rmtree(work, ignore_errors=True)
    report.acked_total = len(ledger.acked)
    report.findings = total
    return report


def _count_texts(db: Path, texts: list[str]) -> int:
    if not texts:
        return 0
    wanted = set(texts)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT body FROM events WHERE kind = 'message'").fetchall()
    return sum(1 for (body,) in rows if decode_event(bytes(body)).text in wanted)


def summary(report: Report, seconds: float) -> str:
    f = report.findings
    loads = [c.load_seconds for c in report.cycles]
    acks = sum(c.acks for c in report.cycles)
    events = report.cycles[-1].events if report.cycles else 0
    restarts = sorted(c.restart_seconds for c in report.cycles)
    in_flight = sum(c.in_flight for c in report.cycles)
    kept = sum(c.in_flight_kept for c in report.cycles)
    replay = "ok" if not report.final_replay else "; ".join(report.final_replay)
    lines = [
        "",
        f"chatd kill -9 proof: synchronous={report.sync.upper()}, {report.workers} conversations",
        f"  kill -9 cycles                      {len(report.cycles)}",
        f"  acks received under load            {acks} ({acks / max(sum(loads), 1e-9):.0f}/s)",
        f"  distinct acked events               {report.acked_total}",
        f"  events in the log at the end        {events}",
        f"  sends in flight at the kill         {in_flight} ({kept} committed, unacked)",
        f"  acked events lost                   {len(f.lost)}",
        f"  duplicated messages                 {len(f.duplicates)}",
        f"  chats with a seq gap                {len(f.gaps)}",
        f"  integrity_check failures            {len(f.integrity)}",
        f"  events missing from a feed          {len(f.feed)}",
        f"  projections unequal to a rebuild    {len(f.projections)}",
        f"  final replay of every feed          {replay}",
        f"  restart to /healthz (median)        {restarts[len(restarts) // 2]:.2f} s"
        if restarts
        else "",
        f"  wall time                           {seconds:.0f} s",
        f"  verdict                             {'PASS' if report.ok else 'FAIL'}",
    ]
    return "\n".join(line for line in lines if line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.crash",
        description="kill -9 a loaded chatd again and again; prove every acked event is kept "
        "exactly once, seq gapless, the database sound and the projections equal to a rebuild",
    )
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8, help="conversations at once")
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the database in this directory")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = asyncio.run(
        run(args.cycles, workers=args.workers, sync=args.sync, seed=args.seed, root=args.keep)
    )
    print(summary(report, time.monotonic() - started))
    for problem in report.findings.all()[:20] + report.final_replay[:20]:
        print("  !", problem)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
