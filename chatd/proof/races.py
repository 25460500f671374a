"""Races: the same decision on one claim sent a thousand times at once, from many sockets of
several people on two nodes, and deadlines fired by every node at the same moment.

    python -m chatd.proof.races [--store postgres|sqlite|both] [--duplicates 1000]
        [--escalations 40] [--offers 10] [--deadline 4] [--pg DSN] [--redis URL]
        [--json FILE] [--workdir DIR]

With `postgres` the program creates a fresh database on the PostgreSQL of `--pg` (dropped at
the end) and starts two `chatd serve` nodes, `a` and `b`, on it and on the Redis of
`--redis` (a hub's channel is named after its log, so the run hears nobody else); with
`sqlite` one node on a new SQLite file. Rate limits are lifted: the races, not the limits,
are under test. Then, each burst on a claim of its own:

- 8 operators of one shop hold 8 sockets each, every second one on the other node; the
  buyer 16, the marketplace's managers 4 each; an API key of the shop (`returns:write`)
  and the operators' tokens over HTTP on both nodes. Every burst sends `--duplicates`
  copies of one command at once: one `ack` per copy is sent before any answer is awaited,
  one in eight goes over HTTP where the contract has a route for it, a third of the frames
  carry one and the same `nonce`, a third a nonce of their own, the rest none (a nonce is
  no field of the return frames: it must change nothing);
- the bursts: `return.approve` (no_return, the refund at once); `return.approve` (pvz), then
  the goods' `handed_in`, `arrived` (the refund) and `inspected` from the marketplace, a
  thousand times each over HTTP; `return.reject`, the buyer's `return.dispute` and the
  managers' `return.resolve` (approve, no_return); half approvals and half rejections at
  once; a `send` with one nonce from every socket of one operator (and the same
  `Idempotency-Key` over HTTP); and another operator's one nonce sent into two chats at
  once (one message in all). And one burst of different messages, every copy its own, into
  one chat from both sides' sockets on both nodes: all of them appended and acked, in one
  unbroken run of `seq`, none refused for the contention;
- deadlines: the nodes restart with `--claim-deadline` and `--offer-deadline` of
  `--deadline` seconds, `--escalations` requests and `--offers` offers are made at once
  and left to fall due. At the deadline both nodes' timer loops fire, three more services
  in this process (each a store and a hub of its own, as more nodes would have) fire the
  same deadlines six times each from 20 ms before to 105 ms after, and for half of the
  claims the operators race them: approvals from both nodes for requests, the buyer's
  `return.request` for offers.

Checked from the log itself (the database's `events` and `ledger` tables), not from what the
server says: exactly one event of each decision per burst and the refunds it implies, one
row per refund in the ledger, exactly one answer that did it (an `ack` or HTTP 200/201;
every other copy a `conflict`, or the first answer again for a repeated nonce); every socket
of the chat's two sides heard each new event once and in order; for each deadline exactly
one outcome (escalated or approved; expired or requested, and a request then escalated).

Figures per burst: copies sent, answers by kind, events appended by kind, ledger rows, the
sockets that heard everything once, and the time from the first copy sent to the last
answer; for deadlines, the outcomes, the triggers' answers and how late after its deadline
each event was appended. The exit status is 1 when a check fails, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chatd.client.tokens import mint
from chatd.domain.ids import claim_id
from chatd.launcher import Server
from chatd.proof.wire import Frame, Wire, wire

LIFTED = (
    "--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6",
    "--http-rate", "1e6", "--http-burst", "1e6", "--http-system-rate", "1e6",
    "--http-system-burst", "1e6", "--max-connections-per-user", "64",
)  # fmt: skip
PRICE = {"value": 118600, "currency": "RUB"}
SHOP = "shop-races"
OPERATORS = 8
SOCKETS_PER_OPERATOR = 8
BUYER_SOCKETS = 16
MANAGERS = 4
SOCKETS_PER_MANAGER = 4
HTTP_EVERY = 8  # one copy in eight over HTTP, where the contract has a route
TRIGGERS = 3  # services in this process firing deadlines, as more nodes would
TRIGGER_SHOTS = 6
ANSWER_WITHIN = 120.0
DEFAULT_PG = os.environ.get("CHATD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_REDIS = os.environ.get("CHATD_TEST_REDIS", "redis://127.0.0.1:6379/0")


# What a claim left to its deadline may end as, and nothing else: for a request, escalated
# or approved (with its refund); for an offer, expired or requested (and then escalated).
FINAL: dict[bool, tuple[list[str], ...]] = {
    False: (["return.escalated"], ["return.approved", "refund.issued"]),
    True: (["return.expired"], ["return.requested", "return.escalated"]),
}


def say(*parts: object) -> None:
    print(*parts, flush=True)


# ---- who listens -----------------------------------------------------------------------------


@dataclass
class Ear:
    """What one socket heard: each chat's events (seq, kind), in arrival order."""

    who: str
    node: str
    heard: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def push(self, frame: Frame, _at: float) -> None:
        if frame.get("type") == "event":
            chat = str(frame["chat"])
            self.heard.setdefault(chat, []).append((int(frame["seq"]), str(frame["kind"])))

    def of(self, chat: str, after: int) -> list[tuple[int, str]]:
        return [(seq, kind) for seq, kind in self.heard.get(chat, ()) if seq > after]


@dataclass
class Hand:
    """One socket and who holds it."""

    who: str
    node: str
    wire: Wire
    ear: Ear


