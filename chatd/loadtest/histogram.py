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
    """Latencies recorded in seconds, reported in milliseconds."""

    def __init__(self) -> None:
        self._histogram: Any = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    @property
    def count(self) -> int:
        return int(self._histogram.get_total_count())

    def record(self, seconds: float) -> None:
        micros = int(seconds * 1_000_000)
        self._histogram.record_value(min(max(micros, LOWEST_US), HIGHEST_US))

    def percentile_ms(self, percentile: float) -> float:
        return float(self._histogram.get_value_at_percentile(percentile)) / 1000.0

    def max_ms(self) -> float:
        return float(self._histogram.get_max_value()) / 1000.0

    def summary(self) -> dict[str, float | int]:
        """count, p50 ... p99.9, max and mean in milliseconds (zeros when empty)."""
        if self.count == 0:
            return {"count": 0, **{name: 0.0 for name, _ in PERCENTILES}, "max": 0.0, "mean": 0.0}
        result: dict[str, float | int] = {"count": self.count}
        for name, percentile in PERCENTILES:
            result[name] = round(self.percentile_ms(percentile), 3)
        result["max"] = round(self.max_ms(), 3)
        result["mean"] = round(float(self._histogram.get_mean_value()) / 1000.0, 3)
        return result

    def encode(self) -> bytes:
        encoded: bytes = self._histogram.encode()
        return encoded

    def merge(self, other: Latencies | bytes) -> None:
        if isinstance(other, Latencies):
            self._histogram.add(other._histogram)
        elif other:
            self._histogram.decode_and_add(other)

    @classmethod
    def decode(cls, encoded: bytes) -> Latencies:
        latencies = cls()
        latencies.merge(encoded)
        return latencies
