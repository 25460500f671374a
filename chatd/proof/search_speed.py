"""How long a search in one chat takes as the chat grows: ms per `search` over a socket.

    python -m chatd.proof.search_speed [--sizes 200,1000,1990,4000] [--searches 30]

Starts `chatd serve` on a new SQLite database (rate limits lifted), writes messages into one
chat as its buyer, and at each size times `--searches` searches in that chat for three
queries: a selective one (a word of every message and the number only one of them holds), a
broad one (a word of every message: the search stops at its limit) and one that finds
nothing. It prints the median and the largest time of each, and the server's CPU time per
search. A chat of up to `SCAN_CHAT_EVENTS` events is searched by reading its own texts; a
longer one through the full-text index. The program exits with 1 when a query finds what it
should not (the selective one must find exactly its one message).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from chatd.client.client import ChatClient, connect
from chatd.client.tokens import mint
from chatd.launcher import Server
from chatd.store.sqlite import SCAN_CHAT_EVENTS

TEXT = "Здравствуйте! Подскажите, пожалуйста, когда будет отправка заказа? №{number}"
UNLIMITED = ("--rate", "1000000", "--burst", "1000000")
UNLIMITED_USER = ("--user-rate", "1000000", "--user-burst", "1000000")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.search_speed",
        description="How long a search in one chat takes as the chat grows.",
    )
    parser.add_argument("--sizes", default="200,1000,1990,4000", help="messages in the chat")
    parser.add_argument("--searches", type=int, default=30, help="searches per query and size")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes: whole numbers separated by commas")
    if sizes[0] < 2 or args.searches < 1:
        parser.error("--sizes at least 2 and --searches at least 1")
    return asyncio.run(_run(sizes, args.searches))


async def _run(sizes: list[int], searches: int) -> int:
    with tempfile.TemporaryDirectory(prefix="chatd-search-speed-") as workdir:
        server = Server(
            db=Path(workdir) / "chatd.db",
            secret="search-speed-secret-of-at-least-32-bytes",
            extra_args=(*UNLIMITED, *UNLIMITED_USER),
        )
        server.start()
        try:
            return await _measure(server, sizes, searches)
        finally:
            server.stop()


async def _measure(server: Server, sizes: list[int], searches: int) -> int:
    token = mint(server.secret, role="buyer", sub="buyer-search", name="Полина")
    print(
        f"search in one chat: {searches} searches a query and size; chats of up to "
        f"{SCAN_CHAT_EVENTS} events are read, longer ones go through the index"
    )
    print(f"{'messages':>8}  {'query':<10} {'found':>5} {'p50 ms':>7} {'max ms':>7} {'CPU ms':>7}")
    wrong = 0
    async with connect(server.url, token) as client:
        chat = (await client.open("shop-search")).chat
        written = 0
        for size in sizes:
            for number in range(written, size):
                await client.send(chat, TEXT.format(number=number))
            written = size
            middle = size // 2
            queries = {
                "selective": (f"заказа {middle}", 1),
                "broad": ("заказа", None),
                "nothing": ("возврат", 0),
            }
            for name, (query, expected) in queries.items():
                found, times, cpu = await _time_search(client, server, chat, query, searches)
                if expected is not None and found != expected:
                    wrong += 1
                p50, most = statistics.median(times) * 1000, max(times) * 1000
                print(
                    f"{size:>8}  {name:<10} {found:>5} {p50:>7.1f} {most:>7.1f} "
                    f"{cpu / searches * 1000:>7.1f}"
                )
    if wrong:
        print(f"{wrong} queries found what they should not", file=sys.stderr)
        return 1
    return 0


async def _time_search(
    client: ChatClient, server: Server, chat: str, query: str, searches: int
) -> tuple[int, list[float], float]:
    """What the query finds, each search's time, and the server's CPU seconds for all."""
    times: list[float] = []
    found = 0
    cpu_before = server.cpu()
    for _ in range(searches):
        started = time.perf_counter()
        results = await client.search(query, chat)
        times.append(time.perf_counter() - started)
        found = len(results.events)
    return found, times, server.cpu() - cpu_before


if __name__ == "__main__":
    sys.exit(main())
