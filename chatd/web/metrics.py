"""Prometheus metrics of one server, in a registry of its own (several apps per process in
tests must not collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chatd.store.stats import StoreStats


class Metrics(StoreStats):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "chatd_connections", "Open WebSocket connections", registry=self.registry
        )
        self.frames_in = Counter(
            "chatd_frames_in_total", "Client frames received", ["type"], registry=self.registry
        )
        self.frames_out = Counter(
            "chatd_frames_out_total", "Reply frames sent", ["type"], registry=self.registry
        )
        self.events_out = Counter(
            "chatd_events_out_total", "Event frames sent to sockets", registry=self.registry
        )
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
        self._in = {}  # type: dict[str, Any]
        self._out = {}  # type: dict[str, Any]

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.append_seconds.observe(seconds)
        self.batch_size.observe(batch_size)

    def count_in(self, frame_type: str) -> None:
        child = self._in.get(frame_type)
        if child is None:
            child = self._in[frame_type] = self.frames_in.labels(frame_type)
        child.inc()

    def count_out(self, frame: Any) -> None:
        frame_type = type(frame).__struct_config__.tag or "unknown"
        child = self._out.get(frame_type)
        if child is None:
            child = self._out[frame_type] = self.frames_out.labels(frame_type)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
