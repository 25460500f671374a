"""Projection rows derived from events: pure, used by every append and by `chatd rebuild`.

The service derives a command's rows here, with the chat's state after its events, in one
pass, and hands both to the append; the store only writes them. The same function serves
`chatd rebuild`, so a rebuilt projection equals the live one by construction; `tests/`
checks it anyway.
"""

from __future__ import annotations

import msgspec

from chatd.domain.evolve import evolve
from chatd.domain.model import ChatState
from chatd.domain.returns import claim_state_label
from chatd.search_text import normalise
from chatd.store.base import Stored
from chatd.store.rows import (
    ChatActivityRow,
    ChatRow,
    ClaimRow,
    FileRow,
    LedgerRow,
    OrderRow,
    Row,
    SearchRow,
)
from protocol.events import (
    SHOP_ONLY_KINDS,
    ChatOpened,
    Event,
    Kind,
    MessagePosted,
    OrderRegistered,
    RefundIssued,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
)
from protocol.texts import REFUND_REASON as REFUND_REASON  # the sales report's reason

_card_encoder = msgspec.msgpack.Encoder()
# The data that sends files in a chat: a message's, and a return request's photos (version
# 1.1). A tuple made once: `A | B` in the loop would build a union on every event.
_WITH_FILES = (MessagePosted, ReturnRequested)


def chat_rows(before: ChatState | None, events: list[Event]) -> tuple[ChatState | None, list[Row]]:
    """Rows for events appended to one chat, and the state after them."""
    rows: list[Row] = []
    state = before
    for event in events:
        state = evolve(state, event)
        if isinstance(event.data, ChatOpened):
            rows.append(
                ChatRow(
                    chat=event.stream,
                    buyer_id=event.data.buyer.id,
                    buyer_name=event.data.buyer.name,
                    seller_id=event.data.seller.id,
                    seller_name=event.data.seller.name,
                )
            )
        if event.text:
            text = event.text if event.text_buyer is None else f"{event.text}\n{event.text_buyer}"
            evidence = _evidence(event.data)
            if evidence:
                text = f"{text}\n{evidence}"
            rows.append(SearchRow(seq=event.seq, chat=event.stream, text=normalise(text)))
        if isinstance(event.data, _WITH_FILES):
            rows.extend(
                FileRow(
                    chat=event.stream,
                    seq=event.seq,
                    file=a.id,
                    name=a.name,
                    mime=a.mime,
                    size=a.size,
                    at=event.at,
                )
                for a in event.data.attachments
            )
        claim_id = getattr(event.data, "claim", None)
        if claim_id is not None and claim_id in state.claims:
            claim = state.claims[claim_id]
            rows.append(
                ClaimRow(
                    claim=claim.id,
                    chat=event.stream,
                    order=claim.order.id,
                    state=claim_state_label(claim),
                )
            )
            if isinstance(event.data, RefundIssued):
                rows.append(
                    LedgerRow(
                        claim=claim.id,
                        order=claim.order.id,
                        buyer_id=state.buyer.id,
                        seller_id=state.seller.id,
                        value=event.data.amount.value,
                        currency=event.data.amount.currency,
                        at=event.at,
                        article=claim.order.article,
                        name=claim.order.name,
                        reason=REFUND_REASON,
                    )
                )
    # The chat's activity is what everyone who sees the chat sees: a note or an assignment
    # moves no chat up anyone's list and is no chat's `last`, so the buyer's list tells
    # nothing of them (neither do they change when the shop's reply is due, or a dispute).
    shown = [event for event in events if event.kind not in SHOP_ONLY_KINDS]
    if state is not None and shown:
        rows.append(
            ChatActivityRow(
                chat=state.chat,
                last_seq=shown[-1].seq,
                waiting_since=state.waiting_since,
                managers_from=state.managers_from,
            )
        )
    return state, rows


def _evidence(data: object) -> str | None:
    """What a participant wrote into a claim (the buyer's comment on a request, the shop's
    reason for a refusal, the manager's comment on a decision): searched with the event."""
    if isinstance(data, ReturnRequested):
        return data.comment if isinstance(data.comment, str) else None
    if isinstance(data, ReturnRejected):
        return data.reason
    if isinstance(data, ReturnResolved):
        return data.comment
    return None


def order_rows(events: list[Event]) -> list[Row]:
    rows: list[Row] = []
    for event in events:
        data = event.data
        if isinstance(data, OrderRegistered):
            order = data.order
            rows.append(
                OrderRow(
                    order=order.id,
                    buyer_id=order.buyer.id,
                    buyer_name=order.buyer.name,
                    seller_id=order.seller.id,
                    seller_name=order.seller.name,
                    seq=event.seq,
                    card=_card_encoder.encode(order),
                )
            )
            photo = data.photo
            if photo is not None:
                # Under the order's stream: the files projection then answers both what
                # keeps an upload from the sweep and whose order names it
                # (`ReadModel.orders_with_file`), with no table of its own.
                rows.append(
                    FileRow(
                        chat=event.stream,
                        seq=event.seq,
                        file=photo.id,
                        name=photo.name,
                        mime=photo.mime,
                        size=photo.size,
                        at=event.at,
                    )
                )
    return rows


class LogProjector:
    """Derives the rows of the whole log event by event (for `chatd rebuild`)."""

    def __init__(self) -> None:
        self._states: dict[str, ChatState] = {}

    def __call__(self, stored: Stored) -> list[Row]:
        stream = stored.event.stream
        if stored.event.kind == Kind.ORDER_REGISTERED:
            return order_rows([stored.event])
        state, rows = chat_rows(self._states.get(stream), [stored.event])
        if state is not None:
            self._states[stream] = state
        return rows
