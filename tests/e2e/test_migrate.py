"""`chatd serve` on a database of the last release without schema versions migrates it at
start, says so in its log, and serves its events; on a database a newer chatd migrated it
does not start."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from chatd.domain.ids import ORDER_STREAM
from chatd.store.sqlite_migrations import latest
from protocol.events import decode_event
from tests.e2e.harness import SECRET, ServerProcess, connect, token
from tests.store.test_sqlite_migrations import previous_release

OPERATOR = token("seller", "op-anna", "Анна", seller="shop-kunchenko")
SVETLANA = token("buyer", "buyer-svetlana", "Светлана")


async def test_the_server_migrates_the_previous_release_and_serves_its_events(
    tmp_path: Path,
) -> None:
    db = previous_release(tmp_path / "chatd.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        old = [decode_event(bytes(b)) for (b,) in conn.execute("SELECT body FROM events")]
    server = ServerProcess(db=db, extra_args=("--log-level", "info"))
    server.start()
    try:
        async with connect(server, OPERATOR) as shop, connect(server, SVETLANA) as buyer:
            chats = (await shop.request({"type": "chats"}))["chats"]
            served = {}
            for chat in chats:
                page = await shop.request({"type": "history", "chat": chat["chat"]})
                served[chat["chat"]] = [(e["seq"], e["kind"]) for e in page["events"]]
            # The text was in the old release's second search index.
            found = await buyer.request({"type": "search", "q": "кардиган"})
    finally:
        server.stop()

    logged = server.log_path.read_text()
    assert f"schema version 0 → {latest()} (1: " in logged
    by_chat: dict[str, list[tuple[int, str]]] = {}
    for event in old:
        if not event.stream.startswith(ORDER_STREAM):
            by_chat.setdefault(event.stream, []).append((event.seq, event.kind))
    assert len(chats) == 6 and set(served) == set(by_chat)
    for chat, events in by_chat.items():
        # A claim's deadline that passed since the fixture was made adds events after these.
        assert served[chat][: len(events)] == events, chat
    assert [e["text"] for e in found["events"]] == [
        "Добрый день! Подскажите, кардиган сильно садится после стирки?"
    ]


def test_the_server_refuses_a_database_newer_than_it_with_one_line(tmp_path: Path) -> None:
    db = previous_release(tmp_path / "newer.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {latest() + 3}")
        conn.commit()

    done = subprocess.run(
        [sys.executable, "-m", "chatd", "serve", "--db", str(db), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHATD_SECRET": SECRET},
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"chatd serve: {db} is at schema version {latest() + 3}, newer than this chatd knows "
        f"({latest()}): run the chatd that migrated it (or a newer one), or restore a backup "
        "taken before that migration"
    ]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest() + 3
