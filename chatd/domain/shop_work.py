"""The shop's own work in a chat (version 1.1): who of its operators has the chat, and the
private notes its operators leave there.

Both append events only the shop's side reads (`protocol.events.SHOP_ONLY_KINDS`); who that
is, is the role policy's `shop_events`, and the routing and every read follow it. Nothing
here decides visibility: this module only says when the shop may append them.
"""

from __future__ import annotations

from datetime import datetime

from chatd.domain import policy
from chatd.domain.actors import author_of, system_author
from chatd.domain.commands import AssignChat, PostNote, ShopCommand
from chatd.domain.drafts import Draft, stamp
from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.model import ChatState
from chatd.domain.rules import Rules
from protocol.events import ChatAssigned, Event, NotePosted, Operator


def decide_shop(
    state: ChatState, command: ShopCommand, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    if isinstance(command, AssignChat):
        return assign(state, command, now, rules)
    return post_note(state, command, now, rules)


def assign(
    state: ChatState, command: AssignChat, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    """`chat.assigned`, authored by the marketplace as the contract has it, naming the
    operator who has the chat now and the one who assigned it (`by`).

    Assigning the operator already in charge appends again: every press is kept, and the
    `ack` names its own event, so a client never has to tell "done" from "already so"."""
    refused = policy.check(command.actor, "assign", state)
    if refused is not None:
        return refused
    actor = command.actor
    # An API key is no operator: its assignments say nobody did them.
    by = Operator(id=actor.id, name=actor.name) if actor.scopes is None else None
    draft = Draft(
        data=ChatAssigned(operator=command.operator, by=by),
        author=system_author(rules.marketplace),
    )
    return stamp(state.chat, state.seq, now, [draft])


def post_note(
    state: ChatState, command: PostNote, now: datetime, rules: Rules
) -> list[Event] | Rejection:
    """`note`, authored as the shop's messages are. Bounded as a message's text (1 to 1000
    characters after trimming) but not read by the contacts filter: the buyer never sees
    it, so there is no one for a contact to reach."""
    refused = policy.check(command.actor, "note", state)
    if refused is not None:
        return refused
    text = command.text.strip()
    if not text:
        return bad_frame(f"text is empty: write 1 to {rules.max_text} characters")
    if len(text) > rules.max_text:
        return bad_frame(f"text is {len(text)} characters long; at most {rules.max_text}")
    draft = Draft(
        data=NotePosted(),
        author=author_of(command.actor, state.buyer, state.seller),
        text=text,
    )
    return stamp(state.chat, state.seq, now, [draft])
