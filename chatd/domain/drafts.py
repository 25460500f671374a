"""Events before they have a place in the stream; `stamp` gives them seq and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from msgspec import Struct

from protocol.events import Author, Event, kind_of


@dataclass(frozen=True, slots=True)
class Draft:
    data: Struct
    author: Author
    text: str | None = None
    text_buyer: str | None = None


def stamp(stream: str, last_seq: int, at: datetime, drafts: list[Draft]) -> list[Event]:
    return [
        Event(
            stream=stream,
            seq=last_seq + offset,
            at=at,
            kind=kind_of(draft.data),
            author=draft.author,
            data=draft.data,
            text=draft.text,
            text_buyer=draft.text_buyer,
        )
        for offset, draft in enumerate(drafts, start=1)
    ]