@dataclass
class Node:
    name: str
    server: Server
    http: httpx.AsyncClient


# ---- the log, read from the database ---------------------------------------------------------


class LogReader:
    """The events and ledger rows the database holds: the truth the answers are checked
    against."""

    def __init__(self, sqlite_path: Path | None = None, dsn: str | None = None) -> None:
        self.sqlite_path = sqlite_path
        self.dsn = dsn

    async def events(self, chat: str, after: int = 0) -> list[tuple[int, str, str]]:
        """(seq, kind, at) of the chat's events after `after`, in order."""
        if self.dsn is not None:
            import asyncpg

            conn = await asyncpg.connect(self.dsn)
            try:
                rows = await conn.fetch(
                    "SELECT seq, kind, body FROM events WHERE stream = $1 AND seq > $2"
                    " ORDER BY seq",
                    chat,
                    after,
                )
            finally:
                await conn.close()
            return [(int(r[0]), str(r[1]), _event_at(bytes(r[2]))) for r in rows]
        assert self.sqlite_path is not None
        with contextlib.closing(
            sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)
        ) as db:
            found = db.execute(
                "SELECT seq, kind, body FROM events WHERE stream = ? AND seq > ? ORDER BY seq",
                (chat, after),
            ).fetchall()
        return [(int(s), str(k), _event_at(bytes(b))) for s, k, b in found]

    async def ledger(self, claim: str) -> int:
        if self.dsn is not None:
            import asyncpg

            conn = await asyncpg.connect(self.dsn)
            try:
                return int(
                    await conn.fetchval("SELECT count(*) FROM ledger WHERE claim = $1", claim)
                )
            finally:
                await conn.close()
        assert self.sqlite_path is not None
        with contextlib.closing(
            sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)
        ) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM ledger WHERE claim = ?", (claim,)
            ).fetchone()
        return int(count)


def _event_at(body: bytes) -> str:
    from protocol.events import decode_event

    return decode_event(body).at.isoformat()


# ---- the checks ------------------------------------------------------------------------------


@dataclass
class Burst:
    name: str
    sent: int
    answers: dict[str, int]
    succeeded: int
    appended: dict[str, int]
    ledger: int
    heard_once: int
    listeners: int
    seconds: float
    problems: list[str] = field(default_factory=list)


@dataclass
class DeadlineRun:
    escalations: int
    offers: int
    raced: int
    outcomes: dict[str, int]
    triggers: dict[str, int]
    racers: dict[str, int]
    late_ms: dict[str, float]
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    store: str
    nodes: int
    bursts: list[Burst] = field(default_factory=list)
    deadlines: DeadlineRun | None = None
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        found = [f"{b.name}: {p}" for b in self.bursts for p in b.problems]
        if self.deadlines is not None:
            found += [f"deadlines: {p}" for p in self.deadlines.problems]
        return found


# ---- the run ---------------------------------------------------------------------------------


def _order(order: str, buyer: str) -> dict[str, Any]:
    return {
        "id": order,
        "buyer": {"id": buyer, "name": buyer},
        "seller": {"id": SHOP, "name": "Магазин гонок"},
        "article": "140158860",
        "name": "Юбка короткая плиссе со складками",
        "brand": "SK - Line",
        "size": "S",
        "price": PRICE,
        "purchased_at": "2023-08-10T09:00:00Z",
        "received_at": "2023-08-17T09:00:00Z",
        "non_returnable": False,
    }


def _answer_of(frame: Frame) -> str:
    if frame.get("type") == "ack":
        return "ack"
    if frame.get("type") == "error":
        return f"error {frame.get('code')}"
    return f"frame {frame.get('type')}"


def _refusal(code: str, message: str) -> str:
    """A refusal of a deadline's command, by what it says (ids and times left out)."""
    if "not due" in message:
        return f"{code}: not due yet"
    if "not allowed in this state" in message:
        return f"{code}: the claim moved on"
    return f"{code}: {re.sub(r'[0-9a-f]{12,}|[0-9T:.-]{19,}Z?', '…', message)}"


def _http_answer(response: httpx.Response) -> str:
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"HTTP {response.status_code}" + (f" {code}" if code else "")


