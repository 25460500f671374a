"""Prometheus metrics of one server, in a registry of its own (several apps per process in
tests must not collide).

What is counted per message (frames, events) or per error, close or HTTP request is a plain
integer or a `collections.Counter` entry, and becomes a Prometheus family only when /metrics
is scraped (`_Tallies`): a prometheus `Counter` takes a lock per increment, which the
message path cannot afford. What a store, a hub or the webhook dispatcher knows about itself
(the WAL's size, the hub's lag) is read from them at scrape time too (`_Parts`), so none of
them depends on this module. Histograms are fed once per group commit, per checkpoint and
per HTTP request, never per message.
"""

from __future__ import annotations

import gc
import importlib.metadata
import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from chatd.hub.base import Hub
from chatd.observability.pauses import Pauses
from chatd.store.stats import StoreStats
from protocol import PROTOCOL_REVISION
from protocol.codes import CloseCode

# Close codes that keep their own label; any other code a client sends (4000-4999 are the
# application's to choose) is `other`, so that clients cannot grow the series without bound.
_KNOWN_CLOSES = frozenset(range(1000, 1016)) | {int(code) for code in CloseCode}
_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def close_label(code: int | None) -> str:
    if code is None:
        return "none"
    return str(code) if code in _KNOWN_CLOSES else "other"


def method_label(method: str) -> str:
    return method if method in _HTTP_METHODS else "other"


@runtime_checkable
class WalStats(Protocol):
    """What a SQLite store tells about its write-ahead log (chatd.store.sqlite.SqliteStore)."""

    def wal_bytes(self) -> int: ...

    @property
    def wal_restarts(self) -> int: ...

    @property
    def wal_restart_seconds(self) -> float: ...

    @property
    def wal_checkpoints(self) -> int: ...

    @property
    def wal_checkpoint_seconds(self) -> float: ...

    @property
    def wal_copies(self) -> int: ...

    @property
    def wal_copy_seconds(self) -> float: ...

    @property
    def wal_copy_waits(self) -> int: ...

    @property
    def wal_copy_wait_seconds(self) -> float: ...


class DeliveryStats(Protocol):
    """What the webhook dispatcher counts (chatd.webhooks.delivery.WebhookDispatcher)."""

    @property
    def outcomes(self) -> Tally[str]: ...


def _version() -> str:
    try:
        return importlib.metadata.version("chatd")
    except importlib.metadata.PackageNotFoundError:  # a source tree, not installed
        return "unknown"


