"""Messages between the shop's page and the buyer's: unread badges, photos and documents,
and the contacts filter's refusal."""

from __future__ import annotations

import re
from pathlib import Path

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    buyer_token,
    chat_item,
    messages_with,
    open_chat,
    png,
    send_message,
    shop_token,
)

expect = sync_api.expect


BLOB = re.compile(r"^blob:")
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def test_unread_badges_go_up_and_down(pages: Pages) -> None:
    shop = pages.open(shop_token())
    colleague = pages.open(shop_token("op-oleg", "Олег"))
    watcher = pages.open(buyer_token("buyer-svetlana", "Светлана"))
    writer = pages.open(buyer_token("buyer-svetlana", "Светлана"))

    shop_badge = chat_item(shop, "Светлана").locator(".badge")
    colleague_badge = chat_item(colleague, "Светлана").locator(".badge")
    buyer_badge = chat_item(watcher, SHOP_NAME).locator(".badge")
    expect(shop_badge).to_have_text("1")
    expect(buyer_badge).to_have_count(0)

    # The buyer writes from another tab: the shop's count goes up on every operator's page;
    # the buyer's tab that reads the chat marks it read for the buyer's other tabs too.
    open_chat(writer, SHOP_NAME)
    expect(buyer_badge).to_have_count(0)
    send_message(writer, "А размер M есть?")
    expect(shop_badge).to_have_text("2")
    send_message(writer, "И какой цвет лучше?")
    expect(shop_badge).to_have_text("3")
    expect(colleague_badge).to_have_text("3")
    writer.context.close()

    # Анна reads the chat: the badge goes away for Олег as well.
    open_chat(shop, "Светлана")
    expect(messages_with(shop, "И какой цвет лучше?")).to_have_count(1)
    expect(shop_badge).to_have_count(0)
    expect(colleague_badge).to_have_count(0)

    # The shop answers twice; the buyer's page, with no chat open, counts them.
    send_message(shop, "Да, размер M есть.")
    expect(buyer_badge).to_have_text("1")
    send_message(shop, "Бежевый смотрится лучше.")
    expect(buyer_badge).to_have_text("2")
    expect(colleague_badge).to_have_count(0)
    expect(chat_item(watcher, SHOP_NAME).locator(".chat-item-snippet")).to_have_text(
        "Бежевый смотрится лучше."
    )

    open_chat(watcher, SHOP_NAME)
    expect(messages_with(watcher, "Бежевый смотрится лучше.")).to_have_count(1)
    expect(buyer_badge).to_have_count(0)
    operator = watcher.locator(".msg", has_text="Бежевый").locator(".msg-author")
    expect(operator).to_have_text(SHOP_NAME)
    expect(shop.locator(".msg", has_text="Бежевый").locator(".msg-author")).to_have_text(
        f"{SHOP_NAME} · Анна"
    )


def test_a_photo_and_a_document_reach_both_sides(pages: Pages, tmp_path: Path) -> None:
    shop = pages.open(shop_token())
    buyer = pages.open(buyer_token("buyer-lyuda", "Люда"))
    open_chat(shop, "Люда")
    open_chat(buyer, SHOP_NAME)

    photo = tmp_path / "parcel.png"
    photo.write_bytes(png(64, 48, (203, 17, 171)))
    document = tmp_path / "invoice.pdf"
    document.write_bytes(PDF)
    shop.set_input_files(".composer input[type=file]", [str(photo), str(document)])
    expect(shop.locator(".pending-file.done")).to_have_count(2)
    send_message(shop, "Отправили, вот фото посылки и накладная.")

    for page in (shop, buyer):
        message = page.locator(".msg", has_text="вот фото посылки")
        image = message.locator(".msg-photos img")
        expect(image).to_have_attribute("src", BLOB)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 64", arg=image.element_handle()
        )
        expect(message.locator(".file-chip")).to_contain_text("invoice.pdf")

        page.click(".attachments-btn")
        panel = page.locator(".attachments-panel")
        expect(panel.get_by_role("tab")).to_have_text(["Заказы1", "Фото1", "Файлы1"])
        panel.get_by_role("tab", name="Фото").click()
        thumb = panel.locator(".photo img")
        expect(thumb).to_have_count(1)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 64", arg=thumb.element_handle()
        )
        panel.get_by_role("tab", name="Файлы").click()
        expect(panel.locator(".file-row")).to_have_count(1)
        expect(panel.locator(".file-row .file-name")).to_have_text("invoice.pdf")
        panel.get_by_role("tab", name="Заказы").click()
        expect(panel.locator(".product-card .card-name")).to_have_text("SK - Line / Платье летнее")
        expect(panel.locator(".product-card .card-status")).to_have_text("Заказ оформлен")
    expect(shop.locator(".pending-file")).to_have_count(0)


def test_a_message_with_contacts_is_refused_next_to_the_input(pages: Pages) -> None:
    shop = pages.open(shop_token())
    open_chat(shop, "Люда")
    text = "Позвоните мне: +7 999 123-45-67 или пишите в телеграм @kunchenko_shop"
    send_message(shop, text)

    refusal = shop.locator(".composer .refusal")
    expect(refusal).to_be_visible()
    expect(refusal.locator(".refusal-title")).to_contain_text("нельзя обмениваться контактами")
    expect(refusal.locator(".refusal-text")).to_have_text(text)
    expect(refusal.locator("mark")).to_have_text(["+7 999 123-45-67", "телеграм @kunchenko_shop"])
    expect(messages_with(shop, "Позвоните мне")).to_have_count(0)
    expect(shop.locator(".composer-input")).to_have_value(text)

    # The rules are at hand from the refusal.
    refusal.get_by_role("button", name="Правила оформления ответов").click()
    rules = shop.locator("dialog.modal[open]")
    expect(rules).to_contain_text("запрещено приглашать покупателя перейти на другую площадку")
    rules.get_by_role("button", name="Понятно").click()

    # A corrected message goes through and the refusal disappears.
    send_message(shop, "Напишите, пожалуйста, здесь в чате.")
    expect(messages_with(shop, "Напишите, пожалуйста, здесь в чате.")).to_have_count(1)
    expect(refusal).to_be_hidden()
    expect(shop.locator(".composer-input")).to_have_value("")
