"""The SQLite store: the shared contract, and what only SQLite promises (WAL, group commit,
acked events surviving a kill -9 of the process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from chatd.search_text import found_in, query_words
from chatd.store import sqlite as sqlite_store_module
from chatd.store import sqlite_schema, sqlite_writer
from chatd.store.base import EventStore, SearchTooBroad, Stored
from chatd.store.group_commit import MarkWrite
from chatd.store.rows import ChatActivityRow, ChatRow, LedgerRow, Row, SearchRow
from chatd.store.sqlite import READERS, SqliteStore
from chatd.store.stats import StoreStats
from tests.store.contract import (
    ChatScript,
    EventLogContract,
    KeyStoreContract,
    OpenStore,
    ReadModelContract,
    WebhookStoreContract,
    party,
    plain_request,
)
from tests.store.shop_work_contract import HiddenKindsContract, OperatorStoreContract
from tests.store.templates_contract import TemplateStoreContract

ROOT = Path(__file__).resolve().parents[2]

Ack = tuple[str, int, int]  # stream, first seq, last seq


class TestSqliteStore(
    EventLogContract,
    ReadModelContract,
    KeyStoreContract,
    WebhookStoreContract,
    HiddenKindsContract,
    OperatorStoreContract,
    TemplateStoreContract,
):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        async def open_store(name: str) -> EventStore:
            store = SqliteStore(tmp_path / f"{name}.db")
            await store.open()
            return store

        return open_store


class CountingStats(StoreStats):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.batches.append(batch_size)


async def read_log(path: Path) -> list[Stored]:
    store = SqliteStore(path)
    await store.open()
    try:
        found: list[Stored] = []
        while page := await store.read_all(found[-1].pos if found else 0, 5000):
            found.extend(page)
        return found
    finally:
        await store.close()


def integrity(path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("PRAGMA integrity_check"))


async def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.append(plain_request("c1", 0))
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


def wal_frames(path: Path) -> int:
    """Frames in the WAL file (32-byte header, then 24-byte frame headers and pages)."""
    wal = path.with_name(path.name + "-wal")
    with sqlite3.connect(path) as db:
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
    return max(0, (wal.stat().st_size - 32) // (24 + page)) if wal.exists() else 0


async def test_the_wal_is_checkpointed_beside_the_writer_and_stays_small(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, checkpoint_interval=0.05)
    await store.open()
    try:
        sizes = []
        for burst in range(12):
            await asyncio.gather(
                *(store.append(plain_request(f"c{burst}-{n}", 0)) for n in range(150))
            )
            # The checkpoint comes from its own task, not from a commit: give it its turn.
            await asyncio.sleep(0.3)
            sizes.append(wal_frames(path))
        with sqlite3.connect(path) as db:
            # What the writer committed reached the database file: a new connection reading
            # with the WAL checkpointed (busy, frames in the WAL, frames checkpointed).
            busy, in_wal, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        await store.close()

    # Checkpointed, the WAL starts over after each burst; without checkpoints it grows with
    # every burst (to more than 3 times the first burst's size here).
    assert max(sizes) <= 2 * sizes[0], sizes
    assert busy == 0 and in_wal == copied
    assert len(await read_log(path)) == 12 * 150


class _Bursts:
    """Bursts of 100 appends at once, each to a chat of its own: a batch or two each."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.count = 0

    async def commit(self) -> float:
        """The seconds until the whole burst was answered."""
        self.count += 1
        started = time.monotonic()
        await asyncio.gather(
            *(self._store.append(plain_request(f"c{self.count}-{n}", 0)) for n in range(100))
        )
        return time.monotonic() - started


async def _wal_sizes_under_steady_commits(
    path: Path, restart_bytes: int, checkpoint_bytes: int = 2**62, hold_bytes: int = 2**62
) -> tuple[list[int], int]:
    """The WAL's size after each of 60 bursts of appends that follow each other with no
    pause at all, while the background checkpoint runs as often as it can: a load that never
    gives the WAL a quiet moment to start over in; and how often the writer started it over
    with a RESTART."""
    store = SqliteStore(
        path,
        checkpoint_interval=0.01,
        wal_restart_bytes=restart_bytes,
        wal_checkpoint_bytes=checkpoint_bytes,
        wal_hold_bytes=hold_bytes,
    )
    await store.open()
    wal = path.with_name(path.name + "-wal")
    bursts = _Bursts(store)
    sizes = []
    try:
        for _ in range(60):
            await bursts.commit()
            sizes.append(wal.stat().st_size)
        assert len(await store.read_all(0, 10_000)) == 6000
    finally:
        await store.close()
    return sizes, store.wal_restarts


async def test_the_wal_stays_bounded_under_commits_that_never_stop(tmp_path: Path) -> None:
    bound = 256 * 1024
    bounded, restarts = await _wal_sizes_under_steady_commits(tmp_path / "bounded.db", bound)
    # The writer starts the WAL over once it passes the bound: it never grows past the bound
    # and one batch's pages (a burst here writes well under 1 MiB), and it was the writer's
    # doing. (Whether SQLite finds a quiet moment to start the WAL over by itself depends on
    # the machine's timing, so the size without the writer's restarts is no fixed figure: on
    # a quiet machine it grows several times past this bound, on a busy one less.)
    assert max(bounded) < bound + 1024 * 1024, bounded
    assert restarts >= 1
    assert len(await read_log(tmp_path / "bounded.db")) == 6000
    _, never = await _wal_sizes_under_steady_commits(tmp_path / "unbounded.db", 2**62)
    assert never == 0


