"""Prometheus metrics of one server, in a registry of its own (several apps per process in
tests must not collide)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from chatd.store.stats import StoreStats


class Metrics(StoreStats):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "chatd_connections", "Open WebSocket connections", registry=self.registry
        )
        # Counted on every frame: plain integers, read only when /metrics is scraped (a
        # prometheus Counter takes a lock per increment).
        self.frames_in: Tally[str] = Tally()
        self.frames_out: Tally[str] = Tally()
        self.events_out = 0
        self.registry.register(_FrameCounts(self))
        self.queue_drops = Counter(
            "chatd_queue_drops_total",
            "Connections closed because their send queue was full",
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "chatd_append_seconds",
            "Time of one group commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "chatd_append_batch_size",
            "Requests written by one group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.append_seconds.observe(seconds)
        self.batch_size.observe(batch_size)

    def count_in(self, frame_type: str) -> None:
        self.frames_in[frame_type] += 1

    def count_out(self, frame: Any) -> None:
        self.frames_out[type(frame).__struct_config__.tag or "unknown"] += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _FrameCounts:
    """Exports the plain frame counters of `Metrics` at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        frames_in = CounterMetricFamily(
            "chatd_frames_in", "Client frames received", labels=["type"]
        )
        for frame_type, count in sorted(metrics.frames_in.items()):
            frames_in.add_metric([frame_type], count)
        yield frames_in
        frames_out = CounterMetricFamily("chatd_frames_out", "Reply frames sent", labels=["type"])
        for frame_type, count in sorted(metrics.frames_out.items()):
            frames_out.add_metric([frame_type], count)
        yield frames_out
        yield CounterMetricFamily(
            "chatd_events_out", "Event frames sent to sockets", value=metrics.events_out
        )
