"""Evidence and reasons on claims (version 1.1): the buyer's comment and photos on a request,
the shop's reason for a refusal, the manager's comment on a decision. They travel in the
events' data; the service texts stay as they were; bad input is refused and appends nothing.
"""

from __future__ import annotations

from dataclasses import replace

import msgspec
import pytest

from chatd.domain.commands import RejectReturn, RequestReturn, ResolveReturn, ReturnCommand
from chatd.domain.ids import claim_id
from protocol.codec import CODECS, JSON
from protocol.codes import ErrorCode
from protocol.events import Attachment, Author
from protocol.frames import EventFrame
from tests.domain.test_returns import (
    MANAGER,
    OPERATOR,
    REJECTED_TEXT,
    SKIRT,
    SKIRT_T1,
    accept,
    appended,
    dispute,
    given_chat,
    initiate,
    kinds,
    opened,
    refused,
    reject,
    request,
    resolve,
    when,
)

PHOTO = Attachment(id="f-photo", name="брак.jpg", mime="image/jpeg", size=48_213)
RECEIPT = Attachment(id="f-receipt", name="чек.pdf", mime="application/pdf", size=90_000)


def asked(comment: str | None = None, *files: Attachment) -> RequestReturn:
    return replace(request(), comment=comment, attachments=files)


def refusal(reason: str | None) -> RejectReturn:
    return replace(reject(), reason=reason)


def decided(comment: str | None) -> ResolveReturn:
    return replace(resolve("reject"), comment=comment)


def wire_data(event_data: object) -> dict[str, object]:
    """The event's `data` as a JSON client receives it."""
    frame = EventFrame(
        chat="c",
        seq=2,
        cursor="x",
        at=SKIRT.purchased_at,
        kind="k",
        author=SYSTEM_AUTHOR,
        data=event_data,
    )
    decoded: dict[str, object] = msgspec.json.decode(CODECS[JSON].encode(frame))["data"]
    return decoded


SYSTEM_AUTHOR = Author(role="system", id="system", name="Wildberries")


# ---- the buyer's request --------------------------------------------------------------------


def test_a_request_carries_the_comment_and_the_photos_and_the_same_text() -> None:
    comment = "  Юбка порвалась по шву после первой носки, фото прилагаю.  "
    result = appended(when(opened(), asked(comment, PHOTO, RECEIPT)))
    assert kinds(result) == ["return.requested"]
    event = result[0]
    assert event.text == SKIRT_T1
    assert event.data.comment == comment.strip()
    assert event.data.attachments == [PHOTO, RECEIPT]
    data = wire_data(event.data)
    assert data["comment"] == comment.strip()
    assert data["attachments"] == [
        {"id": "f-photo", "name": "брак.jpg", "mime": "image/jpeg", "size": 48_213},
        {"id": "f-receipt", "name": "чек.pdf", "mime": "application/pdf", "size": 90_000},
    ]


def test_without_evidence_attachments_are_empty_and_there_is_no_comment() -> None:
    for command in (request(), asked("   \n ")):
        event = appended(when(opened(), command))[0]
        data = wire_data(event.data)
        assert data["attachments"] == []
        assert "comment" not in data


def test_taking_up_the_shops_offer_carries_evidence_too() -> None:
    events = given_chat(initiate())
    event = appended(when(events, asked("Согласна, верну", PHOTO)))[0]
    assert (event.data.comment, event.data.attachments) == ("Согласна, верну", [PHOTO])


def test_a_comment_of_1000_characters_after_trimming_passes_and_1001_does_not() -> None:
    assert kinds(when(opened(), asked("  " + "ж" * 1000 + "\n"))) == ["return.requested"]
    rejection = refused(when(opened(), asked("ж" * 1001)), ErrorCode.BAD_FRAME)
    assert rejection.message == "comment is 1001 characters long; at most 1000"


@pytest.mark.parametrize(
    ("comment", "spans"),
    [
        ("Позвоните мне: 8 916 123-45-67", [[15, 30]]),
        ("  пишите в телеграм", [[11, 19]]),
    ],
    ids=["phone", "messenger"],
)
def test_contacts_in_the_comment_are_refused(comment: str, spans: list[list[int]]) -> None:
    rejection = refused(when(opened(), asked(comment)), ErrorCode.CONTACTS_FORBIDDEN)
    # Offsets into the comment as sent, as for a message's text.
    assert rejection.details == {"field": "comment", "spans": spans}
    for span in spans:
        assert comment[span[0] : span[1]].strip()
    offered = given_chat(initiate())
    refused(when(offered, asked(comment)), ErrorCode.CONTACTS_FORBIDDEN)


