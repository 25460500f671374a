"""Latency over time: deliveries grouped by when they were due, with each group's
percentiles, for the report and its chart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_BUCKETS = 300


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float  # seconds from the start of the run
    width: float
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.count / self.width

    def as_dict(self) -> dict[str, float | int]:
        return {
            "t": round(self.start, 3),
            "deliveries": self.count,
            "per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
        }


def _rank(ordered: list[float], percentile: float) -> float:
    index = max(0, math.ceil(percentile / 100 * len(ordered)) - 1)
    return ordered[index]


def bucket_width(duration: float) -> float:
    """One second, or wider so that a long run has at most MAX_BUCKETS buckets."""
    return max(1.0, math.ceil(duration / MAX_BUCKETS))


def buckets(at: Sequence[float], latency: Sequence[float], width: float) -> list[Bucket]:
    groups: dict[int, list[float]] = {}
    for moment, value in zip(at, latency, strict=True):
        groups.setdefault(int(max(0.0, moment) // width), []).append(value)
    result: list[Bucket] = []
    for index in range(max(groups) + 1 if groups else 0):
        values = sorted(groups.get(index, []))
        if not values:
            result.append(Bucket(index * width, width, 0, 0.0, 0.0, 0.0))
            continue
        result.append(
            Bucket(
                start=index * width,
                width=width,
                count=len(values),
                p50_ms=_rank(values, 50) * 1000,
                p99_ms=_rank(values, 99) * 1000,
                max_ms=values[-1] * 1000,
            )
        )
    return result
