"""Writing and being told: a draft per chat that survives a reload, Enter sends and
Shift+Enter breaks the line, the unread count in the tab's title, and a browser notification
for a message that arrives while the tab is hidden, once the person allowed them from the
small offer that appears after they wrote something."""

from __future__ import annotations

import re

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    buyer_token,
    chat_item,
    messages_with,
    open_chat,
    send_message,
    shop_token,
)

expect = sync_api.expect

# The browser's notifications and the tab's visibility, played by the test: Notification
# records what the page shows and grants permission when asked; window.__hidden hides the tab.
NOTIFICATIONS = """
window.__notes = [];
window.__asked = 0;
window.__hidden = false;
Object.defineProperty(Document.prototype, 'visibilityState', {
  configurable: true, get() { return window.__hidden ? 'hidden' : 'visible'; },
});
Object.defineProperty(Document.prototype, 'hidden', {
  configurable: true, get() { return window.__hidden; },
});
class FakeNotification {
  constructor(title, options = {}) {
    window.__notes.push({ title, body: options.body, tag: options.tag });
  }
  close() {}
}
FakeNotification.permission = 'default';
FakeNotification.requestPermission = async () => {
  window.__asked += 1;
  FakeNotification.permission = 'granted';
  return 'granted';
};
window.Notification = FakeNotification;
"""


def unread_total(page: object) -> int:
    badges = page.locator(".chat-item .badge").all_inner_texts()  # type: ignore[attr-defined]
    return sum(int(text) for text in badges)


def test_drafts_enter_and_shift_enter(pages: Pages) -> None:
    shop = pages.open(shop_token())
    open_chat(shop, "Тимур")
    shop.fill(".composer-input", "Черновик для Тимура")
    open_chat(shop, "Люда")
    shop.fill(".composer-input", "Черновик для Люды")

    # A reload keeps each chat's draft.
    shop.reload()
    shop.wait_for_selector(".chat-list[data-loaded]")
    open_chat(shop, "Тимур")
    expect(shop.locator(".composer-input")).to_have_value("Черновик для Тимура")
    open_chat(shop, "Люда")
    expect(shop.locator(".composer-input")).to_have_value("Черновик для Люды")

    # Shift+Enter breaks the line; Enter sends, once, and the draft is gone for good.
    box = shop.locator(".composer-input")
    box.fill("")
    box.press_sequentially("Добрый день!")
    box.press("Shift+Enter")
    box.press_sequentially("Отправим завтра.")
    expect(box).to_have_value("Добрый день!\nОтправим завтра.")
    expect(messages_with(shop, "Отправим завтра.")).to_have_count(0)
    box.press("Enter")
    sent = messages_with(shop, "Отправим завтра.")
    expect(sent).to_have_count(1)
    assert sent.inner_text() == "Добрый день!\nОтправим завтра."
    expect(box).to_have_value("")
    shop.reload()
    shop.wait_for_selector(".chat-list[data-loaded]")
    open_chat(shop, "Люда")
    expect(shop.locator(".composer-input")).to_have_value("")
    expect(messages_with(shop, "Отправим завтра.")).to_have_count(1)


def test_the_title_counts_unread_and_a_hidden_tab_notifies(pages: Pages) -> None:
    shop = pages.open(shop_token(), init_script=NOTIFICATIONS)
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(buyer, SHOP_NAME)

    # The title counts every unread message of the list's badges.
    unread = unread_total(shop)
    assert unread > 0
    expect(shop).to_have_title(f"({unread}) Чат с покупателями")
    send_message(buyer, "Есть новости по заказу?")
    expect(chat_item(shop, "Тимур").locator(".badge")).to_have_text("2")
    expect(shop).to_have_title(f"({unread + 1}) Чат с покупателями")
    open_chat(shop, "Тимур")
    expect(shop).to_have_title(f"({unread - 1}) Чат с покупателями")

    # Nothing was asked on load; the offer comes once the operator has written.
    offer = shop.locator(".notify-offer")
    expect(offer).to_be_hidden()
    assert shop.evaluate("window.__asked") == 0
    send_message(shop, "Сегодня передадим в доставку.")
    expect(offer).to_be_visible()
    offer.get_by_role("button", name="Включить").click()
    expect(offer).to_be_hidden()
    assert shop.evaluate("window.__asked") == 1

    # A message while the tab is visible: no notification. Hidden: one, and the title counts.
    send_message(buyer, "Спасибо, жду")
    expect(messages_with(shop, "Спасибо, жду")).to_have_count(1)
    shop.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    send_message(buyer, "А трек-номер будет?")
    shop.wait_for_function("() => window.__notes.length === 1")
    note = shop.evaluate("window.__notes[0]")
    assert note["title"] == "Тимур"
    assert note["body"] == "А трек-номер будет?"
    expect(shop).to_have_title(re.compile(rf"^\({unread}\) Чат с покупателями$"))
    shop.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    expect(shop).to_have_title(f"({unread - 1}) Чат с покупателями")
    assert shop.evaluate("window.__notes.length") == 1
