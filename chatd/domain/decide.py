"""`decide(state, command, now, rules) -> events | Rejection`: every rule in one pure place."""

from __future__ import annotations

from datetime import datetime

from chatd.domain import policy
from chatd.domain.actors import author_of, system_author
from chatd.domain.commands import Command, OpenChat, PostMessage
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.ids import chat_id
from chatd.domain.model import ChatState
from chatd.domain.moderation import find_contacts
from chatd.domain.returns import decide_return
from chatd.domain.rules import Rules
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
    spans = find_contacts(command.text)
    if spans:
        return Rejection(
            ErrorCode.CONTACTS_FORBIDDEN,
            CONTACTS_FORBIDDEN,
            {"spans": [[s.start, s.end] for s in spans]},
        )
    draft = Draft(
        data=MessagePosted(attachments=list(command.attachments)),
        author=author_of(command.actor, state.buyer, state.seller),
        text=text,
    )
    return stamp(state.chat, state.seq, now, [draft])
