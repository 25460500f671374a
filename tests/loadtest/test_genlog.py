"""`chatd gen-log`: valid logs of the size asked for, the same for the same seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from chatd.domain.moderation import find_contacts
from chatd.loadtest.__main__ import main
from chatd.loadtest.genlog import DEADLINE_KINDS, GenSpec, generate
from chatd.loadtest.validate import check_log
from protocol.events import CHAT_KINDS, SHOP_ONLY_KINDS
from protocol.logfile import encode, event_of, read_log


def _bytes(spec: GenSpec) -> bytes:
    return b"".join(encode(r) for r in generate(spec))


def test_the_same_seed_gives_the_same_log_and_another_seed_another() -> None:
    spec = GenSpec(shops=5, buyers=40, events=400, seed=7)
    assert _bytes(spec) == _bytes(spec)
    assert _bytes(spec) != _bytes(GenSpec(shops=5, buyers=40, events=400, seed=8))


@pytest.mark.parametrize("events", [1, 2, 3, 17, 1000])
def test_the_log_has_exactly_the_events_asked_for_and_is_valid(events: int) -> None:
    records = generate(GenSpec(shops=5, buyers=60, events=events, seed=events))
    assert len(records) == events
    assert [r.pos for r in records] == list(range(1, events + 1))
    check = check_log(records)
    assert check.ok, check.problems


def test_a_log_goes_through_every_return_path_with_russian_messages() -> None:
    records = generate(GenSpec(shops=10, buyers=60, events=4000, returns=0.6, seed=3))
    check = check_log(records)
    assert check.ok, check.problems
    # Every kind but those the server's deadlines write, which a replay could not make, and
    # the shop's notes and assignments, which no buyer receives: the bench measures delivery
    # of the conversation between the two sides.
    made = set(CHAT_KINDS) - DEADLINE_KINDS - SHOP_ONLY_KINDS
    assert set(check.kinds) == made | {"order.registered"}
    assert len(check.operators) > len(check.shops)  # some shops have several operators
    claims: Counter[str] = Counter()
    for record in records:
        if record.kind.startswith("return.") and record.kind != "return.requested":
            claims[record.kind] += 1
    resolved = [event_of(r).data for r in records if r.kind == "return.resolved"]
    assert {(d.decision, d.mode) for d in resolved} == {
        ("approve", "pvz"),
        ("approve", "no_return"),
        ("reject", None),
    }
    messages = [r.text or "" for r in records if r.kind == "message"]
    lengths = sorted(len(t) for t in messages)
    assert lengths[0] >= 1 and lengths[-1] <= 1000
    assert 40 <= lengths[len(lengths) // 2] <= 200  # a realistic median
    assert lengths[-1] > 400  # and a long tail
    assert all(any("а" <= ch <= "я" for ch in text.lower()) for text in messages)
    # Nothing the server's contacts filter would refuse.
    assert [t for t in set(messages) if find_contacts(t)] == []


def test_gen_log_command_writes_the_log(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    args = ["gen-log", "--events", "250", "--shops", "4", "--buyers", "30", "--seed", "5"]
    assert main([*args, "--out", str(out)]) == 0
    expected = generate(GenSpec(shops=4, buyers=30, events=250, seed=5))
    assert [event_of(r) for r in read_log(out)] == [event_of(r) for r in expected]
