"""The seller portal around the chat: its top navigation, the chat list's filters, the
shop's balance and sales report as a page of the app, and the product card's photo."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright import sync_api as sync_api

from tests.browser.driver import (
    Pages,
    chat_item,
    dialog,
    hours_ago,
    open_buyer_chat,
    open_chat,
    png,
    register_order,
    request_return,
    send_message,
    shop_token,
    system_upload,
)
from tests.e2e.harness import ServerProcess, uid

expect = sync_api.expect

REFUNDED = "Денежные средства возвращены на баланс покупателя."


def names(page: Any) -> list[str]:
    return list(page.locator(".chat-item .chat-item-name").all_inner_texts())


def test_the_top_navigation_is_the_portals(pages: Pages) -> None:
    shop = pages.open(shop_token())
    nav = shop.locator("nav.topnav")
    expect(nav.locator(".nav-top")).to_have_text(
        [
            "Администрирование", "Товары", "Поставки", "Цены и скидки", "Аналитика",
            "Карта складов", "Реклама", "Маркетплейс",
        ]
    )  # fmt: skip
    expect(nav.locator(".nav-group.active > .nav-top")).to_have_text("Товары")

    # «Товары» opens its submenu, «Проверка товара» among it; the chat is the current page.
    nav.get_by_role("button", name="Товары").click()
    menu = nav.get_by_role("menu", name="Товары")
    expect(menu.get_by_role("menuitem")).to_have_text(
        [
            "Карточка товара", "Отзывы и вопросы", "Мои бренды", "Рекомендации",
            "Проверка товара", "Чат с покупателями",
        ]
    )  # fmt: skip
    expect(menu.get_by_role("menuitem", name="Проверка товара")).to_have_attribute(
        "aria-disabled", "true"
    )
    expect(menu.get_by_role("menuitem", name="Чат с покупателями")).to_have_attribute(
        "aria-current", "page"
    )
    # An inert section changes nothing.
    nav.get_by_text("Поставки").click()
    expect(shop.locator(".inbox")).to_be_visible()


def test_the_chat_list_filters(pages: Pages, server: ServerProcess) -> None:
    # A new buyer writes today: unanswered, not overdue.
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Зоя")
    buyer = open_buyer_chat(pages, buyer_id, "Зоя", order_id)
    send_message(buyer, "Здравствуйте! Плед можно стирать в машинке?")
    expect(buyer.locator(".msg-text", has_text="в машинке")).to_have_count(1)

    shop = pages.open(shop_token())
    filters = shop.locator(".inbox-filters")
    expect(filters.locator(".filter-chip")).to_have_count(3)

    def choose(label: str) -> list[str]:
        """Turns the filter on; the chats it shows, as many as its chip counts."""
        chip = filters.get_by_role("button", name=label)
        chip.click()
        expect(chip).to_have_attribute("aria-pressed", "true")
        count = int(chip.locator(".filter-count").inner_text())
        expect(shop.locator(".chat-item")).to_have_count(count)
        return names(shop)

    # From the demo: Люда's «товар не отправили» waits since 2023, Владислав got his answer,
    # Марина's disputed scarf waits for a manager.
    unanswered = choose("Без ответа")
    assert "Зоя" in unanswered and "Люда" in unanswered, unanswered
    assert "Владислав" not in unanswered, unanswered
    overdue = choose("Просрочено")
    assert "Люда" in overdue and "Зоя" not in overdue, overdue
    expect(shop.locator(".chat-item .tag-overdue")).to_have_count(len(overdue))
    with_claims = choose("С заявкой")
    assert "Марина" in with_claims and "Люда" not in with_claims, with_claims
    expect(shop.locator(".chat-item .tag-claims")).to_have_count(len(with_claims))

    # The shop answers Люда: she leaves the unanswered and the overdue, live.
    filters.get_by_role("button", name="Без ответа").click()
    open_chat(shop, "Люда")
    send_message(shop, "Здравствуйте! Отправили сегодня, номер отслеживания пришлём.")
    expect(chat_item(shop, "Люда")).to_have_count(0)
    assert "Люда" not in choose("Просрочено")

    # The same chip again turns the filter off: every chat.
    filters.get_by_role("button", name="Просрочено").click()
    expect(shop.locator(".chat-item")).to_have_count(7)


def test_the_finance_page(
    pages: Pages, server: ServerProcess, screenshot: Callable[[Any, str], Path]
) -> None:
    accountant = pages.open(shop_token("op-oleg", "Олег"))
    accountant.locator("nav.topnav").get_by_role("button", name="Аналитика").click()
    accountant.get_by_role("menuitem", name="Финансовые отчёты").click()
    page = accountant.locator(".finance-page")
    expect(page).to_have_attribute("data-state", "loaded")
    expect(page.locator(".report")).to_have_text("Операций пока нет")
    expect(accountant.locator("nav .nav-group.active > .nav-top")).to_have_text("Аналитика")

    # A buyer asks to return non-returnable goods; another operator approves it without
    # taking them back, so the refund is at once.
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(
        server, order_id, buyer_id, "Ева", name="Витамины для волос", brand="Эвалар",
        article="175500321", price={"value": 118600, "currency": "RUB"},
        purchased_at=hours_ago(5), received_at=hours_ago(2), non_returnable=True,
    )  # fmt: skip
    buyer = open_buyer_chat(pages, buyer_id, "Ева", order_id)
    request_return(buyer, "Упаковка вскрыта, капсулы раздавлены.")
    shop = pages.open(shop_token())
    open_chat(shop, "Ева")
    card = shop.locator(".kind-return-requested .product-card")
    card.get_by_role("button", name="Согласиться на возврат").click()
    card.get_by_role("button", name="Возврат товара не нужен").click()
    dialog(shop).get_by_role("button", name="Подтвердить").click()
    expect(shop.locator(".service-text", has_text=REFUNDED)).to_have_count(1)

    # The finance page follows, live: the balance lost the refund, the report shows «Возврат».
    expect(page.locator(".balance .balance-value")).to_have_text("−1 186 руб")
    rows = page.locator(".report-row")
    expect(rows).to_have_count(1)
    expect(rows.locator("td").first).to_have_text(re.compile(r"^\d\d\.\d\d\.\d{4}, \d\d:\d\d$"))
    expect(rows.locator("td:not(:first-child)")).to_have_text(
        [order_id, "175500321", "Витамины для волос", "−1 186 руб", "Возврат"]
    )
    expect(rows).to_have_class("report-row refund")
    screenshot(accountant, "finance.png")

    # The page stays across a reload, and the chat is one click away.
    accountant.reload()
    accountant.wait_for_selector(".finance-page[data-state=loaded]")
    expect(accountant.locator(".report-row")).to_have_count(1)
    accountant.locator("nav.topnav").get_by_role("button", name="Товары").click()
    accountant.get_by_role("menuitem", name="Чат с покупателями").click()
    expect(accountant.locator(".inbox")).to_be_visible()
    expect(accountant.locator(".finance-page")).to_have_count(0)


def test_an_order_with_a_photo_shows_it_on_the_product_card(
    pages: Pages, server: ServerProcess
) -> None:
    # The marketplace uploads the product's photo and registers an order naming it.
    photo = system_upload(server, png(60, 80, (200, 40, 90)), "плед.png")
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Дарья", photo=photo["id"])
    buyer = open_buyer_chat(pages, buyer_id, "Дарья", order_id)
    shop = pages.open(shop_token())
    open_chat(shop, "Дарья")
    for page in (buyer, shop):
        card = page.locator(".kind-chat-opened .product-card")
        image = card.locator(".card-thumb img.card-photo")
        expect(image).to_be_visible()
        # Decoded from the file the server gave this user: the photo's own 60 × 80 pixels.
        expect(image).to_have_js_property("naturalWidth", 60)
        expect(image).to_have_js_property("naturalHeight", 80)
        expect(image).to_have_attribute("alt", "Плед флисовый")

    # The demo's pleated skirt has a photo; the screen film has none and keeps the icon.
    open_chat(shop, "Тимур")
    skirt = shop.locator(".product-card", has_text="Юбка короткая плиссе").last
    expect(skirt.locator("img.card-photo")).to_be_visible()
    film = shop.locator(".product-card", has_text="защитная пленка").last
    expect(film.locator(".card-thumb .icon-box")).to_be_visible()
    expect(film.locator("img.card-photo")).to_have_count(0)
