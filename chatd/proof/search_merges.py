"""How long the writer's merge steps of the search index take as the index grows.

    python -m chatd.proof.search_merges [--texts 10000000] [--every 1000000] [--per-commit 10]

The writer merges FTS5's segments a bounded step at a time between two batches
(`chatd.store.sqlite_writer.merge_search_segments`), and every commit waits while a step
runs. A step is bounded in pages, but FTS5 ends it only where a new term begins: a term that
nearly every text holds is merged whole, and its list of texts grows with the index. This
program builds the index as the writer does, on a new database with chatd's own tables
(texts queued by each commit, moved into the index a slice at a time once the queue spans a
batch, one merge step after each commit while merging finds work), with the long run's
text in every message, and prints, for each `--every` texts: the index's size, the merge
steps taken, the longest, and how many took over 50 and over 100 ms. SQLite's syncs are off:
this measures the steps' own work, not the disk's.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatd.store import sqlite_schema as schema
from chatd.store.sqlite_writer import (
    SEARCH_INDEX_BATCH,
    SEARCH_INDEX_SLICE,
    index_queued_search,
    keep_search_merges_to_the_writer,
    merge_search_segments,
)

TEXT = "Здравствуйте! Подскажите, пожалуйста, когда будет отправка заказа? #{number}"
CHATS = 1000


@dataclass
class Steps:
    """The merge steps of one stretch of texts."""

    count: int = 0
    longest: float = 0.0
    over_50_ms: int = 0
    over_100_ms: int = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.longest = max(self.longest, seconds)
        self.over_50_ms += seconds > 0.05
        self.over_100_ms += seconds > 0.1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.search_merges",
        description="How long the writer's merge steps of the search index take as it grows.",
    )
    parser.add_argument("--texts", type=int, default=10_000_000, help="texts indexed in all")
    parser.add_argument("--every", type=int, default=1_000_000, help="texts per printed row")
    parser.add_argument("--per-commit", type=int, default=10, help="texts a commit queues")
    args = parser.parse_args(argv)
    if min(args.texts, args.every, args.per_commit) < 1:
        parser.error("--texts, --every and --per-commit must be at least 1")
    with tempfile.TemporaryDirectory(prefix="chatd-search-merges-") as workdir:
        run(Path(workdir) / "search.db", args.texts, args.every, args.per_commit)
    return 0


def run(path: Path, texts: int, every: int, per_commit: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    for statement in schema.PROJECTIONS.split(";"):
        if statement.strip():
            db.execute(statement)
    keep_search_merges_to_the_writer(db)
    print(f"{'texts':>11} {'index MiB':>10} {'steps':>7} {'longest ms':>11} {'>50 ms':>7} "
          f"{'>100 ms':>8}", flush=True)  # fmt: skip
    written = 0
    merge_owed = True
    stretch = Steps()
    started = time.monotonic()
    while written < texts:
        count = min(per_commit, texts - written)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO search_queue (pos, text, chat) VALUES (?, ?, ?)",
            (
                (pos, TEXT.format(number=pos), f"chat-{pos % CHATS}")
                for pos in range(written + 1, written + count + 1)
            ),
        )
        db.execute("COMMIT")
        written += count
        # Between two batches: a merge step while the last found work, else a slice of the
        # queue (as `WriterThread._tend_search_index`, without its pauses after a long step).
        if merge_owed:
            step_started = time.perf_counter()
            merge_owed = merge_search_segments(db)
            stretch.add(time.perf_counter() - step_started)
        else:
            indexed, _ = index_queued_search(
                db, at_least=SEARCH_INDEX_BATCH, most=SEARCH_INDEX_SLICE
            )
            merge_owed = indexed > 0
        if written % every == 0 or written == texts:
            size = sum(
                p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name)
            )
            print(
                f"{written:>11,} {size / 2**20:>10.0f} {stretch.count:>7} "
                f"{1000 * stretch.longest:>11.1f} {stretch.over_50_ms:>7} "
                f"{stretch.over_100_ms:>8}",
                flush=True,
            )
            stretch = Steps()
    db.close()
    print(f"{written:,} texts in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
