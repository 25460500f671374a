"""How many WAL pages does one message cost? The store's write amplification, counted.

    python -m chatd.proof.wal_pages [--chats 500] [--history 20] [--messages 600]

Every commit appends whole pages to SQLite's WAL: the pages of each table and index row the
commit touched. The WAL's bytes per message are what the disk writes for one message (and
what the checkpoint copies again later), and they follow the store's CPU: a page touched is
a page found, changed and written.

The program writes a log in process (`--chats` chats of one buyer and one shop, then
`--history` messages in each, so that the indexes are not empty), then, for 1, 3 and 10
messages a commit (1 is a quiet server; a busy one commits a few at a time), sends
`--messages` messages through `ChatService` (the server's own write path: decide, the
projection rows, the group commit) with the background checkpoint off and the WAL emptied
first. It prints the messages a commit held and the WAL frames and KiB written per message.
Texts reach the search index (FTS5) after their commits, a thousand or so at a time: the
index's pages for the phase's texts are written before its WAL is read, and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
from pathlib import Path

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.service import ChatService
from chatd.store.sqlite import SqliteStore
from chatd.store.sqlite_writer import index_queued_search
from chatd.store.stats import StoreStats

_WAL_HEADER = 32
_FRAME_HEADER = 24


def _wal_frames(path: Path, page_size: int) -> int:
    wal = path.with_name(path.name + "-wal")
    if not wal.exists():
        return 0
    return max(0, (wal.stat().st_size - _WAL_HEADER) // (_FRAME_HEADER + page_size))


def _empty_the_wal(path: Path) -> int:
    """Checkpoints and truncates the WAL (the store's writer is idle between sends); the
    page size."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(db.execute("PRAGMA page_size").fetchone()[0])


class Batches(StoreStats):
    """The sizes of the group commit's batches."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.sizes.append(batch_size)


class Shops:
    """`chats` chats of one buyer and one shop each, and who writes in them."""

    def __init__(self, service: ChatService, chats: int) -> None:
        self.service = service
        self.pairs = [(f"buyer-{n}", f"shop-{n % 50}") for n in range(chats)]

    async def open(self) -> None:
        for buyer, shop in self.pairs:
            opened = await self.service.open_chat(self._buyer(buyer), shop, None)
            assert not isinstance(opened, Rejection), opened

    async def send(self, index: int, text: str) -> None:
        buyer, shop = self.pairs[index % len(self.pairs)]
        done = await self.service.send(self._buyer(buyer), chat_id(buyer, shop), text, [], None)
        assert not isinstance(done, Rejection), done

    @staticmethod
    def _buyer(buyer: str) -> Actor:
        return Actor(role="buyer", id=buyer, name=buyer)


async def measure(chats: int, history: int, messages: int, workdir: Path) -> None:
    path = workdir / "pages.db"
    batches = Batches()
    # No checkpoint and no restart of the WAL during a phase: its file is then all the phase
    # wrote.
    store = SqliteStore(
        path,
        synchronous="normal",
        checkpoint_interval=3600.0,
        wal_checkpoint_bytes=2**62,
        wal_restart_bytes=2**62,
        stats=batches,
    )
    await store.open()
    service = ChatService(store, LocalHub(), Rules())
    shops = Shops(service, chats)
    try:
        await shops.open()
        for round_ in range(history):
            await asyncio.gather(
                *(
                    shops.send(n, f"куртка порвалась, заказ {round_} когда придёт")
                    for n in range(chats)
                )
            )
        await store._writer.run(index_queued_search)
        print(f"chatd wal_pages: {chats} chats, {chats * history} messages before, 4 KiB pages")
        print(
            f"{'sent together':>14} {'messages a commit':>18} {'WAL frames a message':>21}"
            f" {'KiB a message':>14}"
        )
        sent = 0
        for per_commit in (1, 3, 10):
            page_size = _empty_the_wal(path)
            batches.sizes.clear()
            rounds = messages // per_commit
            for _ in range(rounds):
                await asyncio.gather(
                    *(
                        shops.send(sent + k, f"посылка пришла вовремя, спасибо {sent + k}")
                        for k in range(per_commit)
                    )
                )
                sent += per_commit
            # What the queue's indexing will write for these texts, counted now.
            await store._writer.run(index_queued_search)
            frames = _wal_frames(path, page_size) / (rounds * per_commit)
            kib = frames * page_size / 1024
            # The first of the messages sent together commits alone, the others wait for
            # it and share the next commit: the mean is what the commits held.
            mean = sum(batches.sizes) / len(batches.sizes)
            print(f"{per_commit:>14} {mean:>18.1f} {frames:>21.1f} {kib:>14.1f}")
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.wal_pages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--messages", type=int, default=600)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatd-wal-pages-") as workdir:
        asyncio.run(measure(args.chats, args.history, args.messages, Path(workdir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
