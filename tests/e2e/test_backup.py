"""A backup taken while a running server takes messages over its sockets, restored: it opens,
passes integrity_check, holds every event up to its position and none after, and a server
started on it answers as the same server does after `chatd rebuild` of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import Client, ServerProcess, connect, open_claim, token, uid

# Limits far above the load, so that every send is taken.
UNLIMITED = ("--rate", "5000", "--burst", "5000", "--user-rate", "5000", "--user-burst", "5000")
_LETTERS = str.maketrans("0123456789", "abcdefghij")


def chatd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatd", *args], capture_output=True, text=True, timeout=60
    )


async def keep_sending(
    client: Client, chat: str, stop: asyncio.Event, acks: list[tuple[float, str]]
) -> None:
    """Sends into `chat` as fast as acks come back, until `stop`; the time and cursor of
    each ack."""
    n = 0
    while not stop.is_set():
        n += 1
        # Letters only: digits over a run of messages could read as a phone number.
        text = f"посылка пришла {str(n).translate(_LETTERS)}"
        reply = await client.request({"type": "send", "chat": chat, "text": text})
        assert reply["type"] == "ack", reply
        acks.append((time.monotonic(), reply["cursor"]))


async def answers(server: ServerProcess, users: dict[str, str]) -> dict[str, Any]:
    """What each user is told: the chat list, every chat's whole history, a search."""
    told: dict[str, Any] = {}
    for name, tok in users.items():
        async with connect(server, tok) as client:
            chats = await client.request({"type": "chats", "limit": 100})
            histories = {c["chat"]: await whole_history(client, c["chat"]) for c in chats["chats"]}
            found = await client.request({"type": "search", "q": "посылка", "limit": 100})
        told[name] = {"chats": chats, "histories": histories, "search": found}
    # The replies' `id`s are the requests' own.
    without: dict[str, Any] = _without_ids(told)
    return without


async def whole_history(client: Client, chat: str) -> list[dict[str, Any]]:
    """Every page of a chat's history, oldest event first."""
    frame: dict[str, Any] = {"type": "history", "chat": chat, "limit": 100}
    pages: list[list[dict[str, Any]]] = []
    while True:
        page = await client.request(frame)
        assert page["type"] == "history", page
        pages.insert(0, page["events"])
        if not page["more"]:
            return [event for events in pages for event in events]
        frame = {**frame, "before": page["events"][0]["seq"]}


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def events(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT pos, stream, seq, kind, body FROM events ORDER BY pos").fetchall()


async def test_a_backup_under_load_serves_what_its_rebuild_serves(tmp_path: Path) -> None:
    live_db = tmp_path / "live.db"
    backup = tmp_path / "backup.db"
    shop = uid("shop")
    operator = token("seller", "op-backup", "Оператор", seller=shop)
    buyers = {uid("buyer"): None for _ in range(3)}
    users = {"operator": operator, **{b: token("buyer", b) for b in buyers}}

    live = ServerProcess(db=live_db, extra_args=UNLIMITED)
    live.start()
    try:
        stop = asyncio.Event()
        acks: list[tuple[float, str]] = []
        async with contextlib.AsyncExitStack() as sockets:
            shop_socket = await sockets.enter_async_context(connect(live, operator))
            senders = []
            for n, buyer in enumerate(buyers):
                client = await sockets.enter_async_context(connect(live, users[buyer]))
                # Orders, a claim and a refund too: every projection has rows.
                chat, claim = await open_claim(live, client, buyer, shop, uid("order"))
                if n == 0:
                    approved = await shop_socket.request(
                        {
                            "type": "return.approve",
                            "claim": claim,
                            "mode": "no_return",
                            "amount": {"value": 118600, "currency": "RUB"},
                        }
                    )
                    assert approved["type"] == "ack", approved
                senders.append(keep_sending(client, chat, stop, acks))
                senders.append(keep_sending(shop_socket, chat, stop, acks))
            load = asyncio.gather(*senders)
            try:
                while len(acks) < 200:
                    await asyncio.sleep(0.01)
                # The backup runs as its own process beside the serving one, the load going on.
                started = time.monotonic()
                copier = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "chatd", "backup", "--db", str(live_db),
                    "--out", str(backup), "--check",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )  # fmt: skip
                out, err = await copier.communicate()
                ended = time.monotonic()
                await asyncio.sleep(0.2)
            finally:
                stop.set()
                await load
    finally:
        live.stop()

    assert copier.returncode == 0, err.decode()
    match = re.search(
        r"up to log position (\d+) \(schema version \d+, .*integrity_check ok", out.decode()
    )
    assert match, out.decode()
    position = int(match.group(1))
    assert len([t for t, _ in acks if started < t < ended]) > 50, "no load while the copy ran"

    # Every event up to the backup's position, exactly as the live log has it, and nothing
    # after it although the server went on committing.
    copied, logged = events(backup), events(live_db)
    assert [e[0] for e in copied] == list(range(1, position + 1))
    assert copied == logged[:position] and len(logged) > position
    with contextlib.closing(sqlite3.connect(backup)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(os.listdir(tmp_path)).count("backup.db") == 1

    # Restore as the README says: the copy in the database's place, then start the server.
    restored, rebuilt = tmp_path / "restored.db", tmp_path / "rebuilt.db"
    shutil.copy(backup, restored)
    shutil.copy(backup, rebuilt)
    as_restored, as_rebuilt = ServerProcess(db=restored), ServerProcess(db=rebuilt)

    def rebuild_and_start() -> None:
        done = chatd("rebuild", "--db", str(rebuilt))
        assert done.returncode == 0, done.stderr
        as_rebuilt.start()

    try:
        # Side by side: the test waits for one start-up instead of two.
        await asyncio.gather(
            asyncio.to_thread(as_restored.start), asyncio.to_thread(rebuild_and_start)
        )
        # The restored log has an identity of its own: a cursor the live server gave, maybe
        # past the backup's end, is refused rather than skipping what the restored log writes.
        async with connect(as_restored, operator, since=acks[-1][1], read=False) as late:
            refused = await late.recv()
            assert refused["type"] == "error" and refused["code"] == "bad_cursor", refused
        told = {
            path.name: await answers(server, users)
            for path, server in ((restored, as_restored), (rebuilt, as_rebuilt))
        }
    finally:
        as_restored.stop()
        as_rebuilt.stop()

    assert told["restored.db"] == told["rebuilt.db"]
    # Each user's history of each of their chats is the backup's events of that chat.
    heads: dict[str, int] = {}
    for _, stream, seq, _, _ in copied:
        heads[stream] = max(heads.get(stream, 0), seq)
    for name, seen in told["restored.db"].items():
        assert seen["chats"]["chats"], name
        for chat, history in seen["histories"].items():
            assert [e["seq"] for e in history] == list(range(1, heads[chat] + 1))
        assert seen["search"]["events"], name
