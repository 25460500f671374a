"""The soak's and the long run's reading of the server's pause histograms: the worst bucket
reached between two readings of a real Prometheus page."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from chatd.proof.server_pauses import COMMIT, GC_PAUSE, LOOP_LAG, read_buckets, shown, worst


def page(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_the_worst_pause_is_the_bound_of_the_highest_bucket_reached_in_between() -> None:
    registry = CollectorRegistry()
    lag = Histogram(LOOP_LAG, "lag", buckets=(0.001, 0.01, 0.1, 1.0), registry=registry)
    gc = Histogram(GC_PAUSE, "gc", ["generation"], buckets=(0.001, 0.01), registry=registry)
    Histogram(COMMIT, "commits", buckets=(0.001, 0.01), registry=registry)
    lag.observe(0.5)  # before the first reading: not the period's
    first = read_buckets(page(registry))
    for late in (0.0002, 0.004, 0.03):
        lag.observe(late)
    gc.labels("0").observe(0.0005)
    gc.labels("2").observe(0.007)  # the generations are summed
    second = read_buckets(page(registry))
    assert worst(first[LOOP_LAG], second[LOOP_LAG]) == 0.1
    assert worst(first[GC_PAUSE], second[GC_PAUSE]) == 0.01
    assert worst(first[COMMIT], second[COMMIT]) == 0.0  # nothing committed
    lag.observe(3.0)  # past the last bound
    third = read_buckets(page(registry))
    assert worst(second[LOOP_LAG], third[LOOP_LAG]) == math.inf
    assert worst(second[GC_PAUSE], third[GC_PAUSE]) == 0.0


def test_a_page_without_the_families_reads_as_no_pauses() -> None:
    buckets = read_buckets("# nothing here\nchatd_connections 3.0\n")
    assert worst({}, buckets[LOOP_LAG]) == 0.0


def test_a_pause_is_shown_as_its_bound_in_ms() -> None:
    assert [shown(0.0), shown(25.0), shown(0.5), shown(None)] == ["-", "25", "0.5", "over"]
