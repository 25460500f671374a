"""Settings the rules depend on; passed into `decide`, never read from globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Rules:
    marketplace: str = "Wildberries"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    reply_window: timedelta = timedelta(days=10)
    return_opens_after: timedelta = timedelta(days=14)
    max_text: int = 1000


DEFAULT_RULES = Rules()
