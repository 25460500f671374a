"""Settings the rules depend on; passed into `decide`, never read from globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Rules:
    marketplace: str = "Wildberries"
    # The marketplace's time zone: the calendar in which days are counted and dates shown.
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    reply_window: timedelta = timedelta(days=10)
    # A return through the chat opens on this calendar day after the day of purchase, at
    # midnight in `timezone` (docs/protocol.md): a count of days, not a duration.
    return_opens_days: int = 14
    # How long a request waits for the shop's decision before the managers take it over,
    # and how long the shop's offer waits for the buyer: the defaults of the contract, which
    # `--claim-deadline` and `--offer-deadline` are to set.
    claim_deadline: timedelta = timedelta(days=10)
    offer_deadline: timedelta = timedelta(days=14)
    max_text: int = 1000
    # The buyer's comment on a request; the shop's reason and the manager's comment.
    max_comment: int = 1000
    max_reason: int = 500


DEFAULT_RULES = Rules()
