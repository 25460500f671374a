"""The per-chat lock: exclusive per key, first come first served, and never stuck."""

from __future__ import annotations

import asyncio

from chatd.keyed_lock import KeyedLocks


async def test_work_on_one_key_runs_one_at_a_time_in_arrival_order() -> None:
    locks = KeyedLocks()
    inside = 0
    most = 0
    order: list[int] = []

    async def work(n: int) -> int:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.001)
        order.append(n)
        inside -= 1
        return n

    results = await asyncio.gather(*(locks.run("c1", lambda n=n: work(n)) for n in range(20)))

    assert results == list(range(20))
    assert most == 1
    assert order == list(range(20))
    assert not locks.held("c1")


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks = KeyedLocks()
    gate = asyncio.Event()

    async def blocked() -> str:
        await gate.wait()
        return "c1"

    first = asyncio.create_task(locks.run("c1", blocked))
    await asyncio.sleep(0)
    assert await asyncio.wait_for(locks.run("c2", lambda: asyncio.sleep(0, "c2")), 1) == "c2"
    gate.set()
    assert await first == "c1"


async def test_a_failing_work_releases_its_key() -> None:
    locks = KeyedLocks()

    async def boom() -> None:
        raise RuntimeError("boom")

    results = await asyncio.gather(
        locks.run("c1", boom),
        locks.run("c1", lambda: asyncio.sleep(0, "next")),
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError) and results[1] == "next"
    assert not locks.held("c1")


async def test_a_waiter_cancelled_before_or_after_its_turn_never_blocks_the_key() -> None:
    locks = KeyedLocks()
    gate = asyncio.Event()

    async def holder() -> str:
        await gate.wait()
        return "held"

    first = asyncio.create_task(locks.run("c1", holder))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(locks.run("c1", lambda: asyncio.sleep(0, "never")))
    handed = asyncio.create_task(locks.run("c1", lambda: asyncio.sleep(0, "never")))
    last = asyncio.create_task(locks.run("c1", lambda: asyncio.sleep(0, "last")))
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while it waits
    gate.set()
    await first
    handed.cancel()  # handed the key by `first`, cancelled before it ran: passes it on
    assert await asyncio.wait_for(last, 1) == "last"
    assert waiting.cancelled() and handed.cancelled()
    assert not locks.held("c1")
