"""Frames past their deadline are found by one sweep (chatd.web.frame_watch): a socket is told
once, between the deadline and a sixteenth of it later, and never when it answered in time."""

from __future__ import annotations

import asyncio

from chatd.web.frame_watch import FrameWatch

DEADLINE = 0.32  # a sweep every 20 ms


class Socket:
    def __init__(self) -> None:
        self.told: list[float] = []

    def too_late(self) -> None:
        self.told.append(asyncio.get_running_loop().time())


async def test_a_frame_past_its_deadline_is_told_once_and_in_time() -> None:
    watch = FrameWatch(DEADLINE)
    loop = asyncio.get_running_loop()
    stuck, quick = Socket(), Socket()
    started = loop.time()
    watch.begin(stuck)
    watch.begin(quick)
    await asyncio.sleep(DEADLINE / 2)
    watch.end(quick)
    await asyncio.sleep(DEADLINE * 2)
    assert quick.told == []
    assert len(stuck.told) == 1
    late = stuck.told[0] - started
    # A sweep every sixteenth of the deadline, and some slack for a busy machine.
    assert DEADLINE <= late < DEADLINE + DEADLINE / 16 + 0.1, late


async def test_each_frame_has_its_own_clock() -> None:
    watch = FrameWatch(DEADLINE)
    socket = Socket()
    for _ in range(4):  # frames answered in time, one after another: never late
        watch.begin(socket)
        await asyncio.sleep(DEADLINE * 0.6)
        watch.end(socket)
    assert socket.told == []
    watch.begin(socket)  # a frame taken up again starts its clock again
    await asyncio.sleep(DEADLINE * 0.6)
    watch.begin(socket)
    await asyncio.sleep(DEADLINE * 0.6)
    assert socket.told == []
    await asyncio.sleep(DEADLINE)
    assert len(socket.told) == 1


async def test_the_sweep_runs_only_while_a_frame_is_carried_out() -> None:
    watch = FrameWatch(DEADLINE)
    socket = Socket()
    watch.begin(socket)
    assert watch._sweep_due is not None
    watch.end(socket)
    await asyncio.sleep(DEADLINE / 8)
    assert watch._sweep_due is None


async def test_one_sockets_failure_leaves_the_others_told() -> None:
    class Broken:
        def too_late(self) -> None:
            raise RuntimeError("gone")

    watch = FrameWatch(DEADLINE)
    socket = Socket()
    watch.begin(Broken())
    watch.begin(socket)
    await asyncio.sleep(DEADLINE * 1.5)
    assert len(socket.told) == 1
