"""The log check refuses what no server could have written."""

from __future__ import annotations

import msgspec

from chatd.loadtest.genlog import GenSpec, generate
from chatd.loadtest.validate import check_log
from protocol.events import Author
from protocol.logfile import LogRecord

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
