"""Token buckets: `rate` frames a second with bursts of `burst`; one per connection and one
shared by all the connections of a user, so that opening more sockets buys no more budget."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


class TokenBucket:
    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def wait(self) -> float:
        """0 when a token is there; else the seconds until one will be. Spends nothing."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) / self.rate

    def spend(self) -> None:
        self._tokens -= 1

    def left(self) -> float:
        """The tokens left as of the last `wait` (what an HTTP answer reports)."""
        return max(0.0, self._tokens)

    def full_in(self) -> float:
        """Seconds from the last `wait` until the bucket is full again."""
        return max(0.0, self.burst - self._tokens) / self.rate


def admit(buckets: Sequence[TokenBucket]) -> float:
    """0 when every bucket has a token (and each spends one); else the longest wait.

    A refused frame spends nothing from any bucket."""
    wait = max(bucket.wait() for bucket in buckets)
    if wait == 0:
        for bucket in buckets:
            bucket.spend()
    return wait
