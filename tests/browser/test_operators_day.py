"""The operator's day in the browser (docs/protocol.md, "The operator's day"): the shop's canned
replies behind «/» and their management screen, giving a chat to another operator and the
«Мои» / «Без ответственного» filters, private notes the buyer never sees, «печатает…» between
two pages, and «в сети» coming and going; on a desktop and at a phone's width.

With CHATD_UPDATE_SCREENSHOTS=1 the screenshots replace docs/operators-day.png,
docs/templates-picker.png, docs/templates.png, docs/buyer-typing.png,
docs/phone-operators-day.png and docs/phone-templates.png."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright import sync_api as sync_api

from tests.browser.driver import (
    PHONE,
    SHOP_NAME,
    Pages,
    buyer_token,
    chat_item,
    dialog,
    messages_with,
    open_chat,
    shop_token,
)
from tests.browser.test_phone import assert_on_screen

expect = sync_api.expect

# Every frame the page sends, for the test to read (window.__sent).
RECORD_FRAMES = """
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  try { window.__sent.push(JSON.parse(data)); } catch (error) { /* not JSON */ }
  return send.call(this, data);
};
"""


# A dialog on a phone: the sheet, its own buttons and everything in it within the screen's
# width; rows further down a list that scrolls may be below the screen until scrolled to.
DIALOG_FITS = """
() => {
  const off = [];
  const name = (el) => el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
  const fixed = '.modal[open], .modal[open] .modal-buttons .btn, .modal[open] .modal-close';
  for (const el of document.querySelectorAll(fixed)) {
    const r = el.getBoundingClientRect();
    if (r.top < -1 || r.bottom > innerHeight + 1) off.push(`${name(el)}: ${r.top}..${r.bottom}`);
  }
  for (const el of document.querySelectorAll('.modal[open], .modal[open] *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || (r.left >= -1 && r.right <= innerWidth + 1)) continue;
    off.push(`${name(el)}: ${r.left}..${r.right}`);
  }
  return off;
}
"""


def assert_dialog_fits(page: Any) -> None:
    off = page.evaluate(DIALOG_FITS)
    assert off == [], off


def sent(page: Any, kind: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = page.evaluate("window.__sent")
    return [frame for frame in frames if frame.get("type") == kind]


def test_canned_replies_picker_and_their_screen(
    pages: Pages, screenshot: Callable[[Any, str], Path]
) -> None:
    shop = pages.open(shop_token())
    open_chat(shop, "Тимур")
    box = shop.locator(".composer-input")
    picker = shop.locator(".template-picker")
    options = picker.locator(".template-option")

    # «/» at the start: the shop's templates (a new shop's six defaults), by shortcut.
    box.press_sequentially("/")
    expect(picker).to_be_visible()
    expect(options.locator(".template-shortcut")).to_have_text(
        ["/check", "/hello", "/return", "/size", "/support", "/thanks"]
    )
    # Filtered as the operator types, by shortcut (those that start with it first) or title.
    box.press_sequentially("s")
    expect(options.locator(".template-shortcut")).to_have_text(["/size", "/support", "/thanks"])
    box.press("ArrowDown")
    expect(picker.locator(".template-option.active .template-title")).to_have_text(
        "Вопросы о площадке"
    )
    box.press("Enter")
    expect(picker).to_be_hidden()
    expect(box).to_have_value(
        "Этот чат — для вопросов о товарах нашего магазина. С вопросами о самой площадке "
        "(доставка, оплата, пункты выдачи, личный кабинет) обратитесь, пожалуйста, в поддержку "
        "Wildberries: раздел «Поддержка» в приложении или на сайте."
    )
    expect(messages_with(shop, "поддержку Wildberries")).to_have_count(0)  # inserted, not sent
    box.press("Enter")
    expect(messages_with(shop, "поддержку Wildberries")).to_have_count(1)
    expect(box).to_have_value("")

    # By title, in Russian; Esc closes and leaves the text as typed.
    box.press_sequentially("/размер")
    expect(options.locator(".template-title")).to_have_text(["Подбор размера"])
    box.press("Escape")
    expect(picker).to_be_hidden()
    expect(box).to_have_value("/размер")
    box.fill("")

    # The screen: from the chat's ⋮ menu.
    shop.click(".menu-btn")
    shop.get_by_role("menuitem", name="Шаблоны ответов").click()
    screen = dialog(shop)
    expect(screen.locator(".template-row")).to_have_count(6)
    screen.get_by_role("button", name="Добавить шаблон").click()
    screen.get_by_label("Команда").fill("delivery")
    screen.get_by_label("Название").fill("Сроки доставки")
    screen.get_by_label("Текст").fill("Пишите в телеграм @shop_help, там быстрее")
    screen.get_by_role("button", name="Сохранить").click()
    refusal = screen.locator(".template-text-field .field-error")
    expect(refusal).to_contain_text("нельзя обмениваться контактами")
    expect(refusal.locator("mark")).to_contain_text(["@shop_help"])
    screenshot(shop, "templates.png")
    screen.get_by_label("Текст").fill("Отправим завтра, трек-номер пришлём в этом чате.")
    screen.get_by_role("button", name="Сохранить").click()
    row = screen.locator(
        ".template-row", has=shop.locator(".template-shortcut", has_text="/delivery")
    )
    expect(row.locator(".template-title")).to_have_text("Сроки доставки")

    # A shortcut taken already is named; an edit keeps the template's place.
    screen.get_by_role("button", name="Добавить шаблон").click()
    screen.get_by_label("Команда").fill("hello")
    screen.get_by_label("Название").fill("Ещё приветствие")
    screen.get_by_label("Текст").fill("Добрый день!")
    screen.get_by_role("button", name="Сохранить").click()
    expect(screen.locator(".field-error:visible")).to_have_text(
        "Шаблон с командой /hello уже есть."
    )
    screen.get_by_role("button", name="Отменить").click()
    row.get_by_role("button", name="Изменить").click()
    screen.get_by_label("Название").fill("Доставка")
    screen.get_by_role("button", name="Сохранить").click()
    expect(row.locator(".template-title")).to_have_text("Доставка")

    # Deleted after a question.
    thanks = screen.locator(
        ".template-row", has=shop.locator(".template-shortcut", has_text="/thanks")
    )
    thanks.get_by_role("button", name="Удалить").click()
    sure = shop.locator("dialog.modal[open]", has_text="Удалить шаблон?")
    sure.get_by_role("button", name="Удалить").click()
    expect(screen.locator(".template-row")).to_have_count(6)
    expect(thanks).to_have_count(0)
    shop.keyboard.press("Escape")
    expect(dialog(shop)).to_have_count(0)
    # The browser logs the two refusals (422, 409) as failed loads: they were expected.
    refused = ("status of 422", "status of 409")
    pages.errors[:] = [e for e in pages.errors if not any(code in e for code in refused)]

    # The picker knows the changes; «Шаблоны» under the input inserts at the caret.
    box.press_sequentially("/дост")
    expect(options.locator(".template-title")).to_have_text(["Доставка"])
    box.press("Tab")
    expect(box).to_have_value("Отправим завтра, трек-номер пришлём в этом чате.")
    box.press("End")
    box.press_sequentially(" ")
    shop.get_by_role("button", name="Шаблоны").click()
    box.press_sequentially("благ")  # typing elsewhere than «/» closes it
    expect(picker).to_be_hidden()


def test_giving_a_chat_to_another_operator_and_the_filters(pages: Pages) -> None:
    anna = pages.open(shop_token())
    oleg = pages.open(shop_token("op-oleg", "Олег"))
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(buyer, SHOP_NAME)

    open_chat(anna, "Тимур")
    line = anna.locator(".chat-head .assign-line")
    expect(line.locator(".assign-who")).to_have_text("Без ответственного")
    line.get_by_role("button", name="Передать").click()
    choose = dialog(anna)
    expect(choose.locator(".operator-option .operator-name")).to_have_text(
        ["Анна", "Олег", "Без ответственного"]
    )
    expect(choose.locator(".operator-option.current .operator-name")).to_have_text(
        "Без ответственного"
    )
    choose.get_by_role("option", name="Олег").click()
    expect(dialog(anna)).to_have_count(0)

    # Everyone of the shop sees it: the header, the service line, the list's tag, the filters.
    expect(line.locator(".assign-who")).to_have_text("Ответственный: Олег")
    note = anna.locator(".messages .assigned-note")
    expect(note.locator(".assigned-text")).to_have_text("Чат передан: Олег")
    expect(note.locator(".assigned-by")).to_have_text("передал(а) Анна")
    expect(chat_item(anna, "Тимур").locator(".assignee")).to_have_text("Олег")
    expect(chat_item(oleg, "Тимур").locator(".assignee")).to_have_text("Вы")
    oleg.locator(".inbox-assign").get_by_role("button", name="Мои").click()
    expect(oleg.locator(".chat-item .chat-item-name")).to_have_text(["Тимур"])
    anna.locator(".inbox-assign").get_by_role("button", name="Мои").click()
    expect(anna.locator(".chat-empty")).to_have_text("Таких диалогов нет")
    anna.locator(".inbox-assign").get_by_role("button", name="Без ответственного").click()
    expect(chat_item(anna, "Тимур")).to_have_count(0)
    expect(anna.locator(".chat-item")).to_have_count(5)

    # Олег takes another chat himself; Анна's «Без ответственного» loses it live.
    open_chat(oleg, "Тимур")
    expect(oleg.locator(".chat-head .assign-who")).to_have_text("Ответственный: вы")
    oleg.locator(".inbox-assign").get_by_role("button", name="Все").click()
    open_chat(oleg, "Люда")
    oleg.locator(".chat-head .assign-line").get_by_role("button", name="Взять себе").click()
    expect(oleg.locator(".messages .assigned-text")).to_have_text("Чат взят в работу: Олег")
    expect(chat_item(anna, "Люда")).to_have_count(0)
    expect(anna.locator(".chat-item")).to_have_count(4)
    anna.locator(".inbox-assign").get_by_role("button", name="Все").click()
    expect(anna.locator(".chat-item")).to_have_count(6)

    # The buyer's page knows nothing of it.
    expect(buyer.locator(".assign-line, .assigned-note, .transfer-btn")).to_have_count(0)


def test_a_private_note_stays_with_the_shop(pages: Pages) -> None:
    anna = pages.open(shop_token(), init_script=RECORD_FRAMES)
    oleg = pages.open(shop_token("op-oleg", "Олег"))
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(buyer, SHOP_NAME)
    open_chat(anna, "Тимур")
    open_chat(oleg, "Тимур")

    anna.get_by_role("button", name="Заметка").click()
    expect(anna.locator(".composer.note-mode")).to_have_count(1)
    box = anna.locator(".composer-input")
    expect(box).to_have_attribute("placeholder", "Заметка для магазина: покупатель её не увидит")
    box.press_sequentially("Постоянный покупатель, можно предложить скидку")
    box.press("Enter")

    for page in (anna, oleg):
        shown = page.locator(".messages .note-msg")
        expect(shown.locator(".note-text")).to_have_text(
            "Постоянный покупатель, можно предложить скидку"
        )
        expect(shown.locator(".note-label")).to_have_text("Заметка для магазина")
        expect(shown.locator(".note-author")).to_have_text("Анна")
        expect(shown.locator(".icon-lock")).to_have_count(1)
    # Yellow, and apart from the messages.
    background = anna.locator(".note-msg").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 248, 214)", background
    expect(messages_with(anna, "скидку")).to_have_count(0)
    notes = sent(anna, "note")
    assert [frame["text"] for frame in notes] == ["Постоянный покупатель, можно предложить скидку"]
    assert notes[0]["nonce"]
    assert sent(anna, "send") == []
    # Writing a note is not typing.
    assert sent(anna, "typing") == []

    # The chat keeps its mode: a note's draft never turns into a message by surprise.
    open_chat(anna, "Люда")
    expect(anna.locator(".composer.note-mode")).to_have_count(0)
    open_chat(anna, "Тимур")
    expect(anna.locator(".composer.note-mode")).to_have_count(1)
    expect(anna.get_by_role("button", name="Заметка")).to_have_attribute("aria-pressed", "true")

    # Back to messages: the buyer gets the message, and heard the typing.
    anna.get_by_role("button", name="Сообщение").click()
    box.press_sequentially("Здравствуйте! Дарим скидку на следующий заказ.")
    box.press("Enter")
    expect(messages_with(buyer, "Дарим скидку")).to_have_count(1)
    assert len(sent(anna, "typing")) >= 1

    # The buyer never sees the note: live, after a reload, in the list, in search.
    expect(buyer.get_by_text("Постоянный покупатель")).to_have_count(0)
    expect(buyer.locator(".note-msg, .compose-mode")).to_have_count(0)
    buyer.reload()
    buyer.wait_for_selector(".chat-list[data-loaded]")
    expect(chat_item(buyer, SHOP_NAME).locator(".chat-item-snippet")).to_have_text(
        "Здравствуйте! Дарим скидку на следующий заказ."
    )
    open_chat(buyer, SHOP_NAME)
    expect(messages_with(buyer, "Дарим скидку")).to_have_count(1)
    expect(buyer.get_by_text("Постоянный покупатель")).to_have_count(0)
    buyer.locator(".inbox-search-input").fill("Постоянный")
    expect(buyer.locator(".search-hits .search-empty")).to_have_text("Ничего не найдено")


def test_typing_and_presence_between_two_pages(
    pages: Pages, screenshot: Callable[[Any, str], Path]
) -> None:
    shop = pages.open(shop_token(), init_script=RECORD_FRAMES)
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"), init_script=RECORD_FRAMES)
    open_chat(buyer, SHOP_NAME)
    open_chat(shop, "Тимур")

    # Both sides are online: «в сети» in the header, a dot in the list.
    expect(shop.locator(".chat-head .presence")).to_have_text("в сети")
    expect(chat_item(shop, "Тимур").locator(".presence-dot")).to_have_count(1)
    expect(chat_item(shop, "Люда").locator(".presence-dot")).to_have_count(0)
    expect(buyer.locator(".chat-head .presence")).to_have_text("в сети")
    expect(chat_item(buyer, SHOP_NAME).locator(".presence-dot")).to_have_count(1)

    # The buyer types: the shop reads «Тимур печатает…» in the header and the list.
    buyer.locator(".composer-input").press_sequentially("Здравствуйте, а когда", delay=40)
    expect(shop.locator(".chat-head .typing-line")).to_have_text("Тимур печатает…")
    expect(chat_item(shop, "Тимур").locator(".typing-snippet")).to_have_text("печатает…")
    expect(shop.locator(".chat-head .presence")).to_have_count(0)
    # At most one frame every 2 s, however fast the keys.
    typed = sent(buyer, "typing")
    assert len(typed) == 1, typed
    # Gone a few seconds after the last one.
    expect(shop.locator(".chat-head .typing-line")).to_have_count(0, timeout=8000)
    expect(shop.locator(".chat-head .presence")).to_have_text("в сети")

    # The shop types back: the buyer reads the operator's name.
    shop.locator(".composer-input").press_sequentially("Добрый день", delay=20)
    expect(buyer.locator(".chat-head .typing-line")).to_have_text("Анна печатает…")
    expect(chat_item(buyer, SHOP_NAME).locator(".typing-snippet")).to_have_text("печатает…")
    screenshot(buyer, "buyer-typing.png")
    # A message from the side that typed ends it at once.
    shop.locator(".composer-input").press("Enter")
    expect(messages_with(buyer, "Добрый день")).to_have_count(1)
    expect(buyer.locator(".chat-head .typing-line")).to_have_count(0)

    # The buyer's page closes: the shop sees them go (after the server's 2 s of grace).
    buyer.context.close()
    expect(shop.locator(".chat-head .presence")).to_have_text("не в сети", timeout=8000)
    expect(chat_item(shop, "Тимур").locator(".presence-dot")).to_have_count(0)
    # And come back.
    again = pages.open(buyer_token("buyer-timur", "Тимур"))
    expect(shop.locator(".chat-head .presence")).to_have_text("в сети")
    expect(chat_item(shop, "Тимур").locator(".presence-dot")).to_have_count(1)
    expect(again.locator(".presence-dot")).to_have_count(1)


def test_the_operators_tools_in_one_view_on_a_desktop_and_a_phone(
    pages: Pages, screenshot: Callable[[Any, str], Path]
) -> None:
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(buyer, SHOP_NAME)
    desk = pages.open(shop_token())
    phone = pages.open(shop_token(), viewport=PHONE)
    open_chat(desk, "Тимур")
    open_chat(phone, "Тимур")

    # Taken, with a note for the colleagues; the phone shows both.
    desk.locator(".chat-head .assign-line").get_by_role("button", name="Взять себе").click()
    expect(desk.locator(".messages .assigned-note")).to_have_count(1)
    desk.get_by_role("button", name="Заметка").click()
    desk.locator(".composer-input").fill("Просит обмен на размер M; уточнить наличие на складе")
    desk.locator(".composer-input").press("Enter")
    desk.get_by_role("button", name="Сообщение").click()
    for page in (desk, phone):
        expect(page.locator(".note-msg")).to_have_count(1)
        expect(page.locator(".chat-head .assign-who")).to_have_text("Ответственный: вы")

    # The buyer types: both pages say so; then the picker over the chat.
    buyer.locator(".composer-input").press_sequentially("Есть", delay=30)
    for page, name in ((desk, "operators-day.png"), (phone, "phone-operators-day.png")):
        expect(page.locator(".chat-head .typing-line")).to_have_text("Тимур печатает…")
        page.locator(".messages").evaluate("box => box.scrollTop = box.scrollHeight")
        assert_on_screen(page)
        screenshot(page, name)
    for page in (desk, phone):
        page.locator(".composer-input").press_sequentially("/")
        expect(page.locator(".template-option")).to_have_count(6)
        assert_on_screen(page)
    screenshot(desk, "templates-picker.png")
    for page in (desk, phone):
        page.locator(".composer-input").press("Escape")

    # The phone's composer, the operators to choose from and the templates' screen fit it.
    phone.locator(".composer-input").fill("")
    phone.get_by_role("button", name="Заметка").click()
    expect(phone.locator(".composer.note-mode")).to_have_count(1)
    assert_on_screen(phone)
    expect(phone.locator(".chat-head .transfer-btn")).to_be_hidden()  # in the ⋮ menu here
    phone.click(".menu-btn")
    phone.get_by_role("menuitem", name="Передать чат").click()
    expect(dialog(phone).locator(".operator-option")).to_have_count(2)
    assert_on_screen(phone)
    phone.keyboard.press("Escape")
    phone.click(".menu-btn")
    phone.get_by_role("menuitem", name="Шаблоны ответов").click()
    expect(dialog(phone).locator(".template-row")).to_have_count(6)
    assert_dialog_fits(phone)
    screenshot(phone, "phone-templates.png")
