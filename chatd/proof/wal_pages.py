"""How many WAL pages does one message cost, whose are they, and what do they cost the writer?

    python -m chatd.proof.wal_pages [--chats 500] [--history 20] [--messages 600]
        [--sync full|normal]

Every commit appends whole pages to SQLite's WAL: the pages of each table and index row the
commit touched. The WAL's bytes per message are what the disk writes for one message (and
what the checkpoint copies again later), and they follow the store's CPU: a page touched is
a page found, changed and written.

The program writes a log in process (`--chats` chats of one buyer and one shop, then
`--history` messages in each, so that the indexes are not empty), then, for 1, 3 and 10
messages a commit (1 is a quiet server; a busy one commits a few at a time), sends
`--messages` messages through `ChatService` (the server's own write path: decide, the
projection rows, the group commit) with the background checkpoint off and the WAL emptied
first. It prints the messages a commit held, the WAL frames and KiB written per message, and
the CPU the writer's thread spent per message (its own clock, user and system: the
statements, the commit with its fsync under `--sync full`, and its work between batches).
Texts reach the search index (FTS5) after their commits, a thousand or so at a time: the
index's pages for the phase's texts are written before its WAL is read, and counted.

A second table names the owners of those frames: each frame's page number, from its header
in the WAL, looked up in SQLite's `dbstat` table (the table or index a page belongs to), per
message. A page written twice in one phase counts twice, as the WAL holds it twice. Pages
change owners: indexing the queued texts empties the queue's pages onto the free list, and
later commits take them for other tables. So the frames the commits wrote are looked up
before that indexing, and the indexing's own frames after it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.service import ChatService
from chatd.store.sqlite import SqliteStore
from chatd.store.sqlite_writer import Synchronous, index_queued_search
from chatd.store.stats import StoreStats

_WAL_HEADER = 32
_FRAME_HEADER = 24
# A page `dbstat` names no table or index for: free by the time it is looked up, or new.
_NO_OWNER = "(free or new)"


def _wal_pages(path: Path, page_size: int) -> list[int]:
    """The page number of every frame in the WAL, in order (each frame's header starts with
    it, a big-endian 32-bit integer)."""
    wal = path.with_name(path.name + "-wal")
    if not wal.exists():
        return []
    data = wal.read_bytes()
    frame = _FRAME_HEADER + page_size
    return [
        int.from_bytes(data[start : start + 4], "big")
        for start in range(_WAL_HEADER, len(data) - frame + 1, frame)
    ]


def _page_owners(path: Path) -> dict[int, str]:
    """The table or index each page of the database belongs to, as of its WAL's end; empty
    when this SQLite was built without the `dbstat` table."""
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute("SELECT pageno, name FROM dbstat").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {int(page): _owner(str(name)) for page, name in rows}


def _owner(name: str) -> str:
    """A page owner's name as the schema says it: FTS5's shadow tables are one index."""
    if name.startswith("search_") and name != "search_queue":
        return "search (FTS5 index)"
    if name == "sqlite_autoindex_events_1":
        return "events (stream, seq)"
    return name


def _writer_cpu(db: sqlite3.Connection) -> tuple[float, float]:
    """The calling thread's CPU seconds so far, user and system (run on the writer's)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


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
        # Each message with a nonce of its own, as the clients send them: the nonce's row
        # is one of the pages a message writes.
        self.sent = 0

    async def open(self) -> None:
        for buyer, shop in self.pairs:
            opened = await self.service.open_chat(self._buyer(buyer), shop, None)
            assert not isinstance(opened, Rejection), opened

    async def send(self, index: int, text: str) -> None:
        buyer, shop = self.pairs[index % len(self.pairs)]
        self.sent += 1
        nonce = f"n{self.sent}"
        done = await self.service.send(self._buyer(buyer), chat_id(buyer, shop), text, [], nonce)
        assert not isinstance(done, Rejection), done

    @staticmethod
    def _buyer(buyer: str) -> Actor:
        return Actor(role="buyer", id=buyer, name=buyer)


