"""The service texts a chat shows (docs/protocol.md section 6), character for character, and every
other Russian text chatd itself shows to users.

They are part of the wire contract: clients, bots and outside test suites compare them exactly,
so they live here, in one module of `protocol`, and nothing else spells them. Texts that name
the marketplace or an order are small render functions; the rest are constants. (The browser
app's own wording stays in its static files; the contacts filter's vocabulary in
`chatd/domain/moderation.py` is what it looks for, not what it shows.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from protocol.events import OrderCard

# return.initiated, as the shop (and a manager) reads it; the buyer reads `offer_text`.
AWAITING_BUYER = "Ожидание подтверждения возврата покупателем."
APPROVED = "Процедура возврата согласована."
REJECTED = "Процедура возврата отменена продавцом."
HANDED_IN = "Товар сдан в пункт выдачи."
ARRIVED = "Товар поступил на склад."
REFUND_ISSUED = "Денежные средства возвращены на баланс покупателя."
INSPECTED_DEFECT = "Склад обнаружил недостатки, товар будет возвращён продавцу."
INSPECTED_NO_DEFECT = "Недостатков не обнаружено, товар будет отправлен на продажу."
# Version 1.1: offers that end unanswered.
WITHDRAWN = "Продавец отозвал предложение о возврате."
EXPIRED = "Срок предложения о возврате истёк."

# The `reason` of a refund's row in the shop's sales report (docs/protocol.md sections 7 and 8).
REFUND_REASON = "Возврат"

# The `message` of a `contacts_forbidden` error. The contract fixes the code and
# `details.spans`, not these words, which are chatd's; a client may show them as they are.
CONTACTS_FORBIDDEN = "Обмен контактами и приглашения на другие площадки запрещены"


def return_request_text(order: OrderCard, timezone: tzinfo) -> str:
    """T1: the buyer's return request, built from the order card.

    The date is the day the goods were received in the marketplace's time zone, which is
    the day the buyer saw on the marketplace, not necessarily the UTC day.
    """
    if order.received_at is None:
        raise ValueError(f"order {order.id} is not bought out: it has no received_at")
    received = as_utc(order.received_at).astimezone(timezone)
    size = f", размер {order.size}" if order.size else ""
    return (
        f'Здравствуйте! Хочу вернуть товар "{order.name}, бренд {order.brand}{size}, '
        f'артикул {order.article}, товар получен {received:%d.%m.%Y}"'
    )


def offer_text(order: OrderCard) -> str:
    """T2: how the buyer reads the shop's offer to return an order (return.initiated)."""
    return (
        f"Продавец предлагает оформить возврат товара «{order.name}». "
        "Чтобы продолжить, нажмите «Вернуть товар»."
    )


def disputed_text(marketplace: str) -> str:
    return (
        "Покупатель оспорил решение продавца. "
        f"Заявка передана на рассмотрение менеджеру {marketplace}."
    )


def escalated_text(marketplace: str) -> str:
    """return.escalated: the shop let a request's deadline pass (version 1.1)."""
    return (
        "Продавец не ответил на заявку вовремя. "
        f"Заявка передана на рассмотрение менеджеру {marketplace}."
    )


def too_early_text(opens_on: date) -> str:
    """The `message` of `return_too_early` (version 1.1), with the day the chat opens for
    the return in the marketplace's time zone. The contract fixes the code and
    `details.opens_at`, and asks the message to send the buyer to «Проверка товара» until
    then; these words are chatd's."""
    return (
        f"Запросить возврат через чат можно с {opens_on:%d.%m.%Y}. "
        "До этого возврат товара проходит через «Проверка товара»."
    )


def resolved_approved_text(marketplace: str) -> str:
    return f"Менеджер {marketplace} одобрил возврат."


def resolved_rejected_text(marketplace: str) -> str:
    return f"Менеджер {marketplace} отклонил возврат. Товар остаётся у покупателя."


def inspected_text(defect: bool) -> str:
    return INSPECTED_DEFECT if defect else INSPECTED_NO_DEFECT


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
