"""Hooks through which a store reports its commits; the web layer feeds them to /metrics."""

from __future__ import annotations


class StoreStats:
    """Does nothing by itself; `chatd.web.metrics` subclasses it to export histograms."""

    def observe_commit(self, seconds: float, batch_size: int) -> None:
        """One group commit of `batch_size` requests took `seconds`."""

    def observe_checkpoint(self, seconds: float) -> None:
        """One background checkpoint of the WAL (SQLite) took `seconds`."""
