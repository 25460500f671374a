"""A shop's canned replies (docs/protocol.md, "Canned replies"): what a template may hold,
and the ones a shop starts with.

Pure, like the rest of the domain: the HTTP shell (chatd.web.templates_api) decodes a body
and asks `checked`; the store keeps what passes. A template exists to be sent, so its text
is held to a message's rules when it is saved: its length, and the contacts filter, with
the findings reported as a message's are. (An operator may still edit the text in the
composer, and the message is filtered again when sent.) The shortcut and the title are the
operators' own labels, which the buyer never sees: no filter reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from chatd.domain.errors import Rejection, bad_frame
from chatd.domain.moderation import find_contacts
from protocol.codes import ErrorCode
from protocol.texts import CONTACTS_FORBIDDEN

SHORTCUT: Final = re.compile(r"[a-z0-9_-]{1,32}")
MAX_TITLE: Final = 100
# A template is sent as a message: the same bound (chatd.domain.rules.Rules.max_text).
MAX_TEXT: Final = 1000
# The picker shows them all; a shop needs dozens, not thousands, and every GET lists them.
MAX_PER_SHOP: Final = 200


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """A template's fields as kept: the title and the text trimmed."""

    shortcut: str
    title: str
    text: str


def checked(
    shortcut: str, title: str, text: str, max_text: int = MAX_TEXT
) -> TemplateDraft | Rejection:
    """The template as it is to be kept, or why not: `bad_frame` for a field out of its
    bounds (checked in the order of the fields), then `contacts_forbidden` with
    `details.field` ("text") and `details.spans` (offsets into `text` as sent, as for a
    message)."""
    if SHORTCUT.fullmatch(shortcut) is None:
        return bad_frame(
            f"shortcut {shortcut[:40]!r} is not 1 to 32 of the characters a-z, 0-9, _ and -"
        )
    kept_title = title.strip()
    if not kept_title or len(kept_title) > MAX_TITLE:
        return bad_frame(f"title is {len(kept_title)} characters long; 1 to {MAX_TITLE}")
    kept_text = text.strip()
    if not kept_text or len(kept_text) > max_text:
        return bad_frame(f"text is {len(kept_text)} characters long; 1 to {max_text}")
    spans = find_contacts(text)
    if spans:
        details = {"field": "text", "spans": [[found.start, found.end] for found in spans]}
        return Rejection(ErrorCode.CONTACTS_FORBIDDEN, CONTACTS_FORBIDDEN, details)
    return TemplateDraft(shortcut=shortcut, title=kept_title, text=kept_text)


@cache
def defaults(marketplace: str) -> tuple[TemplateDraft, ...]:
    """What a shop finds at its first look at its templates, in the portal's language.

    Among them the portal's own hint: this chat is for the shop's goods, and questions about
    the platform (delivery, payment, pick-up points, the account) go to the marketplace's
    support, named `marketplace`. A default the contacts filter would refuse (a marketplace
    named like a rival platform) is left out: a template must be sendable."""
    drafts = [
        TemplateDraft(
            "hello",
            "Приветствие",
            "Здравствуйте! Спасибо, что написали нам. Уже смотрим ваш вопрос и скоро ответим "
            "здесь, в чате.",
        ),
        TemplateDraft(
            "support",
            "Вопросы о площадке",
            "Этот чат — для вопросов о товарах нашего магазина. С вопросами о самой площадке "
            "(доставка, оплата, пункты выдачи, личный кабинет) обратитесь, пожалуйста, в "
            f"поддержку {marketplace}: раздел «Поддержка» в приложении или на сайте.",
        ),
        TemplateDraft(
            "return",
            "Как оформить возврат",
            "Вернуть товар можно прямо в этом чате: оформите заявку на возврат, выберите "
            "заказ, опишите, что не так, и приложите фото. Мы рассмотрим заявку и ответим "
            "здесь же.",
        ),
        TemplateDraft(
            "size",
            "Подбор размера",
            "Подскажите, пожалуйста, ваши обычные размеры и параметры (рост, обхват груди, "
            "талии и бёдер) — поможем подобрать подходящий размер.",
        ),
        TemplateDraft(
            "check",
            "Уточняем",
            "Спасибо за подробности! Передали информацию ответственному сотруднику и вернёмся "
            "с ответом в этом чате.",
        ),
        TemplateDraft(
            "thanks",
            "Благодарность",
            "Спасибо, что выбрали наш магазин! Будем рады, если оставите отзыв о товаре на его "
            "странице.",
        ),
    ]
    return tuple(draft for draft in drafts if not find_contacts(draft.text))
