"""Does one heavy reader stall everyone's reads? A bystander's `history` under heavy searches
and long replays.

    python -m chatd.proof.read_stall [--seconds 6] [--replays 16] [--searchers 3]
                                     [--server-path DIR]

The program writes a log in process first (a shop of 100 chats and 8 000 events, 30 000 more
messages in ten other shops, and one bystander buyer with a chat of 50 messages), then starts
`chatd serve` on it and times the bystander's `history` (50 events, one request every 10 ms)
through four phases of `--seconds` each:

- quiet: nothing else runs;
- searches: `--searchers` sockets each send, one after the other without a pause, the search
  of the outside attack (120 one-letter words, 256 characters) and a search for one letter
  (the costliest query the bounds still allow), as a shop of 100 chats and as a buyer with
  no chat;
- replays: `--replays` sockets of the big shop's operators say `hello{since: <start of the
  log>}`, take the 8 000 events, and say it again;
- both at once.

It prints the bystander's p50, p99 and max per phase, and how many searches and replays ran.
`--server-path DIR` runs the server from another checkout (`git archive COMMIT | tar -x -C
DIR`): the code before a change, or a copy with another setting (a replay page, say).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chatd import cursor
from chatd.client.tokens import mint
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.launcher import Server
from chatd.proof.wire import Frame, wire
from chatd.service import ChatService
from chatd.store.sqlite import SqliteStore

LIFTED = ("--rate", "1e6", "--burst", "1e6", "--user-rate", "1e6", "--user-burst", "1e6")
BIG_SHOP = "shop-big"
BYSTANDER = "buyer-bystander"
LONELY = "buyer-with-no-chats"
_LETTERS = random.Random(12)
ATTACK = " ".join(_LETTERS.choice("абвгдежзиклмнопрстуфхцчшэюя") for _ in range(128))[:256]
WORDS = [
    "куртка",
    "размер",
    "доставка",
    "возврат",
    "пункт",
    "заказ",
    "брак",
    "фото",
    "чек",
    "деньги",
    "курьер",
    "упаковка",
    "цвет",
    "ткань",
    "шов",
    "молния",
    "пуговица",
    "карман",
    "рукав",
    "подкладка",
    "капюшон",
    "ремень",
    "сумка",
    "обувь",
    "подошва",
]


# ---- the log -------------------------------------------------------------------------------


def _text(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12)))


async def _talk(service: ChatService, buyer: str, shop: str, messages: int, seed: int) -> None:
    rnd = random.Random(seed)
    who = Actor(role="buyer", id=buyer, name=buyer)
    opened = await service.open_chat(who, shop, None)
    assert not isinstance(opened, Rejection), opened
    operator = Actor(role="seller", id=f"op-{shop}", name="Оператор", shop=shop)
    chat = chat_id(buyer, shop)
    for i in range(messages):
        sender = who if i % 2 == 0 else operator
        done = await service.send(sender, chat, _text(rnd), [], None)
        assert not isinstance(done, Rejection), done


async def write_log(db: Path) -> None:
    store = SqliteStore(db, synchronous="normal")
    await store.open()
    service = ChatService(store, LocalHub(), Rules())
    try:
        talks = [_talk(service, f"buyer-big-{i}", BIG_SHOP, 79, i) for i in range(100)]
        talks += [_talk(service, f"buyer-{i}", f"shop-{i % 10}", 100, 1000 + i) for i in range(300)]
        talks.append(_talk(service, BYSTANDER, "shop-0", 50, 7))
        # A few dozen chats at a time: enough to fill the group commit's batches.
        for start in range(0, len(talks), 40):
            await asyncio.gather(*talks[start : start + 40])
    finally:
        await store.close()


# ---- the load ------------------------------------------------------------------------------


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bystander(url: str, secret: str, chat: str, until: float) -> list[float]:
    token = mint(secret, role="buyer", sub=BYSTANDER, name="Прохожий")
    took: list[float] = []
    async with wire(url, token) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            answer = await client.request({"type": "history", "chat": chat, "limit": 50})
            took.append(time.perf_counter() - started)
            assert answer["type"] == "history", answer
            await asyncio.sleep(0.01)
    return took


async def searcher(url: str, secret: str, index: int, until: float, counts: dict[str, int]) -> None:
    if index % 2 == 0:
        token = mint(secret, role="seller", sub=f"op-s{index}", name="Оп", seller=BIG_SHOP)
    else:
        token = mint(secret, role="buyer", sub=LONELY, name="Никто")
    async with wire(url, token) as client:
        n = 0
        while time.monotonic() < until:
            query = ATTACK if n % 2 == 0 else "к"
            answer = await client.request({"type": "search", "q": query}, within=120)
            counts[answer["type"]] = counts.get(answer["type"], 0) + 1
            n += 1


async def replayer(url: str, secret: str, index: int, until: float, start: str) -> int:
    token = mint(secret, role="seller", sub=f"op-r{index}", name="Оп", seller=BIG_SHOP)
    replays = 0
    while time.monotonic() < until:
        synced = asyncio.Event()

        def on_push(frame: Frame, _at: float, synced: asyncio.Event = synced) -> None:
            if frame.get("type") == "synced":
                synced.set()

        async with wire(url, token, since=start, on_push=on_push, max_size=None):
            await asyncio.wait_for(synced.wait(), 120)
        replays += 1
    return replays


async def phase(
    name: str, server: Server, secret: str, args: argparse.Namespace, start: str, chat: str
) -> dict[str, Any]:
    until = time.monotonic() + args.seconds
    counts: dict[str, int] = {}
    loads: list[asyncio.Task[Any]] = []
    if name in ("searches", "both"):
        loads += [
            asyncio.create_task(searcher(server.url, secret, i, until, counts))
            for i in range(args.searchers)
        ]
    if name in ("replays", "both"):
        loads += [
            asyncio.create_task(replayer(server.url, secret, i, until, start))
            for i in range(args.replays)
        ]
    await asyncio.sleep(0.3 if loads else 0)  # let the load get going
    took = await bystander(server.url, secret, chat, until)
    results = await asyncio.gather(*loads)
    replays = sum(r for r in results if isinstance(r, int))
    ms = [t * 1000 for t in took]
    return {
        "phase": name,
        "n": len(ms),
        "p50": statistics.median(ms),
        "p99": _percentile(ms, 0.99),
        "max": max(ms),
        "searches": counts,
        "replays": replays,
    }


async def measure(args: argparse.Namespace, work: Path) -> None:
    db = work / "chatd.db"
    started = time.monotonic()
    await write_log(db)
    print(f"log written in {time.monotonic() - started:.1f} s")
    store = SqliteStore(db)
    await store.open()
    start = cursor.make(store.log_id, 0)
    await store.close()
    secret = secrets.token_hex(32)
    if args.server_path:
        # The child imports chatd from the other checkout: PYTHONPATH ahead of the editable
        # install, and a working directory that is not this checkout (`-m` puts it first).
        os.environ["PYTHONPATH"] = args.server_path
        os.chdir(work)
    server = Server(db=db, secret=secret, extra_args=LIFTED)
    with server:
        chat = chat_id(BYSTANDER, "shop-0")
        for name in ("quiet", "searches", "replays", "both"):
            row = await phase(name, server, secret, args, start, chat)
            print(
                f"{row['phase']:9s} bystander history: n={row['n']:4d}  p50 {row['p50']:7.1f} ms"
                f"  p99 {row['p99']:7.1f} ms  max {row['max']:7.1f} ms"
                f"  searches {row['searches']}  replays {row['replays']}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--replays", type=int, default=16)
    parser.add_argument("--searchers", type=int, default=3)
    parser.add_argument("--server-path", default="")
    parser.add_argument("--keep", action="store_true", help="keep the database directory")
    args = parser.parse_args()
    if args.server_path:
        args.server_path = str(Path(args.server_path).resolve())
    work = Path(tempfile.mkdtemp(prefix="chatd-read-stall-"))
    try:
        asyncio.run(measure(args, work))
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                for path in sorted(work.rglob("*"), reverse=True):
                    path.unlink() if path.is_file() else path.rmdir()
                work.rmdir()
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
