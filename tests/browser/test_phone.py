"""The app on a phone held upright (390 × 844): one column, the chat list and the chat as two
screens with a back button, the composer and the dialogs within a thumb's reach, nothing off
the screen. The buyer's and the shop's main flows: write, ask for a return, approve it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright import sync_api as sync_api

from tests.browser.driver import (
    PHONE,
    SHOP,
    Pages,
    buyer_token,
    chat_item,
    dialog,
    messages_with,
    register_order,
    service_with,
    shop_token,
)
from tests.e2e.harness import ServerProcess, uid

expect = sync_api.expect

# Everything a person reads or presses, checked against the screen's edges.
OFF_SCREEN = """
() => {
  const width = window.innerWidth;
  const height = window.innerHeight;
  const off = [];
  if (document.documentElement.scrollWidth > width) {
    off.push(`the page is ${document.documentElement.scrollWidth} px wide`);
  }
  const name = (el) => el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
  const selector = 'button, input, textarea, .msg, .service, .product-card, .chat-item, .modal, ' +
    '.chat-head, .composer, .menu-popup, .conn-banner, .topbar';
  for (const el of document.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.type === 'file') continue;
    if (r.left < -1 || r.right > width + 1) off.push(`${name(el)}: ${r.left}..${r.right}`);
  }
  // What stays on the screen whatever the scroll: the header, the composer, a dialog.
  const fixed = '.chat-head, .composer, .send-btn, .modal[open] .btn';
  for (const el of document.querySelectorAll(fixed)) {
    const r = el.getBoundingClientRect();
    if (!r.width) continue;
    if (r.top < -1 || r.bottom > height + 1) off.push(`${name(el)}: ${r.top}..${r.bottom}`);
  }
  return off;
}
"""


def assert_on_screen(page: Any) -> None:
    off = page.evaluate(OFF_SCREEN)
    assert off == [], off


def assert_thumb_sized(page: Any, selector: str) -> None:
    """A control a thumb can press: at least 40 px each way. (Measured in one step: the chat's
    header is drawn again whenever the chat changes; a control measured while its header is
    being replaced reads 0 × 0, so the size is read again for up to 5 s.)"""
    size: list[float] = [0, 0]
    for _ in range(50):
        size = page.eval_on_selector(
            selector, "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }"
        )
        if size[0] > 0 and size[1] > 0:
            break
        page.wait_for_timeout(100)
    assert size[0] >= 40 and size[1] >= 40, size


def test_the_buyers_and_the_shops_main_flows_on_a_phone(
    pages: Pages, server: ServerProcess, screenshot: Callable[[Any, str], Path]
) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Алиса", name="Кроссовки беговые", brand="Runner")

    # The buyer comes from the order's link: the chat is the screen, the list is one step back.
    link = buyer_token(buyer_id, "Алиса") + f"&shop={SHOP}&order={order_id}"
    buyer = pages.open(link, viewport=PHONE)
    expect(buyer.locator(".chat-pane .chat-name")).to_have_text("ИП Кунченко С.А.")
    expect(buyer.locator(".inbox")).to_be_hidden()
    back = buyer.get_by_role("button", name="К списку чатов")
    expect(back).to_be_visible()
    assert_thumb_sized(buyer, ".chat-head .back-btn")
    assert_thumb_sized(buyer, ".send-btn")
    assert_on_screen(buyer)

    box = buyer.locator(".composer-input")
    box.fill("Здравствуйте! Подойдут ли они для бега по асфальту?")
    box.press("Enter")
    expect(messages_with(buyer, "по асфальту")).to_have_count(1)

    card = buyer.locator(".kind-chat-opened .product-card")
    card.get_by_role("button", name="Вернуть товар").click()
    form = dialog(buyer)
    form.get_by_label("Комментарий").fill("Маломерят на размер, нужна замена.")
    assert_on_screen(buyer)
    screenshot(buyer, "phone-request-dialog.png")
    form.get_by_role("button", name="Отправить заявку").click()
    expect(dialog(buyer)).to_have_count(0)
    expect(buyer.locator(".kind-return-requested .msg-text")).to_contain_text("Хочу вернуть товар")
    assert_on_screen(buyer)

    # The shop: the list first, then the chat as a screen of its own.
    shop = pages.open(shop_token(), viewport=PHONE)
    expect(shop.locator(".inbox")).to_be_visible()
    expect(shop.locator(".chat-pane")).to_be_hidden()
    expect(shop.locator(".inbox-filters .filter-chip")).to_have_count(3)
    assert_on_screen(shop)
    screenshot(shop, "phone-inbox.png")
    # The portal's sections give way to a menu of the pages that open.
    shop.get_by_role("button", name="Разделы").click()
    sections = shop.get_by_role("menu", name="Разделы")
    expect(sections.get_by_role("menuitem")).to_have_text(
        ["Чат с покупателями", "Финансовые отчёты"]
    )
    assert_on_screen(shop)
    shop.keyboard.press("Escape")
    expect(sections).to_be_hidden()
    chat_item(shop, "Алиса").click()
    expect(shop.locator(".inbox")).to_be_hidden()
    card = shop.locator(".kind-return-requested .product-card")
    card.get_by_role("button", name="Согласиться на возврат").click()
    card.get_by_role("button", name="Возврат на ПВЗ").click()
    expect(dialog(shop).locator(".modal-body")).to_contain_text("Вы подтверждаете возврат")
    assert_on_screen(shop)
    dialog(shop).get_by_role("button", name="Подтвердить").click()
    for page in (shop, buyer):
        expect(service_with(page, "Процедура возврата согласована.")).to_have_count(1)
    expect(card.locator(".card-next")).to_contain_text("покупатель сдаст товар в пункт выдачи")
    shop.locator(".composer-input").fill("Ждём кроссовки в пункте выдачи, спасибо!")
    shop.locator(".send-btn").click()
    expect(messages_with(buyer, "Ждём кроссовки")).to_have_count(1)
    assert_on_screen(shop)
    screenshot(shop, "phone-chat.png")

    # The ⋮ menu fits the screen; back to the list.
    shop.click(".menu-btn")
    expect(shop.locator(".menu-popup")).to_be_visible()
    assert_on_screen(shop)
    shop.keyboard.press("Escape")
    shop.get_by_role("button", name="К списку чатов").click()
    expect(shop.locator(".inbox")).to_be_visible()
    expect(shop.locator(".chat-item.active")).to_have_count(0)

    # The buyer sees the approval and what to do next, then goes back to the list.
    expect(buyer.locator(".kind-return-requested .card-next")).to_contain_text(
        "отнесите товар в пункт выдачи"
    )
    buyer.locator(".messages").evaluate("box => box.scrollTop = box.scrollHeight")
    screenshot(buyer, "phone-buyer.png")
    back.click()
    expect(buyer.locator(".inbox")).to_be_visible()
    expect(chat_item(buyer, "ИП Кунченко С.А.")).to_be_visible()
    assert_on_screen(buyer)
