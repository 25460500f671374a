"""The child of the kill -9 test: appends from many tasks at once and reports every ack.

Run as `python -m tests.store.crash_writer DB`. Each stdout line is one acked append,
`stream first_seq last_seq`, written and flushed as soon as the append returns, so the
parent knows what was acknowledged at the moment it kills this process. Started again on
the same file, every task carries on from where its stream ended.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from chatd.store.base import Appended, AppendRequest, Audience, Conflict, EventStore
from chatd.store.sqlite import SqliteStore
from protocol.events import Author, Event, MessagePosted

OWN_STREAMS = 12  # each written by one task, one to three events per append
RACERS = 4  # tasks that share one stream and lose races to each other

_AUTHOR = Author(role="buyer", id="crash", name="Crash")


def _request(stream: str, head: int, count: int) -> AppendRequest:
    now = datetime.now(UTC)
    events = [
        Event(
            stream=stream,
            seq=seq,
            at=now,
            kind="message",
            author=_AUTHOR,
            data=MessagePosted(),
            text=f"{stream} {seq}",
        )
        for seq in range(head + 1, head + count + 1)
    ]
    return AppendRequest(stream, head, events, audiences=(Audience(f"b:{stream}"),))


def _report(appended: Appended) -> None:
    first, last = appended.events[0].event, appended.events[-1].event
    sys.stdout.write(f"{first.stream} {first.seq} {last.seq}\n")
    sys.stdout.flush()


async def _head(store: EventStore, stream: str) -> int:
    newest = await store.read_stream(stream, limit=1)
    return newest[-1].event.seq if newest else 0


async def _own(store: EventStore, stream: str) -> None:
    head = await _head(store, stream)
    turn = 0
    while True:
        count = 1 + turn % 3
        _report(await store.append(_request(stream, head, count)))
        head += count
        turn += 1


async def _racer(store: EventStore, stream: str) -> None:
    while True:
        head = await _head(store, stream)
        try:
            appended = await store.append(_request(stream, head, 2))
        except Conflict:
            continue
        _report(appended)


async def main(path: str) -> None:
    store = SqliteStore(path)
    await store.open()
    tasks = [_own(store, f"own-{n}") for n in range(OWN_STREAMS)]
    tasks += [_racer(store, "shared") for _ in range(RACERS)]
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
