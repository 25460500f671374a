"""What one replay process measured, in a form that crosses process boundaries, and the
merge of several into one."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from chatd.loadtest.histogram import Latencies

MAX_EXAMPLES = 20


@dataclass
class Outcome:
    """Counts, histograms (encoded) and the latency timeline of one replay process."""

    actions: int = 0
    acked: int = 0
    sent_frames: int = 0
    deliveries: int = 0  # event frames received for checked chats
    events: int = 0  # distinct chat events the server appended for the replay
    connections: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    doubled: int = 0
    mismatched: int = 0
    examples: list[str] = field(default_factory=list)
    ack_latency: bytes = b""
    delivery_latency: bytes = b""
    # (scheduled time in seconds from the start, delivery latency in seconds), one per delivery.
    timeline_at: array[float] = field(default_factory=lambda: array("d"))
    timeline_latency: array[float] = field(default_factory=lambda: array("d"))
    finished: float = 0.0  # seconds from the start until the last action was answered
    last_delivery: float = 0.0

    def example(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def merge(outcomes: list[Outcome]) -> tuple[Outcome, Latencies, Latencies]:
    """One outcome of several, with the decoded ack and delivery histograms."""
    total = Outcome()
    acks = Latencies()
    deliveries = Latencies()
    for part in outcomes:
        total.actions += part.actions
        total.acked += part.acked
        total.sent_frames += part.sent_frames
        total.deliveries += part.deliveries
        total.events += part.events
        total.connections += part.connections
        total.errors.update(part.errors)
        total.lost += part.lost
        total.doubled += part.doubled
        total.mismatched += part.mismatched
        for text in part.examples:
            total.example(text)
        acks.merge(part.ack_latency)
        deliveries.merge(part.delivery_latency)
        total.timeline_at.extend(part.timeline_at)
        total.timeline_latency.extend(part.timeline_latency)
        total.last_delivery = max(total.last_delivery, part.last_delivery)
        total.finished = max(total.finished, part.finished)
    return total, acks, deliveries