async def test_the_writers_passive_checkpoints_start_the_wal_over_without_restarts(
    tmp_path: Path,
) -> None:
    # Between two batches no commit can land, so the writer's PASSIVE checkpoint copies the
    # whole WAL, and the next batch starts it over: bounded with no RESTART, which would
    # wait for readers.
    bound = 128 * 1024
    hold = 1024 * 1024
    sizes, restarts = await _wal_sizes_under_steady_commits(
        tmp_path / "passive.db", 2**62, checkpoint_bytes=bound, hold_bytes=hold
    )
    # Without them it grew to ~3 MiB here (less on a busy machine: see the test above). The
    # copier copies beside the commits, which go on meanwhile; should it fall behind, the
    # writer copies what is left once the WAL passes WAL_CATCH_UP_FACTOR times the bound,
    # and should a copy be slow (a busy disk), it waits for it past `hold`. Nothing else
    # bounds the WAL here: no burst's commits (well under 512 KiB) may take it further.
    assert max(sizes) < hold + 512 * 1024, sizes
    assert restarts == 0
    assert len(await read_log(tmp_path / "passive.db")) == 6000


async def test_a_slow_copy_of_the_wal_into_the_database_holds_up_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint ends with the database file's fsync, which a busy disk can stretch to
    # seconds. The bulk of the copying runs beside the commits: while a copy is held up here
    # (as by such an fsync), commits keep landing; once it is done, the writer copies what
    # came since and the WAL starts over.
    held = threading.Event()
    release = threading.Event()
    copy = sqlite_writer.WalCopier._run

    def slow_copy(copier: sqlite_writer.WalCopier) -> bool:
        copied = copy(copier)
        held.set()
        release.wait(20)
        return copied

    monkeypatch.setattr(sqlite_writer.WalCopier, "_run", slow_copy)
    path = tmp_path / "slow.db"
    wal = path.with_name(path.name + "-wal")
    store = SqliteStore(path, checkpoint_interval=3600, wal_checkpoint_bytes=128 * 1024)
    await store.open()
    bursts = _Bursts(store)
    try:
        while not held.is_set() and bursts.count < 200:
            await bursts.commit()
        assert held.is_set(), "no copy began"
        checkpoints_before = store.wal_checkpoints
        while_held = [await bursts.commit() for _ in range(40)]
        grown = wal.stat().st_size
        # Nothing waited for the copy, and the writer did not copy the WAL itself meanwhile.
        assert max(while_held) < 2.0, while_held
        assert store.wal_checkpoints == checkpoints_before
        release.set()
        sizes = [grown]
        for _ in range(100):
            await bursts.commit()
            sizes.append(wal.stat().st_size)
            if sizes[-1] < grown:
                break
    finally:
        release.set()
        await store.close()

    assert grown > 512 * 1024, grown
    # Started over and trimmed back to WAL_SIZE_LIMIT, by the writer's checkpoint of the rest
    # (the WAL being past WAL_CATCH_UP_FACTOR times the bound by then).
    assert sizes[-1] <= sqlite_writer.WAL_SIZE_LIMIT + 256 * 1024, sizes
    assert store.wal_checkpoints > checkpoints_before and store.wal_copies >= 1
    assert len(await read_log(path)) == 100 * bursts.count


async def test_a_copy_held_up_past_the_hold_bound_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk slower than the commits cannot be outrun: once the WAL passes the hold bound
    # while a copy runs, the writer waits for the copy, and the WAL stays bounded.
    release = threading.Event()
    copy = sqlite_writer.WalCopier._run

    def slow_copy(copier: sqlite_writer.WalCopier) -> bool:
        release.wait(20)
        return copy(copier)

    monkeypatch.setattr(sqlite_writer.WalCopier, "_run", slow_copy)
    path = tmp_path / "held.db"
    wal = path.with_name(path.name + "-wal")
    hold = 1024 * 1024
    store = SqliteStore(
        path, checkpoint_interval=3600, wal_checkpoint_bytes=128 * 1024, wal_hold_bytes=hold
    )
    await store.open()
    bursts = _Bursts(store)
    try:
        # Bursts are answered while the WAL is short of the bound; the first to take it
        # past is answered only once the copy is let go (the writer waits for it after the
        # batch, before it answers).
        while True:
            waiting = asyncio.ensure_future(bursts.commit())
            done, _ = await asyncio.wait([waiting], timeout=2)
            if not done:
                break
            assert wal.stat().st_size < hold
            assert bursts.count < 200, "the WAL never passed the bound"
        assert wal.stat().st_size >= hold
        assert store.wal_copy_waits == 0
        release.set()
        await waiting
        sizes = []
        for _ in range(20):
            await bursts.commit()
            sizes.append(wal.stat().st_size)
    finally:
        release.set()
        await store.close()

    assert store.wal_copy_waits >= 1 and store.wal_copy_wait_seconds >= 0.4
    assert max(sizes) < hold + 512 * 1024, sizes
    assert len(await read_log(path)) == 100 * bursts.count


async def test_a_reader_holding_the_wal_does_not_slow_every_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backup or an export reads one snapshot for its whole run, and the writer's RESTART
    # waits RESTART_WAIT_MS for it in vain: once it found the reader there, it leaves the WAL
    # alone for a while (longer after each try in vain) rather than wait after every batch.
    monkeypatch.setattr(sqlite_writer, "RESTART_RETRY_SECONDS", 0.3)
    path = tmp_path / "held.db"
    store = SqliteStore(path, checkpoint_interval=3600, wal_restart_bytes=64 * 1024)
    await store.open()
    try:
        await store.append(plain_request("c-first", 0))
        restarts_before = store.wal_restarts
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM events").fetchone()  # holds its snapshot
            for n in range(60):
                await store.append(plain_request(f"c-held-{n}", 0))
            held = store._writer.wal_restart_seconds
            reader.execute("COMMIT")
        restarts_while_held = store.wal_restarts - restarts_before
        await asyncio.sleep(0.35)
        for n in range(5):
            await store.append(plain_request(f"c-after-{n}", 0))
    finally:
        await store.close()

    # 60 batches past the bound: waiting after each would be 60 * 50 ms = 3 s.
    assert restarts_while_held == 0, (restarts_while_held, held)
    assert held < 1.0, held
    # The reader gone, the next try starts the WAL over.
    assert store.wal_restarts > restarts_before


