"""Whose chat it is (version 1.1's assignment), in the shop's inbox: an operator takes a chat
from its header, every operator's list says who has it, live, and the filters «Все», «Мои»
and «Без ответственного» sit beside search. The buyer is never shown any of it."""

from __future__ import annotations

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    buyer_token,
    chat_item,
    open_chat,
    shop_token,
)

expect = sync_api.expect


def test_an_operator_takes_a_chat_and_the_filters_follow(pages: Pages) -> None:
    anna = pages.open(shop_token())
    oleg = pages.open(shop_token("op-oleg", "Олег"))
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(buyer, SHOP_NAME)

    whose = anna.locator(".inbox-assign")
    expect(whose.get_by_role("button")).to_have_text(["Все6", "Мои0", "Без ответственного6"])
    expect(whose.get_by_role("button", name="Все")).to_have_attribute("aria-pressed", "true")

    open_chat(anna, "Тимур")
    line = anna.locator(".chat-head .assign-line")
    expect(line.locator(".assign-who")).to_have_text("Без ответственного")
    line.get_by_role("button", name="Взять себе").click()
    expect(line.locator(".assign-who")).to_have_text("Ответственный: вы")
    expect(anna.locator(".assigned-note")).to_contain_text("Чат взят в работу: Анна")
    expect(chat_item(anna, "Тимур").locator(".assignee")).to_have_text("Вы")
    expect(chat_item(oleg, "Тимур").locator(".assignee")).to_have_text("Анна")

    # «Мои» for Анна is Тимур's chat alone; Олег finds it gone from «Без ответственного».
    whose.get_by_role("button", name="Мои").click()
    expect(anna.locator(".chat-item .chat-item-name")).to_have_text(["Тимур"])
    oleg.locator(".inbox-assign").get_by_role("button", name="Без ответственного").click()
    expect(oleg.locator(".chat-item")).to_have_count(5)
    expect(chat_item(oleg, "Тимур")).to_have_count(0)

    # Given back: nobody's again, on every page.
    line.get_by_role("button", name="Снять с себя").click()
    expect(anna.locator(".chat-item")).to_have_count(0)
    expect(anna.locator(".chat-empty")).to_have_text("Таких диалогов нет")
    expect(chat_item(oleg, "Тимур")).to_have_count(1)

    # The buyer's page knows nothing of it.
    expect(buyer.locator(".assign-line, .assigned-note, .inbox-assign:visible")).to_have_count(0)