class Phase:
    """What one phase (messages sent some at a time) wrote, per message."""

    def __init__(self, per_commit: int, messages: int) -> None:
        self.per_commit = per_commit
        self.messages = messages
        self.held = 0.0  # messages a commit held
        # Each frame's page and the table or index that page belonged to when it was written.
        self.frames_by_owner: Counter[str] = Counter()
        self.frame_count = 0
        self.page_size = 4096
        self.cpu_user = 0.0
        self.cpu_system = 0.0

    @property
    def frames(self) -> float:
        return self.frame_count / self.messages

    @property
    def kib(self) -> float:
        return self.frames * self.page_size / 1024

    def count(self, pages: list[int], owners: dict[int, str]) -> None:
        self.frame_count += len(pages)
        self.frames_by_owner.update(owners.get(page, _NO_OWNER) for page in pages)


async def measure(
    chats: int, history: int, messages: int, workdir: Path, sync: Synchronous
) -> list[Phase]:
    path = workdir / "pages.db"
    batches = Batches()
    # No checkpoint and no restart of the WAL during a phase: its file is then all the phase
    # wrote.
    store = SqliteStore(
        path,
        synchronous=sync,
        checkpoint_interval=3600.0,
        wal_checkpoint_bytes=2**62,
        wal_restart_bytes=2**62,
        stats=batches,
    )
    await store.open()
    service = ChatService(store, LocalHub(), Rules())
    shops = Shops(service, chats)
    phases: list[Phase] = []
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
        sent = 0
        for per_commit in (1, 3, 10):
            rounds = messages // per_commit
            phase = Phase(per_commit, rounds * per_commit)
            phase.page_size = _empty_the_wal(path)
            batches.sizes.clear()
            user, system = await store._writer.run(_writer_cpu)
            for _ in range(rounds):
                await asyncio.gather(
                    *(
                        shops.send(sent + k, f"посылка пришла вовремя, спасибо {sent + k}")
                        for k in range(per_commit)
                    )
                )
                sent += per_commit
            committed = _wal_pages(path, phase.page_size)
            phase.count(committed, _page_owners(path))
            # What the queue's indexing will write for these texts, counted now.
            await store._writer.run(index_queued_search)
            user_after, system_after = await store._writer.run(_writer_cpu)
            phase.cpu_user = (user_after - user) / phase.messages
            phase.cpu_system = (system_after - system) / phase.messages
            indexed = _wal_pages(path, phase.page_size)[len(committed) :]
            phase.count(indexed, _page_owners(path))
            # The first of the messages sent together commits alone, the others wait for
            # it and share the next commit: the mean is what the commits held.
            phase.held = sum(batches.sizes) / len(batches.sizes)
            phases.append(phase)
    finally:
        await store.close()
    _report(chats, history, sync, phases)
    return phases


def _report(chats: int, history: int, sync: str, phases: list[Phase]) -> None:
    print(
        f"chatd wal_pages: {chats} chats, {chats * history} messages before,"
        f" {phases[0].page_size // 1024} KiB pages, synchronous={sync}"
    )
    print(
        f"{'sent together':>14} {'messages a commit':>18} {'WAL frames a message':>21}"
        f" {'KiB a message':>14} {'writer CPU µs a message':>24} {'of it system':>13}"
    )
    for phase in phases:
        cpu = (phase.cpu_user + phase.cpu_system) * 1e6
        print(
            f"{phase.per_commit:>14} {phase.held:>18.1f} {phase.frames:>21.1f}"
            f" {phase.kib:>14.1f} {cpu:>24.0f} {phase.cpu_system * 1e6:>13.0f}"
        )
    counts = [phase.frames_by_owner for phase in phases]
    if all(set(count) <= {_NO_OWNER} for count in counts):
        # Without `dbstat` no page has an owner.
        print("(this SQLite has no dbstat table: the frames' owners are not known)")
        return
    names = sorted(set().union(*counts), key=lambda name: -counts[0][name])
    print()
    print("WAL frames a message, by the table or index the page belongs to")
    header = "".join(f"{f'{phase.per_commit} a commit':>14}" for phase in phases)
    print(f"{'':>24}{header}")
    for name in names:
        cells = "".join(
            f"{count[name] / phase.messages:>14.2f}"
            for phase, count in zip(phases, counts, strict=True)
        )
        print(f"{name:>24}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.wal_pages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatd-wal-pages-") as workdir:
        asyncio.run(measure(args.chats, args.history, args.messages, Path(workdir), args.sync))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