async def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    stats = CountingStats()
    store = SqliteStore(tmp_path / "chat.db", stats=stats)
    await store.open()
    try:
        appended = await asyncio.gather(
            *(store.append(plain_request(f"c{n}", 0)) for n in range(200))
        )
    finally:
        await store.close()

    assert len(appended) == 200
    assert sum(stats.batches) == 200
    assert len(stats.batches) <= 20
    assert max(stats.batches) >= 10


async def test_a_commit_takes_at_most_max_batch_requests(tmp_path: Path) -> None:
    stats = CountingStats()
    store = SqliteStore(tmp_path / "chat.db", max_batch=16, stats=stats)
    await store.open()
    try:
        await asyncio.gather(*(store.append(plain_request(f"c{n}", 0)) for n in range(100)))
        await asyncio.gather(*(store.set_read_mark(f"c{n}", "buyer", 1) for n in range(20)))
    finally:
        await store.close()

    assert sum(stats.batches) == 120
    assert max(stats.batches) == 16
    assert len(stats.batches) >= 120 // 16


def one_refund(claim: str) -> list[Row]:
    """Rows that book a refund of `claim`."""
    at = datetime(2023, 3, 4, tzinfo=UTC)
    return [LedgerRow(claim, "o1", "u1", "s1", 100, "RUB", at, "A-1", "Шарф", "Возврат")]


async def test_a_failure_while_retrying_a_batch_fails_it_and_the_writer_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "chat.db")
    await store.open()
    try:

        async def failing_retry(requests: object, marks: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store._commits, "_write_one_by_one", failing_retry)
        # Two refunds of one claim in one commit make it retry append by append.
        clashing = [plain_request(f"c{n}", 0, rows=one_refund("r1")) for n in range(2)]
        results = await asyncio.wait_for(
            asyncio.gather(*(store.append(r) for r in clashing), return_exceptions=True), 5
        )
        monkeypatch.undo()
        after = await asyncio.wait_for(store.append(plain_request("c3", 0)), 5)
    finally:
        await store.close()

    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert [item.event.stream for item in after.events] == ["c3"]