class Races:
    def __init__(self, nodes: list[Node], secret: str, log: LogReader, duplicates: int) -> None:
        self.nodes = nodes
        self.secret = secret
        self.log = log
        self.duplicates = duplicates
        self.system = self.token("system", "marketplace")
        self.operators: list[Hand] = []
        self.managers: list[Hand] = []
        self.key = ""
        self._stack = contextlib.AsyncExitStack()
        self._orders = itertools.count(1)
        self.order_of: dict[str, str] = {}  # claim -> order

    def token(self, role: str, sub: str, shop: str | None = None) -> str:
        return mint(self.secret, role=role, sub=sub, name=sub, seller=shop)  # type: ignore[arg-type]

    def node(self, index: int) -> Node:
        return self.nodes[index % len(self.nodes)]

    async def _hand(self, who: str, token: str, index: int) -> Hand:
        node = self.node(index)
        ear = Ear(who, node.name)
        client = await self._stack.enter_async_context(
            wire(node.server.url, token, on_push=ear.push, max_size=None)
        )
        return Hand(who, node.name, client, ear)

    async def open(self) -> None:
        opening = [
            self._hand(f"op-{o}", self.token("seller", f"op-{o}", SHOP), o + s)
            for o in range(OPERATORS)
            for s in range(SOCKETS_PER_OPERATOR)
        ]
        self.operators = list(await asyncio.gather(*opening))
        opening = [
            self._hand(f"mgr-{m}", self.token("manager", f"mgr-{m}"), m + s)
            for m in range(MANAGERS)
            for s in range(SOCKETS_PER_MANAGER)
        ]
        self.managers = list(await asyncio.gather(*opening))
        created = await self.nodes[0].http.post(
            "/api/v1/keys",
            json={"name": "races", "scopes": ["chat:read", "returns:write"]},
            headers={"Authorization": f"Bearer {self.token('seller', 'op-0', SHOP)}"},
        )
        if created.status_code != 201:
            raise RuntimeError(f"no API key: {created.status_code} {created.text}")
        self.key = str(created.json()["key"])

    async def close(self) -> None:
        await self._stack.aclose()

    async def buyer(self, name: str) -> list[Hand]:
        token = self.token("buyer", name)
        return list(
            await asyncio.gather(*(self._hand(name, token, s) for s in range(BUYER_SOCKETS)))
        )

    async def claim(
        self, buyers: list[Hand], buyer: str, *, offer: bool = False
    ) -> tuple[str, str]:
        """A new order of `buyer`, its chat and a request for its return (or, with `offer`,
        the shop's offer of one); (chat, claim)."""
        order = f"{buyer}-o{next(self._orders)}"
        response = await self.nodes[0].http.post(
            "/api/v1/orders",
            json=_order(order, buyer),
            headers={"Authorization": f"Bearer {self.system}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"order refused: {response.status_code} {response.text}")
        opened = await buyers[0].wire.request({"type": "open", "seller": SHOP, "order": order})
        if opened.get("type") != "ack":
            raise RuntimeError(f"open refused: {opened}")
        chat = str(opened["chat"])
        if offer:
            frame = {"type": "return.initiate", "chat": chat, "order": order}
            done = await self.operators[0].wire.request(frame)
        else:
            done = await buyers[0].wire.request(
                {"type": "return.request", "chat": chat, "order": order}
            )
        if done.get("type") != "ack":
            raise RuntimeError(f"claim refused: {done}")
        self.order_of[claim_id(order)] = order
        return chat, claim_id(order)

    async def _tail(self, chat: str, offer: bool) -> list[str]:
        """The kinds after the request (or the offer) that started the claim's wait."""
        kinds = [kind for _s, kind, _at in await self.log.events(chat)]
        return kinds[kinds.index("return.initiated" if offer else "return.requested") + 1 :]

    async def head(self, chat: str) -> int:
        events = await self.log.events(chat)
        return events[-1][0] if events else 0

    # ---- one burst ------------------------------------------------------------------------------

    async def burst(
        self,
        name: str,
        chat: str,
        claim: str,
        hands: list[Hand],
        frame: Frame | None,
        http: tuple[str, dict[str, Any], list[str]] | None,
        expect: dict[str, int] | None,
        *,
        listeners: list[Hand],
        ledger: int | None = 0,
        http_every: int = HTTP_EVERY,
        frames: list[Frame] | None = None,
        one_answer: bool = False,
    ) -> Burst:
        """`duplicates` copies of `frame` over `hands` (and, one in `http_every`, of the
        HTTP request `http`: path, JSON body, bearer credentials to take in turn), all sent
        at once; then the log is read."""
        before = await self.head(chat)
        go = asyncio.Event()
        shots: list[Awaitable[str]] = []
        nonce = f"same-{name.replace(' ', '-')}"
        for i in range(self.duplicates):
            only_http = frame is None and frames is None
            if http is not None and (only_http or i % http_every == 0):
                path, body, bearers = http
                node = self.node(i if only_http else i // http_every)
                headers = {"Authorization": f"Bearer {bearers[i % len(bearers)]}"}
                if i % 3 == 0:
                    headers["Idempotency-Key"] = nonce
                shots.append(self._http_shot(go, node, path, body, headers))
                continue
            assert frame is not None or frames is not None
            one = dict(frames[i % len(frames)] if frames is not None else frame or {})
            if one.get("type") != "send":
                if i % 3 == 0:
                    one["nonce"] = nonce
                elif i % 3 == 1:
                    one["nonce"] = f"own-{i}"
            shots.append(self._ws_shot(go, hands[i % len(hands)], one))
        started = time.perf_counter()
        go.set()
        answers = await asyncio.gather(*shots)
        seconds = time.perf_counter() - started
        tally = Counter(answers)
        succeeded = sum(n for a, n in tally.items() if a in ("ack", "HTTP 200", "HTTP 201"))
        events = await self.log.events(chat, before)
        appended = Counter(kind for _seq, kind, _at in events)
        last = events[-1][0] if events else before
        problems: list[str] = []
        if expect is not None and dict(appended) != expect:
            problems.append(f"appended {dict(appended)}, expected {expect}")
        refunds = await self.log.ledger(claim)
        if ledger is not None and refunds != ledger:
            problems.append(f"{refunds} ledger rows for the claim, expected {ledger}")
        if one_answer:
            # A repeated nonce is answered with the first answer: every copy succeeds.
            if succeeded != self.duplicates:
                problems.append(f"{succeeded} copies answered as done, expected all")
        elif succeeded != 1:
            problems.append(f"{succeeded} copies answered as done, expected exactly 1")
        heard = await self._heard_once(chat, before, last, events, listeners, problems)
        return Burst(
            name=name,
            sent=self.duplicates,
            answers=dict(tally.most_common()),
            succeeded=succeeded,
            appended=dict(appended),
            ledger=refunds,
            heard_once=heard,
            listeners=len(listeners),
            seconds=seconds,
            problems=problems,
        )

    async def _ws_shot(self, go: asyncio.Event, hand: Hand, frame: Frame) -> str:
        await go.wait()
        try:
            return _answer_of(await hand.wire.request(frame, within=ANSWER_WITHIN))
        except (ConnectionError, TimeoutError) as exc:
            return f"socket {type(exc).__name__}"

    async def _http_shot(
        self,
        go: asyncio.Event,
        node: Node,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> str:
        await go.wait()
        try:
            return _http_answer(await node.http.post(path, json=body, headers=headers))
        except httpx.HTTPError as exc:
            return f"HTTP {type(exc).__name__}"

    async def _heard_once(
        self,
        chat: str,
        before: int,
        last: int,
        events: list[tuple[int, str, str]],
        listeners: list[Hand],
        problems: list[str],
    ) -> int:
        """How many of `listeners` heard every event after `before` exactly once, in order
        (waiting up to 10 s for the fan-out across nodes)."""
        wanted = [(seq, kind) for seq, kind, _at in events]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(len(h.ear.of(chat, before)) >= len(wanted) for h in listeners):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a duplicate would arrive late: give it the time
        good = 0
        for hand in listeners:
            got = hand.ear.of(chat, before)
            if got == wanted:
                good += 1
            elif len(problems) < 8:
                problems.append(
                    f"{hand.who} on {hand.node} heard {got[:6]}... ({len(got)}), "
                    f"expected {wanted} (up to seq {last})"
                )
        return good

    # ---- the bursts ---------------------------------------------------------------------------

    def approvals(
        self, claim: str, mode: str
    ) -> tuple[Frame, tuple[str, dict[str, Any], list[str]]]:
        frame: Frame = {"type": "return.approve", "claim": claim, "mode": mode, "amount": PRICE}
        action = "approve_no_return" if mode == "no_return" else "approve_pvz"
        bearers = [self.token("seller", f"op-{o}", SHOP) for o in range(OPERATORS)] + [self.key]
        return frame, (
            f"/api/v1/claims/{claim}/actions",
            {"action": action, "amount": PRICE},
            bearers,
        )

    async def run_bursts(self, report: Report) -> None:
        ops = self.operators
        ops_tokens = [self.token("seller", f"op-{o}", SHOP) for o in range(OPERATORS)] + [self.key]

        async def add(burst: Burst) -> None:
            report.bursts.append(burst)
            line(burst)

        # 1. Approvals with the refund at once.
        first = buyer = await self.buyer("buyer-approve")
        chat, claim = await self.claim(buyer, "buyer-approve")
        frame, http = self.approvals(claim, "no_return")
        sides = ops + buyer
        await add(await self.burst(
            "approve no_return", chat, claim, ops, frame, http,
            {"return.approved": 1, "refund.issued": 1}, listeners=sides, ledger=1,
        ))  # fmt: skip
        # 2. Approval with the goods' return, and the marketplace's logistics, the refund on
        # their arrival.
        buyer = await self.buyer("buyer-pvz")
        chat, claim = await self.claim(buyer, "buyer-pvz")
        frame, http = self.approvals(claim, "pvz")
        sides = ops + buyer
        await add(await self.burst(
            "approve pvz", chat, claim, ops, frame, http, {"return.approved": 1},
            listeners=sides,
        ))  # fmt: skip
        order = self.order_of[claim]
        for step, kinds, refunds in (
            ("handed_in", {"return.handed_in": 1}, 0),
            ("arrived", {"return.arrived": 1, "refund.issued": 1}, 1),
            ("inspected", {"return.inspected": 1}, 1),
        ):
            logistics = (f"/api/v1/orders/{order}/logistics", {"event": step}, [self.system])
            await add(await self.burst(
                f"logistics {step}", chat, claim, ops, None, logistics, kinds,
                listeners=sides, ledger=refunds,
            ))  # fmt: skip
        # 3. A rejection, the buyer's dispute, the managers' decision.
        buyer = await self.buyer("buyer-dispute")
        chat, claim = await self.claim(buyer, "buyer-dispute")
        sides = ops + buyer
        reject = {"type": "return.reject", "claim": claim, "reason": "Товар был в употреблении"}
        http = (
            f"/api/v1/claims/{claim}/actions",
            {"action": "reject", "reason": "Нет"},
            ops_tokens,
        )
        await add(await self.burst(
            "reject", chat, claim, ops, reject, http, {"return.rejected": 1}, listeners=sides,
        ))  # fmt: skip
        dispute = {"type": "return.dispute", "claim": claim}
        await add(await self.burst(
            "dispute", chat, claim, buyer, dispute, None, {"return.disputed": 1},
            listeners=sides,
        ))  # fmt: skip
        resolve = {
            "type": "return.resolve",
            "claim": claim,
            "decision": "approve",
            "mode": "no_return",
        }
        managers = [self.token("manager", f"mgr-{m}") for m in range(MANAGERS)]
        http = (
            f"/api/v1/claims/{claim}/actions",
            {"action": "resolve_approve_no_return"},
            managers,
        )
        await add(await self.burst(
            "resolve", chat, claim, self.managers, resolve, http,
            {"return.resolved": 1, "refund.issued": 1}, listeners=sides + self.managers, ledger=1,
        ))  # fmt: skip
        # 4. Approvals and rejections at once: one of them decides.
        buyer = await self.buyer("buyer-mixed")
        chat, claim = await self.claim(buyer, "buyer-mixed")
        sides = ops + buyer
        approve, http = self.approvals(claim, "no_return")
        # Which one wins decides what must be in the log: checked here, not by `burst`.
        mixed = await self.burst(
            "approve | reject",
            chat,
            claim,
            ops,
            None,
            http,
            None,
            listeners=sides,
            ledger=None,
            frames=[approve, {"type": "return.reject", "claim": claim}],
        )
        decided = mixed.appended
        if decided not in ({"return.approved": 1, "refund.issued": 1}, {"return.rejected": 1}):
            mixed.problems.append(f"appended {decided}: not exactly one decision")
        if mixed.ledger != decided.get("refund.issued", 0):
            mixed.problems.append(f"{mixed.ledger} ledger rows after {decided}")
        await add(mixed)
        # 5. Many different messages into one chat at once, from both sides on both nodes.
        chat = (await self.claim(buyer, "buyer-mixed"))[0]  # the same chat, a new order
        _BUYERS[chat] = "buyer-mixed"
        await add(await self.send_many(chat, ops + buyer, ops + buyer))
        # 6. One message, one nonce, from every socket of one operator on both nodes; and
        # one nonce of another operator sent into two chats at once.
        chat = (await self.claim(buyer, "buyer-mixed"))[0]  # the same chat, a new order
        mine = [h for h in ops if h.who == "op-1"]
        await add(
            await self.send_with_one_nonce("send, one nonce", "op-1", [chat], mine, ops + buyer)
        )
        other = (await self.claim(first, "buyer-approve"))[0]
        theirs = [h for h in ops if h.who == "op-2"]
        await add(
            await self.send_with_one_nonce(
                "send, one nonce, 2 chats", "op-2", [chat, other], theirs, ops + buyer + first
            )
        )

    async def send_many(self, chat: str, hands: list[Hand], listeners: list[Hand]) -> Burst:
        """`duplicates` different messages into one chat at once, from both sides' sockets on
        both nodes (one in eight over HTTP): every one appended and acked, none refused, and
        heard by every socket of the chat once and in order. Not duplicates: the contention
        of many writers on one chat, which the nodes settle by deciding again."""
        before = await self.head(chat)
        go = asyncio.Event()
        shots: list[Awaitable[str]] = []
        for i in range(self.duplicates):
            text = f"Сообщение номер {i}"
            hand = hands[i % len(hands)]
            if i % HTTP_EVERY == 0:
                role = "seller" if i % 2 == 0 else "buyer"
                who = f"op-{i % OPERATORS}" if role == "seller" else _BUYERS[chat]
                bearer = self.token(role, who, SHOP if role == "seller" else None)
                headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": f"many-{i}"}
                path = f"/api/v1/chats/{chat}/messages"
                node = self.node(i // HTTP_EVERY)
                shots.append(self._http_shot(go, node, path, {"text": text}, headers))
            else:
                frame = {"type": "send", "chat": chat, "text": text, "nonce": f"many-{i}"}
                shots.append(self._ws_shot(go, hand, frame))
        started = time.perf_counter()
        go.set()
        answers = await asyncio.gather(*shots)
        seconds = time.perf_counter() - started
        tally = Counter(answers)
        succeeded = sum(n for a, n in tally.items() if a in ("ack", "HTTP 201"))
        events = await self.log.events(chat, before)
        appended = Counter(kind for _seq, kind, _at in events)
        problems: list[str] = []
        if dict(appended) != {"message": self.duplicates}:
            problems.append(f"appended {dict(appended)}, expected {self.duplicates} messages")
        if succeeded != self.duplicates:
            problems.append(f"{self.duplicates - succeeded} messages refused: {dict(tally)}")
        seqs = [seq for seq, _kind, _at in events]
        if seqs != list(range(before + 1, before + 1 + len(seqs))):
            problems.append("the chat's seq has gaps or repeats")
        last = seqs[-1] if seqs else before
        heard = await self._heard_once(chat, before, last, events, listeners, problems)
        return Burst(
            name="send, many into one chat",
            sent=self.duplicates,
            answers=dict(tally.most_common()),
            succeeded=succeeded,
            appended=dict(appended),
            ledger=0,
            heard_once=heard,
            listeners=len(listeners),
            seconds=seconds,
            problems=problems,
        )

    async def send_with_one_nonce(
        self,
        name: str,
        operator: str,
        chats: list[str],
        hands: list[Hand],
        listeners: list[Hand],
    ) -> Burst:
        """`duplicates` copies of one `send` with one nonce (one `Idempotency-Key` over
        HTTP), spread over `chats`: one message in all must be appended, and every copy
        answered with its place."""
        text = f"Здравствуйте! Посмотрим ({name})."
        nonce = name.replace(" ", "-").replace(",", "")
        bearer = self.token("seller", operator, SHOP)
        before = {chat: await self.head(chat) for chat in chats}
        go = asyncio.Event()
        shots: list[Awaitable[tuple[str, Any]]] = []

        async def ws(hand: Hand, chat: str) -> tuple[str, Any]:
            await go.wait()
            frame = {"type": "send", "chat": chat, "text": text, "nonce": nonce}
            try:
                answer = await hand.wire.request(frame, within=ANSWER_WITHIN)
            except (ConnectionError, TimeoutError) as exc:
                return f"socket {type(exc).__name__}", None
            return _answer_of(answer), (answer.get("chat"), answer.get("seq"))

        async def over_http(node: Node, chat: str) -> tuple[str, Any]:
            await go.wait()
            headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": nonce}
            path = f"/api/v1/chats/{chat}/messages"
            try:
                response = await node.http.post(path, json={"text": text}, headers=headers)
            except httpx.HTTPError as exc:
                return f"HTTP {type(exc).__name__}", None
            if response.status_code not in (200, 201):
                return _http_answer(response), None
            done = response.json()
            return _http_answer(response), (done.get("chat"), done.get("seq"))

        for i in range(self.duplicates):
            chat = chats[i % len(chats)]
            if i % HTTP_EVERY == 0:
                shots.append(over_http(self.node(i // HTTP_EVERY), chat))
            else:
                shots.append(ws(hands[i % len(hands)], chat))
        started = time.perf_counter()
        go.set()
        answers = await asyncio.gather(*shots)
        seconds = time.perf_counter() - started
        tally = Counter(a for a, _ in answers)
        places = Counter(place for _a, place in answers if place is not None)
        appended: Counter[str] = Counter()
        per_chat = {chat: await self.log.events(chat, before[chat]) for chat in chats}
        for events in per_chat.values():
            appended.update(kind for _s, kind, _at in events)
        problems: list[str] = []
        if dict(appended) != {"message": 1}:
            problems.append(
                f"appended {dict(appended)} in {len(chats)} chats, expected one message"
            )
        if len(places) != 1 or sum(places.values()) != self.duplicates:
            problems.append(f"answered places {dict(places)}: not one place for every copy")
        if tally.get("HTTP 201", 0) + tally.get("ack", 0) < 1:
            problems.append("no copy was answered as the first")
        # The sides of each chat hear what was appended there once, and nothing elsewhere.
        heard = hearing = 0
        for chat, events in per_chat.items():
            sides = [h for h in listeners if h.who.startswith("op-") or chat in _chats_of(h)]
            hearing += len(sides)
            heard += await self._heard_once(
                chat, before[chat], before[chat] + 1, events, sides, problems
            )
        succeeded = sum(n for a, n in tally.items() if a in ("ack", "HTTP 200", "HTTP 201"))
        return Burst(
            name=name,
            sent=self.duplicates,
            answers=dict(tally.most_common()),
            succeeded=succeeded,
            appended=dict(appended),
            ledger=0,
            heard_once=heard,
            listeners=hearing,
            seconds=seconds,
            problems=problems,
        )

    # ---- deadlines ----------------------------------------------------------------------------

    async def run_deadlines(
        self,
        escalations: int,
        offers: int,
        deadline: float,
        triggers: list[Any],
    ) -> DeadlineRun:
        """Requests and offers made at once and left to fall due; at the deadline the nodes'
        loops, `triggers` (services of this process) and, for half of them, the operators
        or the buyer race."""
        made: list[tuple[str, str, str, list[Hand], bool]] = []  # chat, claim, buyer, hands, offer

        async def make(index: int, offer: bool) -> None:
            name = f"buyer-{'offer' if offer else 'late'}-{index}"
            hands = [await self._hand(name, self.token("buyer", name), index)]
            chat, claim = await self.claim(hands, name, offer=offer)
            made.append((chat, claim, name, hands, offer))

        await asyncio.gather(
            *(make(i, False) for i in range(escalations)), *(make(i, True) for i in range(offers))
        )
        # The deadline of each, from the event that started its wait.
        due: dict[str, datetime] = {}
        for chat, claim, _name, _hands, _offer in made:
            events = await self.log.events(chat)
            started = datetime.fromisoformat(events[-1][2])
            due[claim] = started + timedelta(seconds=deadline)
        # Half of the requests and half of the offers, each raced from its own moment between
        # 30 ms before its deadline and 30 ms after: some win, some lose.
        made.sort(key=lambda m: (m[4], m[2]))
        raced: dict[str, float] = {}
        for offer in (False, True):
            mine = [m[1] for m in made if m[4] == offer][::2]
            for j, claim in enumerate(mine):
                raced[claim] = -0.03 + 0.06 * j / max(1, len(mine) - 1)
        racers: Counter[str] = Counter()
        triggered: Counter[str] = Counter()

        async def at(moment: datetime, action: Callable[[], Awaitable[None]]) -> None:
            wait = (moment - datetime.now(moment.tzinfo)).total_seconds()
            await asyncio.sleep(max(0.0, wait))
            await action()

        async def race_approval(claim: str, k: int) -> None:
            hand = self.operators[k % len(self.operators)]
            frame = {"type": "return.approve", "claim": claim, "mode": "no_return", "amount": PRICE}
            try:
                racers[_answer_of(await hand.wire.request(frame, within=ANSWER_WITHIN))] += 1
            except (ConnectionError, TimeoutError) as exc:
                racers[f"socket {type(exc).__name__}"] += 1

        async def race_request(chat: str, claim: str, hands: list[Hand]) -> None:
            order = self.order_of[claim]
            frame = {"type": "return.request", "chat": chat, "order": order}
            try:
                racers[_answer_of(await hands[0].wire.request(frame, within=ANSWER_WITHIN))] += 1
            except (ConnectionError, TimeoutError) as exc:
                racers[f"socket {type(exc).__name__}"] += 1

        async def fire(service: Any, claim: str, offer: bool) -> None:
            from chatd.domain.errors import Rejection

            try:
                done = await (
                    service.expire_offer(claim) if offer else service.escalate_claim(claim)
                )
            except Exception as exc:  # counted and reported, never hidden
                triggered[f"raised {type(exc).__name__}"] += 1
                return
            if isinstance(done, Rejection):
                triggered[_refusal(done.code.value, done.message)] += 1
            else:
                triggered["done: " + ("expired" if offer else "escalated")] += 1

        plan: list[Awaitable[None]] = []
        for chat, claim, _name, hands, offer in made:
            when = due[claim]
            for t, service in enumerate(triggers):
                for shot in range(TRIGGER_SHOTS):
                    moment = when + timedelta(seconds=-0.02 + 0.025 * shot + 0.007 * t)
                    plan.append(at(moment, functools.partial(fire, service, claim, offer)))
            if claim in raced:
                for k in range(10):
                    moment = when + timedelta(seconds=raced[claim] + 0.005 * k)
                    if offer:
                        plan.append(at(moment, functools.partial(race_request, chat, claim, hands)))
                    else:
                        plan.append(at(moment, functools.partial(race_approval, claim, k)))
        await asyncio.gather(*plan)
        # Until every claim has its outcome: requests that won an offer's race fall due
        # `deadline` later, and both nodes look at least every 2 s. A claim with none by
        # then is reported below as it stands.
        last_due = max(due.values())
        limit = (last_due - datetime.now(last_due.tzinfo)).total_seconds() + deadline + 8.0
        give_up = time.monotonic() + max(limit, 8.0)
        while time.monotonic() < give_up:
            await asyncio.sleep(0.5)
            tails = [await self._tail(chat, offer) for chat, _c, _n, _h, offer in made]
            if all(
                tail in FINAL[offer]
                for tail, (_c, _cl, _n, _h, offer) in zip(tails, made, strict=True)
            ):
                break
        await asyncio.sleep(1.0)  # a second outcome would come now: give it the time
        outcomes: Counter[str] = Counter()
        late: list[float] = []
        problems: list[str] = []
        for chat, claim, _name, _hands, offer in made:
            events = await self.log.events(chat)
            tail = await self._tail(chat, offer)
            outcome = " + ".join(tail) or "nothing"
            outcomes[("offer: " if offer else "request: ") + outcome] += 1
            if tail not in FINAL[offer]:
                problems.append(f"claim {claim}: {tail}")
            refunds = await self.log.ledger(claim)
            if refunds != tail.count("refund.issued"):
                problems.append(f"claim {claim}: {refunds} ledger rows after {tail}")
            for _seq, kind, at_ in events:
                if kind in ("return.escalated", "return.expired") and tail[:1] == [kind]:
                    late.append((datetime.fromisoformat(at_) - due[claim]).total_seconds() * 1000)
        late.sort()
        late_ms = {"p50": statistics.median(late), "max": late[-1], "min": late[0]} if late else {}
        if late and late[0] < 0:
            problems.append(f"a deadline fired {-late[0]:.0f} ms early")
        return DeadlineRun(
            escalations=escalations,
            offers=offers,
            raced=len(raced),
            outcomes=dict(sorted(outcomes.items())),
            triggers=dict(triggered.most_common()),
            racers=dict(racers.most_common()),
            late_ms=late_ms,
            problems=problems,
        )


# The buyer of a chat the bursts write into, for their HTTP requests.
_BUYERS: dict[str, str] = {}


def _chats_of(hand: Hand) -> set[str]:
    """The chats a buyer's socket heard of."""
    return set(hand.ear.heard)


def line(burst: Burst) -> None:
    answers = ", ".join(f"{k} {v}" for k, v in burst.answers.items())
    appended = ", ".join(f"{k} {v}" for k, v in burst.appended.items()) or "nothing"
    mark = "ok" if not burst.problems else "FAIL"
    say(
        f"  {burst.name:18s} {burst.sent:5d} sent  {burst.succeeded:4d} done  "
        f"appended: {appended}  ledger {burst.ledger}  heard once {burst.heard_once}/"
        f"{burst.listeners}  {burst.seconds:6.2f} s  {mark}"
    )
    say(f"  {'':18s} answers: {answers}")
    for problem in burst.problems:
        say(f"  {'':18s} ! {problem}")


# ---- the cluster -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database(pg: str) -> AsyncIterator[str]:
    import asyncpg

    name = "chatd_races_" + secrets.token_hex(6)
    conn = await asyncpg.connect(pg, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = pg.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(pg, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def require_redis(url: str) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except RedisError as exc:
        # redis-py's ConnectionError is not the built-in one: said as one, so that the
        # program says "failed" and exits 2 (the run failed), not 1 with a traceback.
        raise ConnectionError(f"no Redis at {url}: {exc}") from exc
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def started(
    names: list[str], work: Path, secret: str, args: tuple[str, ...]
) -> AsyncIterator[list[Node]]:
    servers = [
        Server(db=work / f"{name}.db", secret=secret, extra_args=(*LIFTED, *args), name=name)
        for name in names
    ]
    try:
        await asyncio.gather(*(asyncio.to_thread(s.start, 60.0) for s in servers))
        async with contextlib.AsyncExitStack() as stack:
            nodes = []
            for name, server in zip(names, servers, strict=True):
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=server.http, timeout=ANSWER_WITHIN, limits=limits)
                )
                nodes.append(Node(name, server, client))
            yield nodes
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers))


@contextlib.asynccontextmanager
async def in_process_triggers(
    dsn: str | None, redis_url: str, deadline: float, count: int
) -> AsyncIterator[list[Any]]:
    """`count` services on the shared log, each with a store and a hub of its own: what more
    nodes would bring to the race, driven from here at the moment of each deadline."""
    if dsn is None or count == 0:
        yield []
        return
    from chatd.domain.rules import Rules
    from chatd.hub.redis import RedisHub
    from chatd.service import ChatService
    from chatd.store.postgres import PostgresStore

    rules = Rules(
        claim_deadline=timedelta(seconds=deadline), offer_deadline=timedelta(seconds=deadline)
    )
    services: list[ChatService] = []
    try:
        for _ in range(count):
            store = PostgresStore(dsn, pool_size=4)
            await store.open()
            hub = RedisHub(redis_url, store)
            await hub.start()
            services.append(ChatService(store, hub, rules, shared_log=True))
        yield services
    finally:
        for service in services:
            with contextlib.suppress(Exception):
                await service.hub.stop()
            with contextlib.suppress(Exception):
                await service.store.close()


async def run_store(store: str, options: argparse.Namespace, work: Path) -> Report:
    report = Report(store=store, nodes=2 if store == "postgres" else 1)
    started_at = time.perf_counter()
    secret = secrets.token_hex(32)
    deadline_args = (
        "--claim-deadline",
        f"{options.deadline:g}s",
        "--offer-deadline",
        f"{options.deadline:g}s",
    )
    async with contextlib.AsyncExitStack() as stack:
        if store == "postgres":
            await require_redis(options.redis)
            dsn: str | None = await stack.enter_async_context(postgres_database(options.pg))
            assert dsn is not None
            common: tuple[str, ...] = (
                "--store",
                dsn,
                "--hub",
                options.redis,
                "--files",
                str(work / "files"),
            )
            names = ["a", "b"]
            log = LogReader(dsn=dsn)
        else:
            dsn = None
            common = ()
            names = ["a"]
            log = LogReader(sqlite_path=work / "a.db")
        say(f"races on {store}: {len(names)} node(s), {options.duplicates} copies a burst")
        async with started(names, work, secret, common) as nodes:
            races = Races(nodes, secret, log, options.duplicates)
            try:
                await races.open()
                say(
                    f"  {len(races.operators)} operator sockets, {len(races.managers)} manager"
                    f" sockets, {BUYER_SOCKETS} sockets a buyer, on {', '.join(names)}"
                )
                if not options.no_bursts:
                    await races.run_bursts(report)
            finally:
                await races.close()
        if options.escalations or options.offers:
            say(
                f"  deadlines: {options.escalations} requests and {options.offers} offers,"
                f" due {options.deadline:g} s after they are made"
            )
            async with (
                started(names, work, secret, (*common, *deadline_args)) as nodes,
                in_process_triggers(
                    dsn, options.redis, options.deadline, options.triggers if dsn else 0
                ) as triggers,
            ):
                races = Races(nodes, secret, log, options.duplicates)
                try:
                    await races.open()
                    report.deadlines = await races.run_deadlines(
                        options.escalations, options.offers, options.deadline, triggers
                    )
                finally:
                    await races.close()
            deadline_lines(report.deadlines)
    report.seconds = time.perf_counter() - started_at
    return report


def deadline_lines(run: DeadlineRun) -> None:
    for outcome, count in run.outcomes.items():
        say(f"    {count:4d} × {outcome}")
    say(f"    the triggers in this process: {run.triggers}")
    say(f"    the racers at the deadline: {run.racers}")
    if run.late_ms:
        say(
            "    a deadline's event appended after its time: "
            f"p50 {run.late_ms['p50']:.0f} ms, min {run.late_ms['min']:.0f} ms,"
            f" max {run.late_ms['max']:.0f} ms"
        )
    for problem in run.problems:
        say(f"    ! {problem}")
    say(f"    {'ok' if not run.problems else 'FAIL'}")


async def run_all(options: argparse.Namespace) -> list[Report]:
    stores = ["postgres", "sqlite"] if options.store == "both" else [options.store]
    reports = []
    for store in stores:
        work = Path(tempfile.mkdtemp(prefix=f"chatd-races-{store}-", dir=options.workdir))
        try:
            reports.append(await run_store(store, options, work))
        finally:
            if options.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.races",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--duplicates", type=int, default=1000, help="copies a burst")
    parser.add_argument("--escalations", type=int, default=40, help="requests left to fall due")
    parser.add_argument("--offers", type=int, default=10, help="offers left to fall due")
    parser.add_argument("--deadline", type=float, default=4.0, help="seconds to a deadline")
    parser.add_argument(
        "--triggers", type=int, default=TRIGGERS, help="services of this process firing deadlines"
    )
    parser.add_argument("--no-bursts", action="store_true", help="the deadlines only")
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL to make a database in")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep databases and logs here")
    options = parser.parse_args(argv)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        reports = asyncio.run(run_all(options))
    except (OSError, RuntimeError, TimeoutError, ConnectionError) as exc:
        say(f"failed: {type(exc).__name__}: {exc}")
        return 2
    problems = [f"{r.store}: {p}" for r in reports for p in r.problems]
    for report in reports:
        say(f"{report.store}: {report.seconds:.1f} s, {'ok' if not report.problems else 'FAIL'}")
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {"ok": not problems, "problems": problems, "reports": [asdict(r) for r in reports]},
                ensure_ascii=False,
                indent=2,
            )
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
