"""Returns through the chat, end to end through the portal's buttons and dialogs, with the
shop's page and the buyer's page side by side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    balances,
    buyer_token,
    chat_item,
    dialog,
    manager_token,
    messages_with,
    moscow_day,
    open_chat,
    service_with,
    shop_token,
    system_post,
)
from tests.e2e.harness import ServerProcess

expect = sync_api.expect

SKIRT_REQUEST = (
    'Здравствуйте! Хочу вернуть товар "Юбка короткая плиссе со складками, бренд SK - Line, '
    'размер S, артикул 140158860, товар получен 17.08.2023"'
)
REFUNDED = "Денежные средства возвращены на баланс покупателя."
REJECT_NOTE = (
    "Покупатель может оспорить ваше решение, тогда заявка будет передана на рассмотрение "
    "менеджеру Wildberries."
)


def skirt_card(page: Any) -> Any:
    return page.locator(".kind-return-requested .product-card", has_text="Юбка короткая")


def test_shop_approves_a_return_to_the_pickup_point(
    pages: Pages, server: ServerProcess, screenshot: Callable[[Any, str], Path]
) -> None:
    shop = pages.open(shop_token())
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))

    # The inbox as on the portal: chats on the left, nothing chosen yet.
    expect(shop.locator(".inbox-title")).to_have_text("Чат с покупателями")
    expect(shop.locator(".placeholder-text")).to_have_text("Выберите диалог в списке слева")
    expect(chat_item(shop, "Люда").locator(".chat-item-date")).to_have_text("04.03.2023")
    expect(chat_item(shop, "Люда").locator(".badge")).to_have_text("1")
    expect(chat_item(shop, "Тимур").locator(".badge")).to_have_text("1")

    open_chat(buyer, SHOP_NAME)
    open_chat(shop, "Тимур")

    # The product card above the buyer's request, with the two buttons.
    card = skirt_card(shop)
    expect(card.locator(".card-status")).to_have_text("Товар выкуплен")
    # The portal's layout: «brand / name».
    expect(card.locator(".card-name")).to_have_text("SK - Line / Юбка короткая плиссе со складками")
    expect(card.locator(".card-props")).to_contain_text("Размер: S")
    expect(card.locator(".card-props")).to_contain_text("Цвет: черный")
    expect(card.locator(".card-article")).to_have_text("Артикул WB: 140158860")
    expect(card.locator(".card-price")).to_have_text("1 186 руб")
    film = shop.locator(".kind-return-requested .product-card", has_text="Galaxy S23")
    expect(film.locator(".card-price")).to_have_text("27,53 BYN")
    request = shop.locator(".kind-return-requested", has_text="Юбка короткая").locator(".msg")
    expect(request.locator(".msg-author")).to_have_text("Тимур")
    expect(request.locator(".msg-time")).to_have_text("17:03")
    expect(request.locator(".msg-text")).to_have_text(SKIRT_REQUEST)
    # The demo's request came yesterday; the shop has 10 days to answer it.
    expect(shop.locator(".day-sep", has_text=moscow_day(-1))).to_have_count(1)
    expect(service_with(shop, "Процедура возврата отменена продавцом.")).to_have_count(1)
    expect(shop.locator(".reply-due")).to_contain_text(f"Ответить до {moscow_day(9)}, 17:03")
    expect(chat_item(shop, "Тимур").locator(".badge")).to_have_count(0)
    agree = card.get_by_role("button", name="Согласиться на возврат")
    refuse = card.get_by_role("button", name="Отказать в возврате")
    expect(agree).to_be_visible()
    expect(refuse).to_be_visible()
    screenshot(shop, "inbox.png")

    # «Отказать в возврате» asks first; «Отменить» only closes the dialog.
    refuse.click()
    expect(dialog(shop).locator(".modal-title")).to_have_text("Отклонить заявку на возврат?")
    expect(dialog(shop)).to_contain_text("Товар останется у покупателя.")
    expect(dialog(shop)).to_contain_text(REJECT_NOTE)
    dialog(shop).get_by_role("button", name="Отменить").click()
    expect(dialog(shop)).to_have_count(0)
    expect(agree).to_be_visible()

    # After agreeing: the two ways to return; refusing stays in the ⋮ menu.
    agree.click()
    pvz = card.get_by_role("button", name="Возврат на ПВЗ")
    expect(pvz).to_be_visible()
    expect(card.get_by_role("button", name="Возврат товара не нужен")).to_be_visible()
    expect(card.get_by_role("button", name="Согласиться на возврат")).to_have_count(0)
    shop.click(".menu-btn")
    expect(shop.get_by_role("menuitem", name="Отказать в возврате товара")).to_be_visible()
    shop.click(".menu-btn")
    expect(shop.locator(".menu-popup")).to_have_count(0)

    # The refund confirmation; «Отменить» closes it and nothing is decided.
    pvz.click()
    expect(dialog(shop).locator(".modal-title")).to_have_text("Полный возврат денежных средств")
    expect(dialog(shop).locator(".modal-body")).to_have_text(
        "Вы подтверждаете возврат денежных средств в размере 1186 Р?"
    )
    screenshot(shop, "return-dialog.png")
    dialog(shop).get_by_role("button", name="Отменить").click()
    expect(dialog(shop)).to_have_count(0)
    expect(service_with(shop, "Процедура возврата согласована.")).to_have_count(0)

    pvz.click()
    dialog(shop).get_by_role("button", name="Подтвердить").click()
    expect(dialog(shop)).to_have_count(0)

    # The service message on both sides, live; the buttons are gone.
    for page in (shop, buyer):
        expect(service_with(page, "Процедура возврата согласована.")).to_have_count(1)
        expect(page.locator(".service-author").last).to_have_text("Wildberries")
    expect(skirt_card(shop).locator(".card-state")).to_have_text("Возврат согласован")
    expect(skirt_card(shop).locator(".card-actions")).to_have_count(0)
    expect(shop.locator(".reply-due")).to_have_count(0)

    # The goods travel; the refund follows their arrival.
    for step in ("handed_in", "arrived"):
        response = system_post(server, "/api/v1/orders/order-skirt/logistics", {"event": step})
        assert response.status_code == 200, response.text
    for page in (shop, buyer):
        expect(service_with(page, "Товар сдан в пункт выдачи.")).to_have_count(1)
        expect(service_with(page, REFUNDED)).to_have_count(1)
    assert balances(server, buyer_token("buyer-timur", "Тимур")) == [
        {"value": 118600, "currency": "RUB"}
    ]
    expect(buyer.locator(".kind-return-requested .msg.mine", has_text="Юбка")).to_have_count(1)
    buyer.locator(".messages").evaluate("box => box.scrollTop = box.scrollHeight")
    screenshot(buyer, "buyer.png")


def test_refusal_dispute_and_the_managers_decision(pages: Pages, server: ServerProcess) -> None:
    shop = pages.open(shop_token())
    ivanov = pages.open(buyer_token("buyer-ivanov", "Иванов Иван Иванович"))
    manager = pages.open(manager_token())
    expect(manager.locator(".inbox-title")).to_have_text("Спорные заявки")
    # The demo has one disputed chat already (Марина's scarf); Иванов's is not there yet.
    expect(manager.locator(".chat-item")).to_have_count(1)
    expect(manager.locator(".chat-item", has_text="Иванов")).to_have_count(0)

    open_chat(ivanov, SHOP_NAME)
    open_chat(shop, "Иванов Иван Иванович")
    expect(messages_with(shop, "джинсы бракованные")).to_have_count(1)

    # The buyer wrote about a return, there are no buttons: the shop starts the procedure.
    jeans = shop.locator(".product-card", has_text="Джинсы женские суперслим")
    expect(jeans.locator(".card-received")).to_have_text("Товар получен 12 сентября 2022 г.")
    jeans.get_by_role("button", name="Инициировать процедуру возврата").click()
    expect(service_with(shop, "Ожидание подтверждения возврата покупателем.")).to_have_count(1)
    offer = (
        "Продавец предлагает оформить возврат товара «Джинсы женские суперслим». "
        "Чтобы продолжить, нажмите «Вернуть товар»."
    )
    expect(service_with(ivanov, offer)).to_have_count(1)

    # The buyer presses «Вернуть товар» and confirms: the request reaches the shop with its
    # buttons.
    ivanov.locator(".kind-return-initiated").get_by_role("button", name="Вернуть товар").click()
    dialog(ivanov).get_by_role("button", name="Отправить заявку").click()
    expect(dialog(ivanov)).to_have_count(0)
    request = shop.locator(".kind-return-requested")
    expect(request.locator(".msg-text")).to_contain_text("Хочу вернуть товар")
    expect(ivanov.locator(".kind-return-initiated .btn")).to_have_count(0)

    # Agree first, then refuse through the ⋮ menu, with a reason.
    request.get_by_role("button", name="Согласиться на возврат").click()
    expect(request.get_by_role("button", name="Возврат на ПВЗ")).to_be_visible()
    shop.click(".menu-btn")
    shop.get_by_role("menuitem", name="Отказать в возврате товара").click()
    expect(dialog(shop).locator(".modal-title")).to_have_text("Отклонить заявку на возврат?")
    dialog(shop).get_by_label("Причина отказа").fill("Джинсы носили: на коленях потёртости.")
    dialog(shop).get_by_role("button", name="Отклонить").click()
    for page in (shop, ivanov):
        expect(service_with(page, "Процедура возврата отменена продавцом.")).to_have_count(1)
    expect(request.locator(".card-actions")).to_have_count(0)

    # The buyer disputes; the claim reaches the managers, live.
    ivanov.get_by_role("button", name="Оспорить решение").click()
    dialog(ivanov).get_by_role("button", name="Оспорить").click()
    disputed = (
        "Покупатель оспорил решение продавца. Заявка передана на рассмотрение менеджеру "
        "Wildberries."
    )
    for page in (shop, ivanov):
        expect(service_with(page, disputed)).to_have_count(1)
    expect(ivanov.get_by_role("button", name="Оспорить решение")).to_have_count(0)

    expect(manager.locator(".chat-item")).to_have_count(2)
    open_chat(manager, "Иванов Иван Иванович")
    claim = manager.locator(".claims-bar .product-card", has_text="Джинсы")
    expect(claim.locator(".card-state")).to_have_text("Заявка на рассмотрении у менеджера")
    claim.get_by_role("button", name="Одобрить возврат").click()
    claim.get_by_role("button", name="Возврат товара не нужен").click()
    expect(dialog(manager)).to_contain_text("3490 Р")
    dialog(manager).get_by_role("button", name="Подтвердить").click()

    for page in (manager, shop, ivanov):
        expect(service_with(page, "Менеджер Wildberries одобрил возврат.")).to_have_count(1)
        expect(service_with(page, REFUNDED)).to_have_count(1)
    expect(claim.locator(".card-state")).to_have_text("Менеджер одобрил возврат")
    expect(claim.locator(".card-actions")).to_have_count(0)
    assert balances(server, buyer_token("buyer-ivanov", "Иванов Иван Иванович")) == [
        {"value": 349000, "currency": "RUB"}
    ]