def run_and_kill(path: Path, log: Path, acks_wanted: int) -> list[Ack]:
    """Starts the crash writer on `path`, reads its acks until `acks_wanted`, kills it with
    SIGKILL, and returns every ack it printed in full."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("ab") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_writer", str(path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
            env=env,
        )
    assert child.stdout is not None
    lines: list[bytes] = []
    try:
        while len(lines) < acks_wanted:
            line = child.stdout.readline()
            if not line.endswith(b"\n"):
                break  # the child died on its own: the assertion below shows its stderr
            lines.append(line)
        os.kill(child.pid, signal.SIGKILL)
        # What it printed before the kill was acked too; a torn last line was not.
        lines.extend(child.stdout.read().splitlines(keepends=True))
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, log.read_text()
    assert len(lines) >= acks_wanted, log.read_text()
    acks: list[Ack] = []
    for line in lines:
        if line.endswith(b"\n"):
            stream, first, last = line.decode().split()
            acks.append((stream, int(first), int(last)))
    return acks


@pytest.mark.timeout(90)
async def test_acked_events_survive_kill_9_exactly_once_and_gapless(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    acked: list[Ack] = []
    heads: list[dict[str, int]] = []
    for _ in range(3):
        acked += await asyncio.to_thread(run_and_kill, path, tmp_path / "child.log", 400)

        log = await read_log(path)
        found = Counter((item.event.stream, item.event.seq) for item in log)
        streams: defaultdict[str, list[int]] = defaultdict(list)
        for stream, seq in found:
            streams[stream].append(seq)

        assert integrity(path) == [("ok",)]
        assert [item.pos for item in log] == sorted({item.pos for item in log})
        assert all(times == 1 for times in found.values())
        for stream, first, last in acked:
            for seq in range(first, last + 1):
                assert (stream, seq) in found, f"acked {stream} seq {seq} is lost"
        for stream, stream_seqs in streams.items():
            assert sorted(stream_seqs) == list(range(1, len(stream_seqs) + 1)), stream
        assert "shared" in streams
        heads.append({stream: max(s) for stream, s in streams.items()})

    # Every run carried on where the previous one ended.
    for earlier, later in pairwise(heads):
        assert all(later[stream] > head for stream, head in earlier.items())


def _vm_steps(db: sqlite3.Connection, work: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions `work` took, in hundreds."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.set_progress_handler(count, 100)
    try:
        work()
    finally:
        db.set_progress_handler(None, 100)
    return steps


def test_the_writer_finds_a_streams_head_without_reading_the_stream(tmp_path: Path) -> None:
    # Every batch asks for the last seq of each stream it appends to; reading a stream's
    # events to find it makes every commit slower as chats grow.
    db = sqlite3.connect(tmp_path / "heads.db", isolation_level=None)
    db.executescript(sqlite_schema.LOG)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO events (pos, stream, seq, kind, side, has_text, body)"
        " VALUES (?, ?, ?, 'message', 'buyer', 1, x'00')",
        [(n, f"c{n % 10}", n // 10 + 1) for n in range(1, 20_001)],
    )
    db.execute("COMMIT")
    heads: dict[str, int] = {}
    steps = _vm_steps(db, lambda: heads.update(sqlite_writer._heads(db, {"c1", "c2", "new"})))
    assert heads == {"c1": 2000, "c2": 2000}
    assert steps < 20, f"{steps * 100} instructions to find 3 heads among 20 000 events"


def test_the_writer_reads_the_search_queues_span_from_its_ends(tmp_path: Path) -> None:
    # After every batch the writer asks how far the queued texts span; reading the whole
    # queue to answer cost each batch ~90 µs with a thousand texts queued.
    db = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)
    db.executescript(sqlite_schema.PROJECTIONS)
    db.executemany(
        "INSERT INTO search_queue (pos, text, chat) VALUES (?, 'посылка пришла', 'c1')",
        [(n,) for n in range(1, 901)],
    )
    outcome: list[tuple[int, bool]] = []
    steps = _vm_steps(
        db, lambda: outcome.append(sqlite_writer.index_queued_search(db, at_least=1000))
    )
    assert outcome == [(0, True)]
    assert steps < 5, f"{steps * 100} instructions to find the span of 900 queued texts"


def test_the_writer_looks_up_nonces_and_marks_by_key_not_by_scanning(tmp_path: Path) -> None:
    # Every batch looks up its nonces and read marks; a scan of the whole table there makes
    # every commit slower as the log grows.
    db = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
    db.executescript(sqlite_schema.LOG)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO nonces (user, nonce, stream, seq, pos) VALUES (?, ?, 'c', ?, ?)",
        [(f"u{n % 100}", f"n{n}", n, n) for n in range(20_000)],
    )
    db.executemany(
        "INSERT INTO read_marks (chat, side, seq) VALUES (?, 'buyer', 1)",
        [(f"c{n}",) for n in range(20_000)],
    )
    db.execute("COMMIT")
    keys = [("u1", "n1"), ("u2", "n2"), ("u9", "missing")]
    found: dict[tuple[str, str], tuple[str, int, int]] = {}
    steps = _vm_steps(db, lambda: found.update(sqlite_writer._nonces(db, keys)))
    assert found == {("u1", "n1"): ("c", 1, 1), ("u2", "n2"): ("c", 2, 2)}
    assert steps < 20, f"{steps * 100} instructions to find 3 nonces among 20 000"
    marks = [MarkWrite("c5", "buyer", 7), MarkWrite("c6", "buyer", 0)]
    values: list[int] = []
    steps = _vm_steps(db, lambda: values.extend(sqlite_writer._write_marks(db, marks)))
    assert values == [7, 1]
    assert steps < 20, f"{steps * 100} instructions to set 2 read marks among 20 000"


async def test_a_commit_queues_its_texts_and_a_search_indexes_the_queue_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "search.db"
    store = SqliteStore(path)
    await store.open()
    try:
        chat = ChatScript(party("u1", "Анна"), party("s1", "Магазин"))
        await chat.append(store, chat.opened())
        for n in range(5):
            await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        with sqlite3.connect(path) as db:
            before = _search_tables(db)
        found = await store.search("b:u1", ["пришла"], None, 100)
        with sqlite3.connect(path) as db:
            after = _search_tables(db)
    finally:
        await store.close()

    # Committed texts wait in the queue, and the search that asks indexes them first.
    assert before == (5, 0)
    assert [s.event.text for s in found] == [f"посылка{n} пришла" for n in reversed(range(5))]
    assert after == (0, 5)


async def test_the_writer_indexes_the_queue_once_it_spans_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    store = SqliteStore(path, search_index_batch=10)
    await store.open()
    try:
        chat = ChatScript(party("u1", "Анна"), party("s1", "Магазин"))
        await chat.append(store, chat.opened())
        for n in range(25):
            await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        with sqlite3.connect(path) as db:
            queued, indexed = _search_tables(db)
        one = await store.search("s:s1", ["посылка7"], None, 100)
    finally:
        await store.close()

    assert 0 < queued < 10 and indexed >= 15 and queued + indexed == 25
    assert [s.event.text for s in one] == ["посылка7 пришла"]


async def test_the_writer_indexes_the_queue_a_slice_at_a_time(tmp_path: Path) -> None:
    # Every commit waits while the writer indexes: between two batches it moves at most a
    # slice of the queue, oldest first, however long the queue has grown.
    path = tmp_path / "search.db"
    store = SqliteStore(path, search_index_batch=10, search_index_slice=4)
    await store.open()
    moved: list[int] = []
    try:
        chat = ChatScript(party("u1", "Анна"), party("s1", "Магазин"))
        await chat.append(store, chat.opened())
        with contextlib.closing(sqlite3.connect(path)) as db:
            before = _search_tables(db)
            for n in range(60):
                await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
                after = _search_tables(db)
                moved.append(after[1] - before[1])
                before = after
            oldest_queued = db.execute("SELECT min(pos) FROM search_queue").fetchone()[0]
            newest_indexed = db.execute("SELECT max(rowid) FROM search").fetchone()[0]
        found = await store.search("s:s1", ["посылка"], None, 100)
    finally:
        await store.close()

    assert max(moved) == 4 and sum(moved) >= 40
    assert newest_indexed < oldest_queued
    assert len(found) == 60


async def test_a_search_finds_a_text_committed_while_the_writer_merges(tmp_path: Path) -> None:
    # After a slice emptied the queue, the writer's next upkeep is a merge step, which does
    # not look at the queue: the text that batch queued must still be found by a search.
    store = SqliteStore(tmp_path / "search.db", search_index_batch=2)
    await store.open()
    try:
        chat = ChatScript(party("u1"), party("s1"))
        await chat.append(store, chat.opened())
        await chat.append(store, chat.from_buyer("посылка пришла"))
        await chat.append(store, chat.from_buyer("куртка порвалась"))  # the queue indexed
        await chat.append(store, chat.from_buyer("свитер маловат"))  # a merge step after it
        found = await store.search("s:s1", ["свитер"], None, 10)
    finally:
        await store.close()
    assert [s.event.text for s in found] == ["свитер маловат"]


def _index_segments(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(DISTINCT segid) FROM search_idx").fetchone()[0])


async def test_the_writer_merges_the_index_a_step_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FTS5's own merging runs inside a write and once in a while takes tens of milliseconds;
    # it is off, and the writer merges a bounded step between two batches instead. Without
    # those steps every slice stays a segment of its own until FTS5's crisis merge.
    async def segments_after_slices(path: Path) -> int:
        store = SqliteStore(path, search_index_batch=2, search_index_slice=2)
        await store.open()
        try:
            chat = ChatScript(party("u1"), party("s1"))
            await chat.append(store, chat.opened())
            # 14 slices: below the 16 segments at which FTS5 merges in a crisis.
            for n in range(28):
                await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        finally:
            await store.close()
        return _index_segments(path)

    merged = await segments_after_slices(tmp_path / "merged.db")
    with contextlib.closing(sqlite3.connect(tmp_path / "merged.db")) as db:
        config = dict(db.execute("SELECT k, v FROM search_config").fetchall())
    monkeypatch.setattr(sqlite_writer, "merge_search_segments", lambda db, pages=0: False)
    unmerged = await segments_after_slices(tmp_path / "unmerged.db")

    assert config["automerge"] == 0
    assert merged <= 4 and unmerged >= 12


async def test_after_a_long_merge_step_the_writer_writes_batches_before_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A step that merges the doclist of a word nearly every text holds takes 12-16 ms, and a
    # few such words make as many steps: one after every batch, commits queued behind each
    # would wait behind the next too. After a long step, batches go first for a while.
    # Longer than in the writer, so that a busy machine cannot make a quick step a slow one.
    slow_step, pause = 0.05, 0.2
    monkeypatch.setattr(sqlite_writer, "SEARCH_MERGE_SLOW_STEP_SECONDS", slow_step)
    monkeypatch.setattr(sqlite_writer, "SEARCH_MERGE_PAUSE_SECONDS", pause)
    steps: list[float] = []
    took = slow_step * 1.2

    def merge(db: sqlite3.Connection, pages: int = 0) -> bool:
        steps.append(time.monotonic())
        time.sleep(took)
        return True  # more to merge

    monkeypatch.setattr(sqlite_writer, "merge_search_segments", merge)
    store = SqliteStore(tmp_path / "merge.db")
    await store.open()
    try:
        batches = 0
        until = time.monotonic() + 3.5 * pause
        while time.monotonic() < until:
            await store.append(plain_request(f"slow{batches}", 0))
            batches += 1
        slow = list(steps)
        took = 0.0  # short steps: once the last pause is over, one after every batch
        await asyncio.sleep(1.5 * pause)
        for n in range(4):
            await store.append(plain_request(f"quick{n}", 0))
    finally:
        await store.close()
    assert 2 <= len(slow) < batches
    assert all(later - earlier >= pause for earlier, later in pairwise(slow))
    assert len(steps) == len(slow) + 4


async def test_a_database_with_the_older_second_index_keeps_every_text(tmp_path: Path) -> None:
    # Databases written before the queue kept their newest texts in a second FTS5 index,
    # `search_recent`; opening one moves them into `search`.
    path = tmp_path / "search.db"
    store = SqliteStore(path)
    await store.open()
    chat = ChatScript(party("u1", "Анна"), party("s1", "Магазин"))
    try:
        await chat.append(store, chat.opened())
        for n in range(6):
            await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        await store.search("b:u1", ["пришла"], None, 100)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE VIRTUAL TABLE search_recent USING fts5"
            " (text, chat UNINDEXED, tokenize = 'unicode61 remove_diacritics 0')"
        )
        db.execute(
            "INSERT INTO search_recent (rowid, text, chat)"
            " SELECT rowid, text, chat FROM search WHERE text LIKE 'посылка3%'"
            " OR text LIKE 'посылка4%' OR text LIKE 'посылка5%'"
        )
        db.execute("DELETE FROM search WHERE rowid IN (SELECT rowid FROM search_recent)")
        # The schema version before the queue (chatd.store.sqlite_migrations, step 2).
        db.execute("PRAGMA user_version = 1")
        db.commit()

    store = SqliteStore(path)
    await store.open()
    try:
        found = await store.search("b:u1", ["пришла"], None, 100)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert [s.event.text for s in found] == [f"посылка{n} пришла" for n in reversed(range(6))]
    assert "search_recent" not in tables


def _search_tables(db: sqlite3.Connection) -> tuple[int, int]:
    """(texts queued, texts indexed)."""
    queued = db.execute("SELECT count(*) FROM search_queue").fetchone()[0]
    indexed = db.execute("SELECT count(*) FROM search").fetchone()[0]
    return int(queued), int(indexed)


# ---- search cost ---------------------------------------------------------------------------


async def _talk(store: EventStore, chat: ChatScript, text: str, count: int) -> None:
    await chat.append(store, chat.opened())
    for start in range(0, count, 500):
        await chat.append(store, *(chat.from_buyer(text) for _ in range(min(500, count - start))))


async def test_a_search_in_a_chat_matches_only_texts_that_hold_its_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Matching is Python on the event loop (~4 µs a text): 2 000 texts read in one go held
    # every socket ~8 ms. SQLite drops the texts that lack a token of the query.
    store = SqliteStore(tmp_path / "search.db")
    await store.open()
    matched: list[str] = []
    real_found_in = found_in

    def counting_found_in(query: list[list[str]], text: str) -> bool:
        matched.append(text)
        return real_found_in(query, text)

    monkeypatch.setattr(sqlite_store_module, "found_in", counting_found_in)
    try:
        chat = ChatScript(party("u1"), party("s1"))
        await _talk(store, chat, "куртка порвалась", 900)
        await chat.append(store, chat.from_buyer("А свитер тоже порвался"))
        await _talk(store, chat, "куртка порвалась", 100)
        found = await store.search("s:s1", ["свитер"], chat.stream, 50)
        assert [hit.event.text for hit in found] == ["А свитер тоже порвался"]
        assert matched == ["а свитер тоже порвался"]  # one text of 1 001 reached Python
        matched.clear()
        assert await store.search("s:s1", ["пальто"], chat.stream, 50) == []
        assert matched == []
    finally:
        await store.close()


async def test_a_search_in_a_chat_reads_candidates_in_pages_and_lets_other_work_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "куртк" is in every text below, but starts a word in none of them: every text is a
    # candidate that `found_in` turns down, a page at a time.
    store = SqliteStore(tmp_path / "search.db")
    await store.open()
    turns = 0
    seen_at: list[int] = []  # the other task's turns, as each candidate was matched
    real_found_in = found_in

    def counting_found_in(query: list[list[str]], text: str) -> bool:
        seen_at.append(turns)
        return real_found_in(query, text)

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(sqlite_store_module, "found_in", counting_found_in)
    try:
        chat = ChatScript(party("u1"), party("s1"))
        await _talk(store, chat, "мини-юбка и полукуртка", 1_000)
        ticking = asyncio.create_task(other_work())
        try:
            found = await store.search("s:s1", ["куртк"], chat.stream, 50)
        finally:
            ticking.cancel()
    finally:
        await store.close()
    assert found == []
    assert len(seen_at) == 1_000  # every text a candidate, none found
    # Texts matched with no turn of the other task between them: at most a page.
    runs = Counter(seen_at)
    assert max(runs.values()) <= sqlite_store_module.CANDIDATE_PAGE
    assert len(runs) >= 5


async def test_a_search_in_a_chat_finds_the_newest_hits_across_pages_queued_or_indexed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "search.db")
    await store.open()
    try:
        chat = ChatScript(party("u1"), party("s1"))
        await chat.append(store, chat.opened())
        texts = [f"Куртка №{n}" if n % 3 == 0 else f"Полукуртка №{n}" for n in range(1, 700)]
        await chat.append(store, *(chat.from_buyer(text) for text in texts[:400]))
        await store._writer.index_search_queue()  # the first 400 indexed
        await chat.append(store, *(chat.from_buyer(text) for text in texts[400:]))
        queued = await store._fetch("SELECT count(*) FROM search_queue")
        assert queued[0][0] == 299  # the rest still queued
        expected = [text for text in reversed(texts) if text.startswith("Куртка")]
        found = await store.search("s:s1", ["куртк"], chat.stream, 150)
        assert [hit.event.text for hit in found] == expected[:150]
        found = await store.search("s:s1", ["куртк"], chat.stream, 1_000)
        assert [hit.event.text for hit in found] == expected  # all 233, both sources
        found = await store.search("s:s1", ["куртка", "69"], chat.stream, 50)
        numbers = [699, 696, 693, 690, 69]
        assert [hit.event.text for hit in found] == [f"Куртка №{n}" for n in numbers]
    finally:
        await store.close()


async def test_a_search_by_a_user_without_chats_never_reaches_the_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "search.db")
    await store.open()
    try:
        await _talk(store, ChatScript(party("u1"), party("s1")), "куртка порвалась", 20)
        statements: list[str] = []
        for reader in store._readers:
            await reader.set_trace_callback(statements.append)
        assert await store.search("b:nobody", ["куртк"], None, 50) == []
        assert await store.search("s:no-shop", ["куртк"], None, 50) == []
        assert await store.search("m", ["куртк"], None, 50) == []  # nothing disputed
        assert await store.search("b:u1", ["куртк"], "no-such-chat", 50) == []
        untouched = [s for s in statements if "MATCH" in s]
        found = await store.search("b:u1", ["куртк"], None, 50)
    finally:
        await store.close()
    assert untouched == []
    assert len(found) == 20


async def test_a_search_past_its_budget_is_refused_and_a_users_chats_bound_its_work(
    tmp_path: Path,
) -> None:
    # 4 000 matching texts in one shop, between two of u1's in a chat with another shop: u1's
    # chats span the whole log, and every match in the span is read before it is refused as
    # another's. u2's chat spans a few positions at the end of the log.
    store = SqliteStore(tmp_path / "search.db", search_budget=30_000)
    await store.open()
    try:
        early = ChatScript(party("u1"), party("s2"))
        await _talk(store, early, "куртка пришла", 1)
        await _talk(store, ChatScript(party("crowd"), party("s1")), "куртка порвалась", 4000)
        await early.append(store, early.from_buyer("куртка снова пришла"))
        await _talk(store, ChatScript(party("u2"), party("s3")), "куртка пришла", 1)
        with pytest.raises(SearchTooBroad):
            await store.search("b:u1", ["куртк"], None, 50)
        # Without the span of u2's chat, this query would walk the same 4 000 matches.
        narrow = [s.event.text for s in await store.search("b:u2", ["куртк"], None, 50)]
        # The interrupted reader went back to the pool with its budget lifted: every reader
        # answers, a search and a long read alike.
        for _ in range(2 * READERS):
            assert len(await store.search("b:u2", ["пришл"], None, 50)) == 1
            assert (
                len(await store.read_stream(ChatScript(party("crowd"), party("s1")).stream)) > 4000
            )
    finally:
        await store.close()
    assert narrow == ["куртка пришла"]


async def test_a_read_does_not_wait_for_a_reader_held_by_another(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "readers.db")
    await store.open()
    try:
        chat = ChatScript(party("u1"), party("s1"))
        await _talk(store, chat, "привет", 3)
        held = asyncio.Event()
        release = asyncio.Event()

        async def heavy_reader() -> None:
            # Stands for a long search or replay page: it has a reader until released.
            async with store._reading():
                held.set()
                await release.wait()

        holder = asyncio.create_task(heavy_reader())
        await held.wait()
        # With one reader for all, this read would wait for the release, which never comes
        # before it: wait_for's limit only keeps a regression from hanging the suite.
        page = await asyncio.wait_for(store.read_stream(chat.stream), 10)
        release.set()
        await holder
    finally:
        await store.close()
    assert len(page) == 4


async def test_a_failure_between_batches_is_not_the_batchs_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch has committed when the writer's upkeep runs: were its failure taken for the
    # batch's, the appends would be retried and written twice.
    def failing_index(
        db: sqlite3.Connection, at_least: int = 1, most: int | None = None
    ) -> tuple[int, bool]:
        raise sqlite3.OperationalError("database is locked")

    def failing_merge(db: sqlite3.Connection, pages: int = 0) -> bool:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(sqlite_writer, "index_queued_search", failing_index)
    monkeypatch.setattr(sqlite_writer, "merge_search_segments", failing_merge)
    store = SqliteStore(tmp_path / "upkeep.db")
    await store.open()
    try:
        appended = await asyncio.gather(
            *(store.append(plain_request(f"c{n}", 0)) for n in range(5))
        )
        log = await store.read_all(0, 100)
    finally:
        await store.close()
    assert all(not a.duplicate and a.events for a in appended)
    assert sorted(s.event.stream for s in log) == [f"c{n}" for n in range(5)]


async def test_a_search_in_one_chat_costs_what_the_chat_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # u1's chat spans the whole log, 4 000 matching texts of another chat between its two.
    # Through the index the span is all a chat's search can bound, so the one-chat search
    # read the 4 000 and was refused past its budget; the chat's own texts are two.
    store = SqliteStore(tmp_path / "search.db", search_budget=30_000)
    await store.open()
    try:
        mine = ChatScript(party("u1"), party("s2"))
        await _talk(store, mine, "куртка пришла", 1)
        await _talk(store, ChatScript(party("crowd"), party("s1")), "куртка порвалась", 4000)
        await mine.append(store, mine.from_shop("Куртку_XL отправим завтра, №42"))
        await mine.append(store, mine.from_buyer("куртка с браком"))

        async def texts(words: list[str], key: str = "b:u1") -> list[str | None]:
            found = await store.search(key, words, mine.stream, 50)
            return [s.event.text for s in found]

        assert await texts(["куртк"]) == [
            "куртка с браком",
            "Куртку_XL отправим завтра, №42",
            "куртка пришла",
        ]
        read_in_the_chat = {
            query: await texts(query_words(query))
            for query in ("куртк", "куртку xl", "xl", "42", "отправ завт", "брак", "пальто", "_")
        }
        assert read_in_the_chat["пальто"] == read_in_the_chat["_"] == []
        assert await texts(["куртк"], key="b:u2") == []  # not u2's chat
        assert await texts(["куртк"], key="s:s2") != []  # the shop's
        # The same answers as the index gives for the chat (made to answer it, under a budget
        # it can afford), so the chat's texts are read as the index reads them.
        monkeypatch.setattr("chatd.store.sqlite.SCAN_CHAT_EVENTS", 0)
        store._search_budget = 10**9
        for query, answer in read_in_the_chat.items():
            assert await texts(query_words(query)) == answer, query
        # And a search over all of a user's chats still goes through the index.
        store._search_budget = 30_000
        with pytest.raises(SearchTooBroad):
            await store.search("b:u1", ["куртк"], None, 50)
    finally:
        await store.close()


async def test_a_search_in_one_chat_reads_the_queued_texts_without_indexing_them(
    tmp_path: Path,
) -> None:
    # Emptying the queue is a transaction of the writer's, and every commit waits behind it:
    # three searches a second in the long run made three such stalls a second.
    path = tmp_path / "search.db"
    store = SqliteStore(path)
    await store.open()
    try:
        chat = ChatScript(party("u1", "Анна"), party("s1", "Магазин"))
        await chat.append(store, chat.opened())
        for n in range(3):
            await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        await store.search("b:u1", ["пришла"], None, 100)  # all of them indexed
        for n in range(3, 5):
            await chat.append(store, chat.from_buyer(f"посылка{n} пришла"))
        with sqlite3.connect(path) as db:
            before = _search_tables(db)
        found = await store.search("b:u1", ["пришла"], chat.stream, 100)
        with sqlite3.connect(path) as db:
            after = _search_tables(db)
    finally:
        await store.close()
    assert before == after == (2, 3)
    assert [s.event.text for s in found] == [f"посылка{n} пришла" for n in reversed(range(5))]


async def test_a_slow_commit_is_logged_with_where_its_time_went(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writer, "SLOW_LINE_EVERY_SECONDS", 0.0)
    path = tmp_path / "chatd.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.append(plain_request("warm", 0))
        # Another process holds the database's write lock for 0.3 s: the batch waits for it.
        other = sqlite3.connect(path, timeout=5)
        other.execute("BEGIN IMMEDIATE")
        releasing = asyncio.get_running_loop().call_later(0.3, other.rollback)
        with caplog.at_level("WARNING", logger=sqlite_writer.__name__):
            await store.append(plain_request("late", 0))
            releasing.cancel()
            other.close()
            # Under the bound, no line (a bound no commit reaches: a commit's fsync alone can
            # take over 100 ms on a busy machine).
            monkeypatch.setattr(sqlite_writer, "SLOW_STEP_SECONDS", 60.0)
            before = len(caplog.records)
            await store.append(plain_request("quick", 0))
            assert len(caplog.records) == before
    finally:
        await store.close()
    slow = [r.getMessage() for r in caplog.records if "slow commit" in r.getMessage()]
    waited = [m for m in slow if int(m.split("(the write lock ")[1].split(",")[0]) >= 250]
    assert len(waited) == 1, slow
    assert waited[0].startswith("slow commit: 1 appends and 0 read marks took "), slow


async def test_a_slow_step_between_batches_is_logged_with_what_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every step counts as slow here, and none is held back.
    monkeypatch.setattr(sqlite_writer, "SLOW_STEP_SECONDS", 0.0)
    monkeypatch.setattr(sqlite_writer, "SLOW_LINE_EVERY_SECONDS", 0.0)
    store = SqliteStore(tmp_path / "chatd.db")
    await store.open()
    writer = store._writer
    try:
        with caplog.at_level("WARNING", logger=sqlite_writer.__name__):
            await asyncio.gather(*(store.append(plain_request(f"c{n}", 0)) for n in range(10)))
            # The writer's own copy of the WAL's tail, as it runs between two batches.
            await writer.run(lambda db: writer._checkpoint_passively(db, time.monotonic()))
    finally:
        await store.close()
    steps = [r.getMessage() for r in caplog.records]
    checkpoint = "slow step of the writer between batches: the writer's checkpoint of "
    assert any(m.startswith(checkpoint) and " WAL pages took " in m for m in steps), steps
    assert any(m.startswith("slow commit: ") and "appends and 0 read marks" in m for m in steps)


async def test_a_batch_writes_every_row_and_a_chat_written_twice_keeps_its_later_activity(
    tmp_path: Path,
) -> None:
    """Every row of a large batch is written, and a chat appended to twice in one batch ends
    with its later activity (the rows are written in the order of the appends)."""

    class Batches(StoreStats):
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def observe_commit(self, seconds: float, batch_size: int) -> None:
            self.sizes.append(batch_size)

    path = tmp_path / "chatd.db"
    batches = Batches()
    store = SqliteStore(path, stats=batches)
    await store.open()
    since = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

    def opening(chat: str) -> list[Row]:
        return [
            ChatRow(chat, f"b-{chat}", "Анна", "shop", "Магазин"),
            ChatActivityRow(chat, 1, since, None),
            SearchRow(1, chat, f"первое {chat}"),
        ]

    try:
        # 77 chats opened in one batch, and one of them written to again in the same batch,
        # after its first append.
        chats = [f"c{n}" for n in range(77)]
        appends = [
            store.append(plain_request(chat, 0, keys=(f"k-{chat}",), rows=opening(chat)))
            for chat in chats
        ]
        again = plain_request("c5", 1, keys=("k-c5",), rows=[ChatActivityRow("c5", 2, None, 2)])
        done = await asyncio.gather(*appends, store.append(again))
        assert done[-1].seq == 2
        assert 78 in batches.sizes, batches.sizes  # one batch: both of c5's appends in it
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        rows = dict(
            (chat, (seq, since_, managers))
            for chat, seq, since_, managers in db.execute(
                "SELECT chat, last_seq, waiting_since, managers_from FROM chats"
            )
        )
        assert len(rows) == 77
        assert rows["c5"] == (2, None, 2)
        assert rows["c6"] == (1, since.isoformat(), None)
        assert db.execute("SELECT count(*) FROM feed").fetchone() == (78,)
        assert db.execute("SELECT count(*) FROM events").fetchone() == (78,)
        queued = db.execute("SELECT count(*) FROM search_queue").fetchone()[0]
        indexed = db.execute("SELECT count(*) FROM search").fetchone()[0]
        assert queued + indexed == 77
        (last_pos,) = db.execute("SELECT last_pos FROM chats WHERE chat = 'c5'").fetchone()
        (newest,) = db.execute("SELECT max(pos) FROM events WHERE stream = 'c5'").fetchone()
        assert last_pos == newest
    finally:
        db.close()


async def test_slow_lines_come_at_most_once_a_period_and_count_those_held_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A saturated server's batches are all slow: one line a period, not one a commit.
    monkeypatch.setattr(sqlite_writer, "SLOW_STEP_SECONDS", 0.0)
    monkeypatch.setattr(sqlite_writer, "SLOW_LINE_EVERY_SECONDS", 1.5)
    monkeypatch.setattr(sqlite_writer, "_slow_lines", sqlite_writer._SlowLines())
    store = SqliteStore(tmp_path / "chatd.db")
    await store.open()
    try:
        with caplog.at_level("WARNING", logger=sqlite_writer.__name__):
            for n in range(5):
                await store.append(plain_request(f"c{n}", 0))
            first = len(caplog.records)
            await asyncio.sleep(1.6)
            await store.append(plain_request("after", 0))
    finally:
        await store.close()
    lines = [r.getMessage() for r in caplog.records if "slow" in r.getMessage()]
    assert first == 1, lines
    assert "(the write lock" in lines[0] and "0 more held back)" in lines[0], lines
    # Five commits, each with a step after it, in the first period: all but the first line
    # held back, and counted in the next.
    held = int(lines[1].rsplit("; ", 1)[-1].split()[0].lstrip("("))
    assert held >= 4, lines
