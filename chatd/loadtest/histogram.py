"""Latency histograms: HdrHistogram (the `hdrhistogram` package) in microseconds, 3
significant figures, from 1 µs to 10 minutes. Mergeable across processes by its encoding."""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 600_000_000
DIGITS = 3
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


class Latencies:
    """Latencies recorded in seconds, reported in milliseconds.

    The mean is kept as a running sum: the histogram's own walks every bucket in Python, ~33
    ms for one period of a load test, and a load generator that stops to report a period
    sends the next one's messages late (a latency it then blames on the server). Only a
    histogram merged from another process's encoding, which carries no sum, asks for it."""

    def __init__(self) -> None:
        self._histogram: Any = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        # The recorded values' sum in µs, None once an encoding without one was merged in.
        self._sum_us: int | None = 0

    @property
    def count(self) -> int:
        return int(self._histogram.get_total_count())

    def record(self, seconds: float) -> None:
        micros = min(max(int(seconds * 1_000_000), LOWEST_US), HIGHEST_US)
        self._histogram.record_value(micros)
        if self._sum_us is not None:
            self._sum_us += micros

    def percentile_ms(self, percentile: float) -> float:
        return float(self._histogram.get_value_at_percentile(percentile)) / 1000.0

    def max_ms(self) -> float:
        return float(self._histogram.get_max_value()) / 1000.0

    def mean_ms(self) -> float:
        count = self.count
        if count == 0:
            return 0.0
        if self._sum_us is not None:
            return self._sum_us / count / 1000.0
        return float(self._histogram.get_mean_value()) / 1000.0

    def summary(self) -> dict[str, float | int]:
        """count, p50 ... p99.9, max and mean in milliseconds (zeros when empty)."""
        if self.count == 0:
            return {"count": 0, **{name: 0.0 for name, _ in PERCENTILES}, "max": 0.0, "mean": 0.0}
        result: dict[str, float | int] = {"count": self.count}
        for name, percentile in PERCENTILES:
            result[name] = round(self.percentile_ms(percentile), 3)
        result["max"] = round(self.max_ms(), 3)
        result["mean"] = round(self.mean_ms(), 3)
        return result

    def encode(self) -> bytes:
        encoded: bytes = self._histogram.encode()
        return encoded

    def merge(self, other: Latencies | bytes) -> None:
        if isinstance(other, Latencies):
            self._histogram.add(other._histogram)
            if self._sum_us is not None and other._sum_us is not None:
                self._sum_us += other._sum_us
            else:
                self._sum_us = None
        elif other:
            before = self.count
            self._histogram.decode_and_add(other)
            if self.count != before:  # values whose sum is not known
                self._sum_us = None

    @classmethod
    def decode(cls, encoded: bytes) -> Latencies:
        latencies = cls()
        latencies.merge(encoded)
        return latencies