def test_contacts_in_a_files_name_are_refused() -> None:
    named = Attachment(id="f-named", name="звоните 89161234567.jpg", mime="image/jpeg", size=1)
    rejection = refused(when(opened(), asked("Брак", PHOTO, named)), ErrorCode.CONTACTS_FORBIDDEN)
    assert rejection.details == {"field": "comment", "spans": [], "attachments": ["f-named"]}


def test_an_order_number_in_the_comment_is_no_phone() -> None:
    assert kinds(when(opened(), asked("номер заказа 89123456789"))) == ["return.requested"]


# ---- the shop's reason and the manager's comment --------------------------------------------


def test_a_refusal_carries_its_reason_and_the_same_text() -> None:
    events = given_chat(request())
    event = appended(when(events, refusal(" Товар был в употреблении ")))[0]
    assert event.text == REJECTED_TEXT
    assert event.data.reason == "Товар был в употреблении"
    assert wire_data(event.data) == {
        "claim": claim_id(SKIRT.id),
        "reason": "Товар был в употреблении",
    }
    # Without a reason the data is as in version 1.
    assert wire_data(appended(when(events, reject()))[0].data) == {"claim": claim_id(SKIRT.id)}


def test_a_reason_is_at_most_500_characters_and_free_of_contacts() -> None:
    events = given_chat(request())
    assert kinds(when(events, refusal("ж" * 500))) == ["return.rejected"]
    rejection = refused(when(events, refusal("ж" * 501)), ErrorCode.BAD_FRAME)
    assert rejection.message == "reason is 501 characters long; at most 500"
    rejection = refused(
        when(events, refusal("Напишите нам в WhatsApp")), ErrorCode.CONTACTS_FORBIDDEN
    )
    assert rejection.details is not None and rejection.details["field"] == "reason"


def test_a_managers_decision_carries_its_comment() -> None:
    events = given_chat(request(), reject(), dispute())
    event = appended(when(events, decided("Фото подтверждают износ")))[0]
    assert event.text == "Менеджер Wildberries отклонил возврат. Товар остаётся у покупателя."
    assert event.data.comment == "Фото подтверждают износ"
    approved = replace(resolve("approve", "pvz"), comment="Брак заводской")
    data = wire_data(appended(when(events, approved))[0].data)
    assert data == {
        "claim": claim_id(SKIRT.id),
        "decision": "approve",
        "mode": "pvz",
        "comment": "Брак заводской",
    }
    assert "comment" not in wire_data(appended(when(events, resolve("reject")))[0].data)


def test_a_managers_comment_is_at_most_500_characters() -> None:
    events = given_chat(request(), reject(), dispute())
    assert kinds(when(events, decided("ж" * 500))) == ["return.resolved"]
    rejection = refused(when(events, decided("ж" * 501)), ErrorCode.BAD_FRAME)
    assert rejection.message == "comment is 501 characters long; at most 500"


# ---- the order of the checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        asked("ж" * 1001),
        replace(asked("ж" * 1001), actor=OPERATOR),
        replace(refusal("ж" * 501), actor=MANAGER),
        replace(decided("ж" * 501), claim="r-unknown"),
    ],
    ids=["buyer", "seller-requesting", "manager-rejecting", "unknown-claim"],
)
def test_an_overlong_text_is_a_bad_frame_before_anything_is_looked_up(
    command: ReturnCommand,
) -> None:
    # It depends on the frame alone, like any malformed frame: no hint about roles or ids.
    refused(when(given_chat(request()), command), ErrorCode.BAD_FRAME)


def test_contacts_are_checked_after_the_claims_state() -> None:
    events = given_chat(request())
    refused(when(events, asked("8 916 123-45-67")), ErrorCode.RETURN_ALREADY_REQUESTED)
    rejected = accept(events, reject())
    refused(when(rejected, refusal("пишите в телеграм")), ErrorCode.CONFLICT)
