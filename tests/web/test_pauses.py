"""The event loop's lateness and the collector's passes, as /metrics reports them."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from prometheus_client import CollectorRegistry

from chatd.observability import pauses as pauses_module
from chatd.observability.pauses import Pauses


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_loop_blocked_for_a_while_shows_as_that_much_lag() -> None:
    registry = CollectorRegistry()
    pauses = Pauses(registry, lag_period=0.05)
    pauses.start()
    try:
        await asyncio.sleep(0.12)  # a few samples of an idle loop
        idle = _value(registry, "chatd_event_loop_lag_seconds_count")
        time.sleep(0.3)  # blocks the loop: the sample due meanwhile runs ~0.25 s late
        await asyncio.sleep(0.08)
    finally:
        await pauses.stop()
    assert idle >= 1
    assert _value(registry, "chatd_event_loop_lag_seconds_bucket", le="0.1") >= 1
    late = _value(registry, "chatd_event_loop_lag_seconds_count") - _value(
        registry, "chatd_event_loop_lag_seconds_bucket", le="0.1"
    )
    assert late >= 1
    assert _value(registry, "chatd_event_loop_lag_seconds_sum") >= 0.2


async def test_each_collector_pass_is_timed_by_generation_until_stopped() -> None:
    registry = CollectorRegistry()
    pauses = Pauses(registry)
    pauses.start()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        await pauses.stop()
    young = _value(registry, "chatd_gc_pause_seconds_count", generation="0")
    full = _value(registry, "chatd_gc_pause_seconds_count", generation="2")
    assert young >= 1 and full >= 1
    assert _value(registry, "chatd_gc_pause_seconds_sum", generation="2") > 0
    assert pauses._on_gc not in gc.callbacks
    gc.collect(2)
    assert _value(registry, "chatd_gc_pause_seconds_count", generation="2") == full


async def test_start_twice_and_stop_twice_leave_one_callback_then_none() -> None:
    pauses = Pauses(CollectorRegistry())
    pauses.start()
    pauses.start()
    assert gc.callbacks.count(pauses._on_gc) == 1
    await pauses.stop()
    await pauses.stop()
    assert pauses._on_gc not in gc.callbacks


async def test_a_slow_collector_pass_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = Pauses(CollectorRegistry())
    pauses.start()
    try:
        with caplog.at_level("WARNING", logger=pauses_module.__name__):
            # Under the bound: nothing logged (a bound no pass reaches, as a full pass of a
            # big test process can itself take over 100 ms).
            monkeypatch.setattr(pauses_module, "SLOW_GC_SECONDS", 60.0)
            gc.collect(2)
            quick = len(caplog.records)
            monkeypatch.setattr(pauses_module, "SLOW_GC_SECONDS", 0.0)
            gc.collect(2)
    finally:
        await pauses.stop()
    assert quick == 0, caplog.records
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("slow garbage-collector pass: generation 2 took ") for m in logged)
