"""Returns to the letter of the portal (docs/protocol.md 11) in the browser: the buyer's
confirmation with a comment and photos, the 14 calendar days, the shop's refusal with its
reason, the advice for non-returnable goods, the shop's withdrawn offer, and the manager who
sees everything the parties wrote before deciding."""

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
    manager_token,
    moscow_noon,
    open_buyer_chat,
    open_chat,
    png,
    register_order,
    request_return,
    service_with,
    shop_token,
)
from tests.e2e.harness import ServerProcess, uid

expect = sync_api.expect

REFUNDED = "Денежные средства возвращены на баланс покупателя."
REJECTED = "Процедура возврата отменена продавцом."
APPROVED_BY_MANAGER = "Менеджер Wildberries одобрил возврат."
BLOB = re.compile(r"^blob:")


def wait_for_image(page: Any, image: Any, width: int) -> None:
    """Until the image shown through its blob URL has loaded, `width` pixels wide."""
    page.wait_for_function(
        f"img => img.complete && img.naturalWidth === {width}", arg=image.element_handle()
    )


def test_the_buyer_confirms_a_return_with_a_comment_and_a_photo(
    pages: Pages, server: ServerProcess, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Алина")
    buyer = open_buyer_chat(pages, buyer_id, "Алина", order_id)
    shop = pages.open(shop_token())

    card = buyer.locator(".kind-chat-opened .product-card")
    expect(card.locator(".card-name")).to_have_text("Home Line / Плед флисовый")
    card.get_by_role("button", name="Вернуть товар").click()

    # A confirmation first: one request per order; «Отменить» sends nothing.
    form = dialog(buyer)
    expect(form.locator(".modal-title")).to_have_text("Вернуть товар?")
    expect(form).to_contain_text("можно только один раз")
    form.get_by_role("button", name="Отменить").click()
    expect(dialog(buyer)).to_have_count(0)
    expect(buyer.locator(".kind-return-requested")).to_have_count(0)

    card.get_by_role("button", name="Вернуть товар").click()
    form = dialog(buyer)
    comment = "Плед пришёл с дыркой на углу, фото прикладываю."
    form.get_by_label("Комментарий").fill(comment)
    expect(form.locator(".note-counter")).to_have_text(f"{len(comment)} / 1000")
    expect(form.get_by_label("Комментарий")).to_have_attribute("maxlength", "1000")
    photo = tmp_path / "hole.png"
    photo.write_bytes(png(40, 30, (120, 40, 200)))
    form.locator("input[type=file]").set_input_files(str(photo))
    expect(form.locator(".picked-photo.done")).to_have_count(1)
    screenshot(buyer, "request-dialog.png")
    form.get_by_role("button", name="Отправить заявку").click()
    expect(dialog(buyer)).to_have_count(0)

    # The request with its comment and photo, on both sides; the button is gone for good.
    open_chat(shop, "Алина")
    for page in (buyer, shop):
        request = page.locator(".kind-return-requested .msg")
        expect(request.locator(".msg-text")).to_contain_text('Хочу вернуть товар "Плед флисовый')
        expect(request.locator(".claim-note")).to_have_text(f"Комментарий покупателя: {comment}")
        image = request.locator(".msg-photos img")
        expect(image).to_have_attribute("src", BLOB)
        wait_for_image(page, image, 40)
    expect(buyer.get_by_role("button", name="Вернуть товар")).to_have_count(0)
    shop_card = shop.locator(".kind-return-requested .product-card")
    expect(shop_card.get_by_role("button", name="Согласиться на возврат")).to_be_visible()
    # The photo is among the chat's photos too.
    shop.click(".attachments-btn")
    expect(shop.locator(".attachments-panel").get_by_role("tab", name="Фото")).to_have_text("Фото1")


def test_the_return_button_waits_for_the_fourteenth_calendar_day(
    pages: Pages, server: ServerProcess
) -> None:
    buyer_id = uid("buyer")
    early, due, food = uid("order"), uid("order"), uid("order")
    # Bought 13 calendar days ago in Moscow: not yet. Bought 14 days ago: from today's 00:00.
    # Non-returnable goods bought an hour ago: at once.
    register_order(
        server, early, buyer_id, "Вера", name="Шарф вязаный",
        purchased_at=moscow_noon(13), received_at=moscow_noon(12),
    )  # fmt: skip
    register_order(
        server, due, buyer_id, "Вера", name="Шапка зимняя",
        purchased_at=moscow_noon(14), received_at=moscow_noon(12),
    )  # fmt: skip
    register_order(
        server, food, buyer_id, "Вера", name="Корм для кошек", brand="Мурка",
        purchased_at=hours_ago(2), received_at=hours_ago(1), non_returnable=True,
    )  # fmt: skip
    buyer = open_buyer_chat(pages, buyer_id, "Вера", early)
    buyer.click(".attachments-btn")
    orders = buyer.locator(".attachments-panel .tab-body[data-tab=orders]")
    expect(orders.locator(".product-card")).to_have_count(3)

    scarf = orders.locator(".product-card", has_text="Шарф вязаный")
    expect(scarf.get_by_role("button", name="Вернуть товар")).to_have_count(0)
    expect(scarf.locator(".card-opens")).to_contain_text("Вернуть товар через чат можно будет с")
    expect(scarf.locator(".card-opens")).to_contain_text("«Проверка товара»")
    hat = orders.locator(".product-card", has_text="Шапка зимняя")
    expect(hat.get_by_role("button", name="Вернуть товар")).to_be_visible()
    expect(hat.locator(".card-opens")).to_have_count(0)
    cat_food = orders.locator(".product-card", has_text="Корм для кошек")
    expect(cat_food.locator(".card-flag")).to_have_text("Невозвратный товар")
    expect(cat_food.get_by_role("button", name="Вернуть товар")).to_be_visible()

    # The chat's own card agrees with the list.
    chat_card = buyer.locator(".kind-chat-opened .product-card")
    expect(chat_card.get_by_role("button", name="Вернуть товар")).to_have_count(0)
    expect(chat_card.locator(".card-opens")).to_be_visible()


def test_the_shop_refuses_with_a_reason(pages: Pages, server: ServerProcess) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Ирина", name="Юбка миди", brand="SK - Line")
    buyer = open_buyer_chat(pages, buyer_id, "Ирина", order_id)
    request_return(buyer, "Юбка мала в талии.")
    shop = pages.open(shop_token())
    open_chat(shop, "Ирина")
    skirt = shop.locator(".kind-return-requested .product-card")
    skirt.get_by_role("button", name="Отказать в возврате").click()

    form = dialog(shop)
    expect(form.locator(".modal-title")).to_have_text("Отклонить заявку на возврат?")
    reason = form.get_by_label("Причина отказа")
    expect(reason).to_have_attribute("maxlength", "500")

    # The reason is asked for: without one nothing is sent.
    form.get_by_role("button", name="Отклонить").click()
    expect(form.locator(".field-error")).to_have_text("Укажите причину отказа")
    expect(service_with(shop, REJECTED)).to_have_count(0)

    # Contacts are refused by the server and marked in the dialog, which stays open.
    reason.fill("Позвоните нам: +7 999 123-45-67")
    form.get_by_role("button", name="Отклонить").click()
    expect(form.locator(".field-error mark")).to_have_text("+7 999 123-45-67")
    expect(dialog(shop)).to_have_count(1)

    text = "Юбка была в носке: на ткани следы утюга, бирки срезаны."
    reason.fill(text)
    form.get_by_role("button", name="Отклонить").click()
    expect(dialog(shop)).to_have_count(0)

    # The refusal with its reason reaches both sides; the buyer may dispute it.
    for page in (shop, buyer):
        refusal = page.locator(".kind-return-rejected")
        expect(refusal.locator(".service-text")).to_have_text(REJECTED)
        expect(refusal.locator(".claim-note")).to_have_text(f"Причина отказа: {text}")
    expect(skirt.locator(".card-actions")).to_have_count(0)
    expect(buyer.get_by_role("button", name="Оспорить решение")).to_be_visible()


def test_non_returnable_goods_carry_the_portals_advice(pages: Pages, server: ServerProcess) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(
        server, order_id, buyer_id, "Олеся", name="Корм для собак сухой", brand="Дружок",
        article="190034512", price={"value": 219000, "currency": "RUB"},
        purchased_at=hours_ago(3), received_at=hours_ago(1), non_returnable=True,
    )  # fmt: skip
    buyer = open_buyer_chat(pages, buyer_id, "Олеся", order_id)
    card = buyer.locator(".kind-chat-opened .product-card")
    expect(card.locator(".card-flag")).to_have_text("Невозвратный товар")
    card.get_by_role("button", name="Вернуть товар").click()
    dialog(buyer).get_by_label("Комментарий").fill("Пакет пришёл вскрытым, корм рассыпан.")
    dialog(buyer).get_by_role("button", name="Отправить заявку").click()
    expect(dialog(buyer)).to_have_count(0)

    shop = pages.open(shop_token())
    open_chat(shop, "Олеся")
    request = shop.locator(".kind-return-requested .product-card")
    expect(request.locator(".card-flag")).to_have_text("Невозвратный товар")
    advice = request.locator(".card-advice")
    expect(advice).to_contain_text("рекомендуется одобрить возврат без возвращения товара")
    expect(advice).to_contain_text("«Возврат товара не нужен»")

    # After agreeing, the recommended way leads.
    request.get_by_role("button", name="Согласиться на возврат").click()
    keep = request.get_by_role("button", name="Возврат товара не нужен")
    expect(keep).to_have_class(re.compile(r"\bbtn-primary\b"))
    expect(request.get_by_role("button", name="Возврат на ПВЗ")).to_have_class(
        re.compile(r"\bbtn-outline\b")
    )
    keep.click()
    expect(dialog(shop).locator(".modal-body")).to_have_text(
        "Вы подтверждаете возврат денежных средств в размере 2190 Р?"
    )
    dialog(shop).get_by_role("button", name="Подтвердить").click()
    for page in (shop, buyer):
        expect(service_with(page, REFUNDED)).to_have_count(1)
    expect(request.locator(".card-advice")).to_have_count(0)


def test_the_shop_withdraws_its_offer(pages: Pages, server: ServerProcess) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Кира")
    buyer = open_buyer_chat(pages, buyer_id, "Кира", order_id)
    shop = pages.open(shop_token())
    open_chat(shop, "Кира")
    shop.locator(".kind-chat-opened .product-card").get_by_role(
        "button", name="Инициировать процедуру возврата"
    ).click()
    offer = shop.locator(".kind-return-initiated .product-card")
    take_up = buyer.locator(".kind-return-initiated").get_by_role("button", name="Вернуть товар")
    expect(take_up).to_be_visible()

    offer.get_by_role("button", name="Отозвать предложение").click()
    expect(dialog(shop).locator(".modal-title")).to_have_text("Отозвать предложение о возврате?")
    dialog(shop).get_by_role("button", name="Отозвать").click()

    for page in (shop, buyer):
        expect(service_with(page, "Продавец отозвал предложение о возврате.")).to_have_count(1)
    expect(offer.locator(".card-state")).to_have_text("Предложение о возврате закрыто")
    expect(offer.locator(".card-actions")).to_have_count(0)
    expect(buyer.get_by_role("button", name="Вернуть товар")).to_have_count(0)


def test_the_manager_sees_the_evidence_before_deciding(
    pages: Pages, server: ServerProcess, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Полина", name="Чайник электрический", brand="Tefal")
    buyer = open_buyer_chat(pages, buyer_id, "Полина", order_id)
    shop = pages.open(shop_token())
    manager = pages.open(manager_token())

    comment = "Чайник протекает по шву, видно на фото."
    photo = tmp_path / "leak.png"
    photo.write_bytes(png(48, 36, (30, 90, 200)))
    buyer.locator(".kind-chat-opened").get_by_role("button", name="Вернуть товар").click()
    dialog(buyer).get_by_label("Комментарий").fill(comment)
    dialog(buyer).locator("input[type=file]").set_input_files(str(photo))
    expect(dialog(buyer).locator(".picked-photo.done")).to_have_count(1)
    dialog(buyer).get_by_role("button", name="Отправить заявку").click()

    reason = "Следы падения на корпусе: это не заводской брак."
    open_chat(shop, "Полина")
    shop.locator(".kind-return-requested").get_by_role("button", name="Отказать в возврате").click()
    dialog(shop).get_by_label("Причина отказа").fill(reason)
    dialog(shop).get_by_role("button", name="Отклонить").click()
    # The refusal shown whole before its button is pressed: a click while the page is still
    # laying it out can land where the button was a moment before.
    refusal = buyer.locator(".kind-return-rejected")
    expect(refusal.locator(".claim-note")).to_have_text(f"Причина отказа: {reason}")
    refusal.get_by_role("button", name="Оспорить решение").click()
    dialog(buyer).get_by_role("button", name="Оспорить").click()

    # The claim reaches the managers live, with how it came and how long it has waited.
    item = chat_item(manager, "Полина")
    expect(item.locator(".tag-disputed")).to_contain_text("Оспорено покупателем")
    expect(item.locator(".tag-disputed")).to_contain_text("мин")
    open_chat(manager, "Полина")
    claim = manager.locator(".claims-bar .product-card", has_text="Чайник электрический")
    expect(claim.locator(".card-state")).to_have_text("Заявка на рассмотрении у менеджера")
    expect(claim.locator(".claim-age")).to_contain_text("Ждёт решения менеджера")
    steps = claim.locator(".claim-step")
    expect(steps.locator(".claim-step-title")).to_have_text(
        ["Заявка покупателя", "Отказ продавца", "Покупатель оспорил решение"]
    )
    expect(steps.nth(0).locator(".claim-note")).to_have_text(f"Комментарий покупателя: {comment}")
    image = steps.nth(0).locator(".msg-photos img")
    expect(image).to_have_attribute("src", BLOB)
    wait_for_image(manager, image, 48)
    expect(steps.nth(1).locator(".claim-note")).to_have_text(f"Причина отказа: {reason}")
    screenshot(manager, "manager.png")

    # The decision with a comment, which every side reads under the service message.
    decision = "Фото подтверждает брак шва, возврат одобрен без возврата товара."
    claim.get_by_role("button", name="Одобрить возврат").click()
    claim.get_by_role("button", name="Возврат товара не нужен").click()
    dialog(manager).get_by_label("Комментарий к решению").fill(decision)
    dialog(manager).get_by_role("button", name="Подтвердить").click()
    for page in (manager, shop, buyer):
        resolved = page.locator(".kind-return-resolved")
        expect(resolved.locator(".service-text")).to_have_text(APPROVED_BY_MANAGER)
        expect(resolved.locator(".claim-note")).to_have_text(f"Комментарий менеджера: {decision}")
        expect(service_with(page, REFUNDED)).to_have_count(1)
    expect(claim.locator(".card-actions")).to_have_count(0)


def test_what_the_parties_write_is_shown_as_text(pages: Pages, server: ServerProcess) -> None:
    """Markup in an order's fields, a comment or a reason is text on every page."""
    buyer_id, order_id = uid("buyer"), uid("order")
    name = '<img src=x onerror="window.hacked=1">Сумка'
    brand = "<b>Bold</b>"
    register_order(server, order_id, buyer_id, "Нина", name=name, brand=brand)
    buyer = open_buyer_chat(pages, buyer_id, "Нина", order_id)
    comment = "<script>window.hacked = 1</script> ремешок <i>оторван</i>"
    request_return(buyer, comment)
    shop = pages.open(shop_token())
    open_chat(shop, "Нина")
    reason = '<iframe src="/"></iframe> следы носки'
    shop.locator(".kind-return-requested").get_by_role("button", name="Отказать в возврате").click()
    dialog(shop).get_by_label("Причина отказа").fill(reason)
    dialog(shop).get_by_role("button", name="Отклонить").click()
    for page in (buyer, shop):
        card = page.locator(".kind-return-requested .product-card")
        expect(card.locator(".card-name")).to_have_text(f"{brand} / {name}")
        note = page.locator(".kind-return-requested .claim-note")
        expect(note).to_have_text(f"Комментарий покупателя: {comment}")
        expect(page.locator(".kind-return-rejected .claim-note")).to_have_text(
            f"Причина отказа: {reason}"
        )
        assert page.locator(".messages img[src=x], .messages script, .messages iframe").count() == 0
        assert page.evaluate("window.hacked") is None
