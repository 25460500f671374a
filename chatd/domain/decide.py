"""`decide(state, command, now, rules) -> events | Rejection`: every rule in one pure place."""

from __future__ import annotations

from datetime import datetime

from chatd.domain import policy
from chatd.domain.actors import author_of, system_author
from chatd.domain.commands import AssignChat, Command, OpenChat, PostMessage, PostNote
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.ids import chat_id
from chatd.domain.model import ChatState
from chatd.domain.moderation import ContactFinding, continued_contacts, find_contacts
from chatd.domain.returns import decide_return
from chatd.domain.rules import Rules
from chatd.domain.shop_work import decide_shop
from protocol.codes import ErrorCode
from protocol.events import ChatOpened, Event, MessagePosted
from protocol.texts import CONTACTS_FORBIDDEN


def decide(
    state: ChatState | None, command: Command, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    """The events `command` appends to the chat in `state` (None: the chat has no events).

    An empty list means the command is already satisfied (an existing chat was opened).
    """
    if isinstance(command, OpenChat):
        return open_chat(state, command, now, rules)
    if state is None:
        return Rejection(ErrorCode.NOT_FOUND, "no such chat")
    if isinstance(command, PostMessage):
        return post_message(state, command, now, rules)
    if isinstance(command, AssignChat | PostNote):
        return decide_shop(state, command, now, rules)
    return decide_return(state, command, now, rules)


def open_chat(
    state: ChatState | None, command: OpenChat, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    refused = policy.check(command.actor, "open")
    if refused is not None:
        return refused
    if state is not None:
        return []
    opened = ChatOpened(buyer=command.buyer, seller=command.seller, order=command.order)
    stream = chat_id(command.buyer.id, command.seller.id)
    draft = Draft(data=opened, author=system_author(rules.marketplace))
    return stamp(stream, 0, now, [draft])


def post_message(
    state: ChatState, command: PostMessage, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    refused = policy.check(command.actor, "send", state)
    if refused is not None:
        return refused
    text = command.text.strip()
    if len(text) > rules.max_text:
        return bad_frame(f"text is {len(text)} characters long; at most {rules.max_text}")
    if not text and not command.attachments:
        return bad_frame("text is empty: write 1 to 1000 characters or attach a file")
    refused = _contacts(state, command)
    if refused is not None:
        return refused
    draft = Draft(
        data=MessagePosted(attachments=list(command.attachments)),
        author=author_of(command.actor, state.buyer, state.seller),
        text=text,
    )
    return stamp(state.chat, state.seq, now, [draft])


def _contacts(state: ChatState, command: PostMessage) -> Rejection | None:
    """`contacts_forbidden` when the message, read after its side's last ones, or a file
    name holds a contact; None when it holds none.

    Every text the user wrote is checked: the file names too, as the other side reads
    them. A number split over messages is reported by the part in this one.
    """
    spans = find_contacts(command.text)
    if not spans:
        tail = state.buyer_tail if command.actor.role == "buyer" else state.seller_tail
        spans = continued_contacts(tail, command.text)
    files = [file.id for file in command.attachments if find_contacts(file.name)]
    if not spans and not files:
        return None
    details: dict[str, object] = {"spans": [_span(finding) for finding in spans]}
    if files:
        details["attachments"] = files
    return Rejection(ErrorCode.CONTACTS_FORBIDDEN, CONTACTS_FORBIDDEN, details)


def _span(finding: ContactFinding) -> list[int]:
    return [finding.start, finding.end]