class Metrics(StoreStats):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process (CPU, memory, open files), the interpreter, and its garbage collector:
        # each reads its figures when scraped.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.connections = Gauge(
            "chatd_connections", "Open WebSocket connections", registry=self.registry
        )
        # Counted on every frame: plain integers, read only when /metrics is scraped (a
        # prometheus Counter takes a lock per increment).
        self.frames_in: Tally[str] = Tally()
        self.frames_out: Tally[str] = Tally()
        self.events_out = 0
        # Counted per error frame or HTTP error answer, per close, per accepted socket and
        # per HTTP request: also plain, for the same reason (an error can come per frame).
        self.errors: Tally[tuple[str, str]] = Tally()  # (transport, code)
        self.closes: Tally[tuple[str, str]] = Tally()  # (close code label, who closed)
        self.refused_handshakes: Tally[str] = Tally()  # reason
        self.accepted = 0
        self.http_requests: Tally[tuple[str, str, str]] = Tally()  # (method, route, status)
        self.registry.register(_Tallies(self))
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
        self.http_seconds = Histogram(
            "chatd_http_request_seconds",
            "Time to answer one HTTP request, by route (long-polls included)",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0),
            registry=self.registry,
        )
        self.checkpoint_seconds = Histogram(
            "chatd_sqlite_checkpoint_seconds",
            "Time of one background (PASSIVE) checkpoint of the SQLite WAL",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        # The event loop's lateness and the collector's passes (chatd.observability.pauses),
        # sampled while the app runs (its lifespan starts and stops them).
        self.pauses = Pauses(self.registry)
        info = Gauge(
            "chatd_build_info",
            "Always 1: the chatd version and the protocol revision it speaks",
            ["version", "protocol"],
            registry=self.registry,
        )
        info.labels(_version(), PROTOCOL_REVISION).set(1)
        self._parts = _Parts()
        self.registry.register(self._parts)

    def watch(
        self,
        *,
        store: object | None = None,
        hub: Hub | None = None,
        webhooks: DeliveryStats | None = None,
    ) -> None:
        """Reads these at every scrape: the store's WAL (a SQLite store), the hub's
        connection and lag, the webhook deliveries' outcomes."""
        if isinstance(store, WalStats):
            self._parts.wal = store
        if hub is not None:
            self._parts.hub = hub
        if webhooks is not None:
            self._parts.webhooks = webhooks

    # ---- StoreStats: once per group commit and per checkpoint --------------------------------

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        self.append_seconds.observe(seconds)
        self.batch_size.observe(batch_size)

    def observe_checkpoint(self, seconds: float) -> None:
        self.checkpoint_seconds.observe(seconds)

    # ---- per frame ---------------------------------------------------------------------------

    def count_in(self, frame_type: str) -> None:
        self.frames_in[frame_type] += 1

    def count_out(self, frame: Any) -> None:
        self.frames_out[type(frame).__struct_config__.tag or "unknown"] += 1

    # ---- per connection and per HTTP request -------------------------------------------------

    def closed(self, code: int | None, by: str) -> None:
        self.closes[(close_label(code), by)] += 1

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests[(method_label(method), route, str(status))] += 1
        self.http_seconds.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Tallies:
    """Exports the plain counters of `Metrics` at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        yield _family("chatd_frames_in", "Client frames received", ["type"], metrics.frames_in)
        yield _family("chatd_frames_out", "Reply frames sent", ["type"], metrics.frames_out)
        yield CounterMetricFamily(
            "chatd_events_out", "Event frames sent to sockets", value=metrics.events_out
        )
        yield _family(
            "chatd_errors",
            "Errors answered, by wire code, on sockets (error frames) and over HTTP",
            ["transport", "code"],
            metrics.errors,
        )
        yield _family(
            "chatd_ws_closes",
            "WebSocket connections ended, by close code and by who closed first "
            "(a refused hello is closed by the server)",
            ["code", "by"],
            metrics.closes,
        )
        yield CounterMetricFamily(
            "chatd_ws_accepted", "WebSocket connections accepted", value=metrics.accepted
        )
        yield _family(
            "chatd_ws_handshakes_refused",
            "WebSocket handshakes refused before a connection (HTTP 403)",
            ["reason"],
            metrics.refused_handshakes,
        )
        yield _family(
            "chatd_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            metrics.http_requests,
        )
        frozen = GaugeMetricFamily(
            "chatd_gc_frozen_objects",
            "Objects frozen out of the garbage collector's scans at start-up",
            value=gc.get_freeze_count(),
        )
        yield frozen


def _family(name: str, doc: str, labels: list[str], tally: Tally[Any]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    # Scraped on the event loop's thread (`Api.metrics_page`), which alone counts.
    for key, count in sorted(tally.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], count)
    return family


class _Parts:
    """What the store, the hub and the webhook dispatcher report, read at scrape time."""

    def __init__(self) -> None:
        self.wal: WalStats | None = None
        self.hub: Hub | None = None
        self.webhooks: DeliveryStats | None = None

    def collect(self) -> Iterator[Metric]:
        if self.wal is not None:
            yield GaugeMetricFamily(
                "chatd_sqlite_wal_bytes",
                "Size of the SQLite write-ahead log file now",
                value=self.wal.wal_bytes(),
            )
            yield CounterMetricFamily(
                "chatd_sqlite_writer_checkpoints",
                "The writer's PASSIVE checkpoints between batches (the WAL past about 1 MiB)",
                value=self.wal.wal_checkpoints,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_writer_checkpoint_seconds",
                "Time the writer spent in its PASSIVE checkpoints (no commit lands meanwhile)",
                value=self.wal.wal_checkpoint_seconds,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_copies",
                "PASSIVE checkpoints beside the commits, which copy the bulk of the WAL into"
                " the database before the writer copies the rest",
                value=self.wal.wal_copies,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_copy_seconds",
                "Time those checkpoints took (commits go on meanwhile)",
                value=self.wal.wal_copy_seconds,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_copy_waits",
                "Times the writer waited for such a copy, the WAL having passed 48 MiB while"
                " it ran (no commit lands meanwhile)",
                value=self.wal.wal_copy_waits,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_copy_wait_seconds",
                "Time the writer waited for those copies",
                value=self.wal.wal_copy_wait_seconds,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_restarts",
                "Times the writer waited for readers to start the WAL over (a RESTART"
                " checkpoint, once readers kept it from starting over past 16 MiB)",
                value=self.wal.wal_restarts,
            )
            yield CounterMetricFamily(
                "chatd_sqlite_wal_restart_seconds",
                "Time the writer spent in RESTART checkpoints (no commit lands meanwhile)",
                value=self.wal.wal_restart_seconds,
            )
        if self.hub is not None:
            yield from _hub_families(self.hub)
        if self.webhooks is not None:
            yield _family(
                "chatd_webhook_deliveries",
                "Webhook delivery attempts, by outcome (delivered, retrying, failed)",
                ["outcome"],
                self.webhooks.outcomes,
            )


def _hub_families(hub: Hub) -> Iterator[Metric]:
    stats = hub.stats()
    yield GaugeMetricFamily(
        "chatd_hub_up",
        "1 while the hub carries events between nodes (always 1 for the in-process hub)",
        value=1 if stats.connected else 0,
    )
    yield CounterMetricFamily(
        "chatd_hub_reconnections",
        "Times the hub got its connection back after losing it",
        value=stats.reconnections,
    )
    yield CounterMetricFamily(
        "chatd_hub_publish_failures",
        "Publishes the hub could not hand to the other nodes (they read the log instead)",
        value=stats.publish_failures,
    )
    yield CounterMetricFamily(
        "chatd_hub_log_deliveries",
        "Events this node delivered from the log because the hub had not brought them",
        value=stats.from_log,
    )
    yield GaugeMetricFamily(
        "chatd_hub_pending_events",
        "Events received that wait for an earlier position",
        value=stats.pending,
    )
    oldest = stats.oldest_pending
    yield GaugeMetricFamily(
        "chatd_hub_lag_seconds",
        "How long the oldest event waiting for an earlier position has waited (0: none)",
        value=max(0.0, time.monotonic() - oldest) if oldest is not None else 0.0,
    )
    if stats.position is not None:
        yield GaugeMetricFamily(
            "chatd_hub_position",
            "The log position up to which this node has delivered every event; nodes of "
            "one log that differ for long are lagging",
            value=stats.position,
        )
