"""The results of a replay as JSON, and the figures its chart page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatd.loadtest.histogram import Latencies
from chatd.loadtest.plan import Plan
from chatd.loadtest.replay import ReplaySettings
from chatd.loadtest.results import Outcome
from chatd.loadtest.timeline import Bucket, bucket_width, buckets
from chatd.loadtest.validate import LogCheck


@dataclass(frozen=True, slots=True)
class ReplayRun:
    log: str
    check: LogCheck
    plan: Plan
    settings: ReplaySettings
    processes: int
    started_at: datetime
    duration: float  # seconds from the start to the last answer or delivery
    outcome: Outcome
    acks: Latencies
    deliveries: Latencies

    @property
    def ok(self) -> bool:
        o = self.outcome
        return o.error_count == 0 and o.lost == 0 and o.doubled == 0 and o.mismatched == 0

    def timeline(self) -> list[Bucket]:
        o = self.outcome
        return buckets(o.timeline_at, o.timeline_latency, bucket_width(self.duration))


def _per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def report(run: ReplayRun, chart: str | None = None) -> dict[str, Any]:
    o = run.outcome
    check = run.check
    speed = run.settings.speed
    offered_rate = (
        _per_second(run.plan.actions, run.plan.span / speed) if speed and run.plan.span else None
    )
    return {
        "ok": run.ok,
        "log": {
            "path": run.log,
            "events": check.events,
            "chats": check.chats,
            "orders": check.orders,
            "claims": check.claims,
            "buyers": len(check.buyers),
            "shops": len(check.shops),
            "operators": len(check.operators),
            "span_s": round(run.plan.span, 3),
        },
        "run": {
            "url": run.settings.url,
            "speed": "max" if speed is None else speed,
            "processes": run.processes,
            "connections_per_actor": run.settings.connections,
            "connections": o.connections,
            "started_at": run.started_at.isoformat(),
            "duration_s": round(run.duration, 3),
        },
        "offered": {"actions": run.plan.actions, "per_s": offered_rate},
        "delivered": {
            "events": o.events,
            "deliveries": o.deliveries,
            "events_per_s": _per_second(o.events, run.duration),
            "deliveries_per_s": _per_second(o.deliveries, run.duration),
        },
        "acked": o.acked,
        "errors": {"total": o.error_count, "by_code": dict(sorted(o.errors.items()))},
        "check": {
            "lost": o.lost,
            "doubled": o.doubled,
            "mismatched": o.mismatched,
            "examples": o.examples,
        },
        "latency_ms": {"ack": run.acks.summary(), "delivery": run.deliveries.summary()},
        "timeline": [b.as_dict() for b in run.timeline()],
        "chart": chart,
    }


def summary_rows(run: ReplayRun) -> list[tuple[str, str]]:
    o = run.outcome
    delivery = run.deliveries.summary()
    ack = run.acks.summary()
    speed = run.settings.speed
    return [
        ("log", f"{run.log}: {run.check.events} events, {run.check.chats} chats"),
        ("speed", "max" if speed is None else f"x{speed:g}"),
        ("processes / connections", f"{run.processes} / {o.connections}"),
        ("duration", f"{run.duration:.2f} s"),
        ("events appended", f"{o.events} ({_per_second(o.events, run.duration):,.0f}/s)"),
        ("deliveries", f"{o.deliveries} ({_per_second(o.deliveries, run.duration):,.0f}/s)"),
        ("errors", f"{o.error_count} {dict(o.errors) if o.errors else ''}".strip()),
        ("lost / doubled / mismatched", f"{o.lost} / {o.doubled} / {o.mismatched}"),
        (
            "delivery latency, ms",
            f"p50 {delivery['p50']} p90 {delivery['p90']} p99 {delivery['p99']} "
            f"p99.9 {delivery['p99.9']} max {delivery['max']}",
        ),
        (
            "ack latency, ms",
            f"p50 {ack['p50']} p99 {ack['p99']} p99.9 {ack['p99.9']} max {ack['max']}",
        ),
    ]
