"""A seed corpus taken from a real log: the frames that made the demo's events, and the
reads a client makes of them.

`frames_from_log(path)` reads the event log of a SQLite database (the demo data loaded by
`InProcessServer`, or any database written by `chatd serve`) and turns every event back into
the client frame that appended it, plus `history`, `read`, `search`, `chats` and
`attachments` frames over the same chats. `python -m tests.fuzz.corpus DB OUT` writes them as
corpus files for atheris: one byte that picks the connection, then the encoded frame.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from protocol.codec import JSON, MSGPACK
from protocol.events import decode_event
from tests.fuzz.inprocess import PEERS
from tests.fuzz.strategies import World, encode

Frame = dict[str, Any]


def _events(db: Path) -> list[tuple[int, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT pos, body FROM events ORDER BY pos").fetchall()
        log_id = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
    return [(int(pos), (str(log_id), decode_event(bytes(body)))) for pos, body in rows]


def frames_from_log(db: Path) -> list[Frame]:
    frames: list[Frame] = [{"type": "ping", "id": "p"}, {"type": "chats"}]
    for pos, (log_id, event) in _events(db):
        data = msgspec.to_builtins(event.data)
        chat = event.stream
        kind = event.kind
        if kind == "order.registered":
            order = data["order"]
            frames.append({"type": "open", "seller": order["seller"]["id"], "order": order["id"]})
            continue
        if kind == "chat.opened":
            opened: Frame = {"type": "open", "seller": data["seller"]["id"]}
            if data.get("order"):
                opened["order"] = data["order"]["id"]
            frames += [opened, {"type": "attachments", "chat": chat, "id": "a"}]
        elif kind == "message":
            frames.append(
                {"type": "send", "chat": chat, "text": event.text or "", "nonce": f"n{pos}"}
            )
            words = (event.text or "").split()
            if words:
                frames.append({"type": "search", "q": words[0], "chat": chat})
                frames.append({"type": "search", "q": words[-1]})
        elif kind == "return.requested":
            frames.append({"type": "return.request", "chat": chat, "order": data["order"]["id"]})
        elif kind == "return.initiated":
            frames.append({"type": "return.initiate", "chat": chat, "order": data["order"]["id"]})
        elif kind == "return.approved":
            frames.append(
                {
                    "type": "return.approve",
                    "claim": data["claim"],
                    "mode": data["mode"],
                    "amount": data["amount"],
                }
            )
        elif kind == "return.rejected":
            frames.append({"type": "return.reject", "claim": data["claim"]})
        elif kind == "return.disputed":
            frames.append({"type": "return.dispute", "claim": data["claim"]})
            for decision in ("approve", "reject"):
                frames.append(
                    {
                        "type": "return.resolve",
                        "claim": data["claim"],
                        "decision": decision,
                        "mode": "pvz",
                    }
                )
        elif kind == "return.resolved":
            resolved = {
                "type": "return.resolve",
                "claim": data["claim"],
                "decision": data["decision"],
            }
            if data.get("mode"):
                resolved["mode"] = data["mode"]
            frames.append(resolved)
        frames += [
            {"type": "read", "chat": chat, "seq": event.seq},
            {"type": "history", "chat": chat, "before": event.seq + 1, "limit": 2, "id": f"h{pos}"},
            {"type": "chats", "before": f"{log_id}.{pos:x}", "limit": 3},
        ]
    return frames


def world_of(frames: list[Frame]) -> World:
    """The ids a log names, for strategies that build frames about real things."""
    chats = sorted({fr["chat"] for fr in frames if "chat" in fr})
    claims = sorted({fr["claim"] for fr in frames if "claim" in fr})
    orders = sorted({fr["order"] for fr in frames if "order" in fr})
    shops = sorted({fr["seller"] for fr in frames if "seller" in fr})
    words = sorted({fr["q"] for fr in frames if "q" in fr})
    return World(tuple(chats), tuple(claims), tuple(orders), tuple(shops), tuple(words))


def corpus_entries(frames: list[Frame]) -> list[bytes]:
    """Atheris inputs: a byte naming the connection, then the frame in its subprotocol."""
    entries: list[bytes] = []
    for n, frame in enumerate(frames):
        for index in (n % len(PEERS), (n * 7 + 3) % len(PEERS)):
            subprotocol = PEERS[index].subprotocol
            entries.append(bytes([index]) + encode(frame, subprotocol))
    return entries


def write_corpus(entries: list[bytes], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (out / hashlib.sha1(entry).hexdigest()).write_bytes(entry)
    return len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write an atheris corpus from a chatd database.")
    parser.add_argument("db", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    count = write_corpus(corpus_entries(frames_from_log(args.db)), args.out)
    print(f"{count} corpus files written to {args.out} ({JSON} and {MSGPACK} frames)")


if __name__ == "__main__":
    main()
