"""The Redis hub's sequencer on its own: position order from out-of-order sources, each
event once, gaps filled from the log."""

from __future__ import annotations

from chatd.hub.base import EventOut
from chatd.hub.redis import Routed, Sequencer
from chatd.store.base import Stored
from tests.store.contract import message


class FakeLog:
    log_id = "log1"

    def __init__(self, count: int) -> None:
        self.routed: list[Routed] = [
            (Stored(pos, message("c1", pos, f"t{pos}")), ("b:u1",)) for pos in range(1, count + 1)
        ]
        self.reads = 0

    async def last_position(self) -> int:
        return 0

    async def read_routed(self, after: int, limit: int) -> list[Routed]:
        self.reads += 1
        return [r for r in self.routed if r[0].pos > after][:limit]

    def item(self, pos: int) -> EventOut:
        return EventOut(self.routed[pos - 1][0], self.log_id)


class Recorder:
    def __init__(self) -> None:
        self.delivered: list[tuple[int, tuple[str, ...]]] = []
        self.items: list[EventOut] = []

    def __call__(self, item: EventOut, keys: tuple[str, ...]) -> None:
        self.delivered.append((item.stored.pos, keys))
        self.items.append(item)

    @property
    def positions(self) -> list[int]:
        return [pos for pos, _ in self.delivered]


async def started(log: FakeLog, **options: int) -> tuple[Sequencer, Recorder]:
    recorder = Recorder()
    sequencer = Sequencer(log, recorder, **options)
    await sequencer.start()
    return sequencer, recorder


async def test_events_in_order_go_out_at_once() -> None:
    log = FakeLog(3)
    sequencer, out = await started(log)

    for pos in (1, 2, 3):
        sequencer.offer(log.item(pos), ("b:u1",))

    assert out.delivered == [(1, ("b:u1",)), (2, ("b:u1",)), (3, ("b:u1",))]
    assert not sequencer.gap.is_set()
    assert log.reads == 0


async def test_an_event_that_overtakes_waits_for_the_ones_before_it() -> None:
    log = FakeLog(4)
    sequencer, out = await started(log)

    sequencer.offer(log.item(3), ("b:u1",))
    sequencer.offer(log.item(4), ("b:u1",))
    assert out.positions == []
    assert sequencer.gap.is_set()
    sequencer.offer(log.item(1), ("b:u1",))
    sequencer.offer(log.item(2), ("b:u1",))

    assert out.positions == [1, 2, 3, 4]


async def test_each_event_goes_out_once_whoever_brings_it() -> None:
    log = FakeLog(3)
    sequencer, out = await started(log)

    sequencer.offer(log.item(2), ("b:u1",))
    sequencer.offer(log.item(2), ("b:u1",))
    await sequencer.catch_up()
    for pos in (1, 2, 3):
        sequencer.offer(log.item(pos), ("b:u1",))

    assert out.positions == [1, 2, 3]


async def test_a_gap_is_filled_from_the_log_with_the_logs_routing() -> None:
    log = FakeLog(5)
    log.routed[1] = (log.routed[1][0], ())  # an order's event: no one sees it
    sequencer, out = await started(log)
    own = log.item(4)
    sequencer.offer(own, ("b:u1", "s:s1"))  # a message's keys; the log's are the truth

    assert await sequencer.catch_up() == 5

    assert out.delivered == [
        (1, ("b:u1",)),
        (2, ()),
        (3, ("b:u1",)),
        (4, ("b:u1",)),
        (5, ("b:u1",)),
    ]
    assert out.items[3] is own  # its frames, once encoded, are reused
    assert sequencer.horizon == 5


async def test_a_catch_up_reads_the_log_page_by_page() -> None:
    log = FakeLog(23)
    sequencer, out = await started(log, page=5)

    await sequencer.catch_up()

    assert out.positions == list(range(1, 24))
    assert log.reads == 5


async def test_too_many_waiting_events_are_dropped_and_read_from_the_log() -> None:
    log = FakeLog(10)
    sequencer, out = await started(log, max_pending=3)

    for pos in range(2, 11):
        sequencer.offer(log.item(pos), ("b:u1",))
    assert out.positions == []
    await sequencer.catch_up()

    assert out.positions == list(range(1, 11))
