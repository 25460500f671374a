"""The small parts of the load tools: plan, histograms, timeline, chart, progress."""

from __future__ import annotations

import io

from chatd.loadtest.chart import render_html
from chatd.loadtest.genlog import GenSpec, generate
from chatd.loadtest.histogram import Latencies
from chatd.loadtest.plan import make_plan
from chatd.loadtest.progress import Counters, ProgressBar
from chatd.loadtest.timeline import buckets

RECORDS = generate(GenSpec(shops=12, buyers=80, events=2000, returns=0.5, seed=4))


def test_every_chat_event_comes_from_one_action_or_is_a_refund() -> None:
    plan = make_plan(RECORDS)
    assert plan.events == len(RECORDS)
    for share in plan.shares:
        for chat in share.chats:
            made = sum(action.events for action in chat.actions)
            assert made == len(chat.expected)
            assert chat.actions[0].verb == "open"
            assert all(a.actor is not None for a in chat.actions if a.verb != "logistics")
    refunds = sum(1 for r in RECORDS if r.kind == "refund.issued")
    chat_events = sum(1 for r in RECORDS if r.kind != "order.registered")
    assert plan.actions == len(RECORDS) - refunds
    assert plan.events - sum(len(s.orders) for s in plan.shares) == chat_events


def test_shares_hold_whole_shops_with_their_orders() -> None:
    plan = make_plan(RECORDS, shares=3)
    assert len(plan.shares) == 3
    shop_share: dict[str, int] = {}
    for share in plan.shares:
        for chat in share.chats:
            assert shop_share.setdefault(chat.shop, share.index) == share.index
        for order in share.orders:
            assert shop_share.get(order.card.seller.id, share.index) == share.index
        operators = {a.shop for a in share.actors if a.role == "seller"}
        assert operators <= {c.shop for c in share.chats}
    loads = sorted(s.actions for s in plan.shares)
    assert loads[0] > loads[-1] / 3  # about even


def test_latencies_report_percentiles_in_ms_and_merge() -> None:
    first, second = Latencies(), Latencies()
    for n in range(1, 1001):
        first.record(n / 1000)  # 1 ms .. 1 s
    second.record(5.0)
    first.merge(second.encode())
    summary = first.summary()
    assert summary["count"] == 1001
    assert abs(float(summary["p50"]) - 500) < 2
    assert abs(float(summary["p99"]) - 990) < 5
    assert abs(float(summary["max"]) - 5000) < 5
    assert Latencies().summary()["p99"] == 0.0


def test_the_mean_is_the_recorded_values_own_until_an_encoding_is_merged_in() -> None:
    first, second = Latencies(), Latencies()
    # 1.234567 s and 2.345678 s: the histogram keeps 3 significant figures of each, so its
    # own mean is off by more than a microsecond, and an exact mean is the running sum's.
    first.record(1.234567)
    second.record(2.345678)
    first.merge(second)
    assert first.mean_ms() == (1_234_567 + 2_345_678) / 2 / 1000
    assert first.summary()["mean"] == round((1_234_567 + 2_345_678) / 2 / 1000, 3)
    # An encoding carries no sum: from then on the mean is the histogram's, near the same.
    first.merge(Latencies().encode())
    assert first.mean_ms() == (1_234_567 + 2_345_678) / 2 / 1000  # an empty one changes nothing
    third = Latencies()
    third.record(0.5)
    first.merge(third.encode())
    exact = (1_234_567 + 2_345_678 + 500_000) / 3 / 1000
    assert first.mean_ms() != exact
    assert abs(first.mean_ms() - exact) < exact * 0.001
    assert Latencies().mean_ms() == 0.0


def test_the_timeline_groups_by_due_time_and_the_chart_draws_it() -> None:
    at = [0.1, 0.5, 1.2, 3.9]
    latency = [0.001, 0.003, 0.010, 0.002]
    rows = buckets(at, latency, 1.0)
    assert [b.count for b in rows] == [2, 1, 0, 1]
    assert rows[0].max_ms == 3.0
    page = render_html("run", [("errors", "0")], rows)
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_progress_bar_prints_lines_when_not_on_a_terminal() -> None:
    counters = Counters()
    out = io.StringIO()
    bar = ProgressBar(200, counters.read, stream=out)
    counters.advance(50, 1)
    bar.render()
    bar.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "25.0%" in lines[0] and "errors 1" in lines[0]
