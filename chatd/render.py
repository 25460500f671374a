"""Events as one viewer sees them: the wire `event` frame built from a stored event."""

from __future__ import annotations

from typing import Literal

from chatd import cursor
from chatd.store.base import Stored
from protocol.events import Role
from protocol.frames import EventFrame

# Managers read the shop's wording of texts; only a buyer's view differs.
View = Literal["buyer", "seller"]


def view_of(role: Role) -> View:
    return "buyer" if role == "buyer" else "seller"


def event_frame(stored: Stored, log_id: str, view: View) -> EventFrame:
    event = stored.event
    return EventFrame(
        chat=event.stream,
        seq=event.seq,
        cursor=cursor.make(log_id, stored.pos),
        at=event.at,
        kind=event.kind,
        author=event.author,
        data=event.data,
        text=event.text_for(view),
    )
