"""The log check refuses what no server could have written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec

from chatd.deadline_timers import DeadlineTimers
from chatd.domain import commands as cmd
from chatd.domain.errors import Rejection
from chatd.domain.ids import claim_id
from chatd.loadtest.genlog import GenSpec, generate
from chatd.loadtest.validate import check_log
from chatd.store.sqlite import SqliteStore
from protocol.events import Author
from protocol.logfile import LogRecord, record_of
from tests.test_deadline_timers import BUYER, CHAT, NOW, SHOP, Clock, an_order, service_on

RECORDS = generate(GenSpec(shops=6, buyers=60, events=1500, returns=1.0, seed=11))


def _problems(records: list[LogRecord]) -> list[str]:
    check = check_log(records)
    assert not check.ok
    return check.problems


def _index(kind: str) -> int:
    return next(i for i, r in enumerate(RECORDS) if r.kind == kind)


def test_a_generated_log_passes() -> None:
    assert check_log(RECORDS).ok


def test_a_gap_in_a_chat_is_found() -> None:
    index = _index("message")
    records = RECORDS[:index] + RECORDS[index + 1 :]
    assert any("gap" in p for p in _problems(records))


def test_a_message_by_a_stranger_is_found() -> None:
    index = _index("message")
    stranger = Author(role="buyer", id="someone-else", name="X")
    records = list(RECORDS)
    records[index] = msgspec.structs.replace(RECORDS[index], author=stranger)
    assert any("not the chat's" in p for p in _problems(records))


def test_a_refund_that_does_not_follow_is_found() -> None:
    index = _index("refund.issued")
    records = RECORDS[:index] + RECORDS[index + 1 :]
    assert any("refund" in p for p in _problems(records))


def test_a_claim_step_out_of_order_is_found() -> None:
    index = _index("return.requested")
    records = RECORDS[:index] + RECORDS[index + 1 :]
    problems = _problems(records)
    assert any("not allowed" in p or "gap" in p for p in problems)


def test_an_order_named_before_it_is_registered_is_found() -> None:
    index = _index("order.registered")
    order = RECORDS[index]
    records = [r for r in RECORDS if r is not order]
    assert any("before it is registered" in p for p in _problems(records))


async def test_a_log_with_the_deadlines_and_a_withdrawal_passes(tmp_path: Path) -> None:
    # A log the real service wrote, with version 1.1's ends of a claim: an escalation, an
    # expired offer and a withdrawn one.
    clock = Clock()
    store = SqliteStore(tmp_path / "chatd.db", synchronous="normal")
    await store.open()
    try:
        service = service_on(store, clock)
        cards = [await an_order(service, n) for n in (1, 2, 3)]
        assert not isinstance(await service.request_return(BUYER, CHAT, cards[0].id), Rejection)
        for card in cards[1:]:
            assert not isinstance(await service.initiate_return(SHOP, CHAT, card.id), Rejection)
        withdraw = cmd.WithdrawReturn(actor=SHOP, claim=claim_id(cards[2].id))
        assert not isinstance(await service.withdraw_return(withdraw), Rejection)
        clock.now = NOW + timedelta(days=30)
        assert len((await DeadlineTimers(service).fire_due()).fired) == 2
        records = [record_of(s.pos, s.event) for s in await store.read_all(after=0, limit=1000)]
    finally:
        await store.close()

    kinds = {r.kind for r in records}
    assert {"return.escalated", "return.expired", "return.withdrawn"} <= kinds
    check = check_log(records)
    assert check.ok, check.problems
