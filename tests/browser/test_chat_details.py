"""The small things of a day in the chat: the photo viewer (Esc, a close button, never smaller
than the thumbnail), Esc on the ⋮ menu, a file name with quotes, an upload the server refuses
said in Russian, the newest messages kept in view when a refusal or the connection banner
takes room, what happens next after an approval on both sides, and the portal's sections that
do not open shown as plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    buyer_token,
    dialog,
    messages_with,
    open_chat,
    png,
    send_message,
    service_with,
    shop_token,
)

expect = sync_api.expect


def box_of(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return dict(box)


def last_message_in_view(page: Any) -> bool:
    """Whether the chat's last event is wholly inside the visible part of the messages."""
    return bool(
        page.evaluate(
            """() => {
              const box = document.querySelector('.messages').getBoundingClientRect();
              const events = document.querySelectorAll('.messages .event');
              const last = events[events.length - 1].getBoundingClientRect();
              return last.bottom <= box.bottom + 1 && last.top >= box.top - 1;
            }"""
        )
    )


def test_the_photo_viewer_the_menu_and_files(pages: Pages, tmp_path: Path) -> None:
    shop = pages.open(shop_token())
    buyer = pages.open(buyer_token("buyer-lyuda", "Люда"))
    open_chat(shop, "Люда")
    open_chat(buyer, SHOP_NAME)

    photo = tmp_path / "parcel.png"
    photo.write_bytes(png(64, 48, (203, 17, 171)))
    invoice = tmp_path / 'Счёт "Ромашка".pdf'
    invoice.write_bytes(b"%PDF-1.4\n%%EOF\n")
    shop.set_input_files(".composer input[type=file]", [str(photo), str(invoice)])
    expect(shop.locator(".pending-file.done")).to_have_count(2)
    send_message(shop, "Фото посылки и счёт")
    for page in (shop, buyer):
        chip = page.locator(".msg", has_text="Фото посылки").locator(".file-chip .file-name")
        expect(chip).to_have_text('Счёт "Ромашка".pdf')

    # The viewer: larger than the thumbnail (fitted to the window), Esc closes it.
    thumb = buyer.locator(".msg", has_text="Фото посылки").locator(".msg-photos img")
    buyer.wait_for_function("img => img.naturalWidth === 64", arg=thumb.element_handle())
    thumb.click()
    viewer = buyer.locator(".lightbox")
    image = viewer.locator(".lightbox-image")
    buyer.wait_for_function("img => img.complete && img.style.width", arg=image.element_handle())
    shown, small = box_of(image), box_of(thumb)
    assert shown["width"] >= small["width"] and shown["height"] >= small["height"], (shown, small)
    assert shown["height"] <= 860 and shown["width"] <= 1360
    buyer.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    # … and so does its close button.
    thumb.click()
    viewer.get_by_role("button", name="Закрыть").click()
    expect(viewer).to_have_count(0)

    # The ⋮ menu closes on Esc.
    buyer.click(".menu-btn")
    expect(buyer.locator(".menu-popup")).to_be_visible()
    buyer.keyboard.press("Escape")
    expect(buyer.locator(".menu-popup")).to_have_count(0)

    # A file the server refuses (not a picture, whatever its name says): said in Russian.
    fake = tmp_path / "photo.png"
    fake.write_text("not a picture at all")
    buyer.set_input_files(".composer input[type=file]", str(fake))
    expect(buyer.locator(".toast-error")).to_have_text(
        "photo.png: Можно прикрепить только фото (JPEG, PNG) или документ PDF."
    )
    expect(buyer.locator(".pending-file")).to_have_count(0)
    # An empty file is not a file of the wrong type: the page says which it is.
    empty = tmp_path / "scan.pdf"
    empty.write_bytes(b"")
    buyer.set_input_files(".composer input[type=file]", str(empty))
    expect(buyer.locator(".toast-error").last).to_have_text(
        "scan.pdf: Файл пустой: выберите другой."
    )
    expect(buyer.locator(".pending-file")).to_have_count(0)
    # The browser logs the refused upload's 415 itself; the page said what it meant.
    pages.errors[:] = [e for e in pages.errors if "status of 415" not in e]


def test_the_newest_messages_stay_in_view_and_approvals_say_what_is_next(pages: Pages) -> None:
    shop = pages.open(shop_token())
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(shop, "Тимур")
    open_chat(buyer, SHOP_NAME)
    # Two columns on a desktop: no «back to the list».
    expect(shop.get_by_role("button", name="К списку чатов")).to_be_hidden()
    expect(shop.locator(".inbox")).to_be_visible()
    for word in ("один", "два", "три", "четыре"):
        send_message(shop, f"Ответ номер {word}")
    expect(messages_with(shop, "Ответ номер четыре")).to_have_count(1)
    scrolls = "m => m.scrollHeight > m.clientHeight"
    assert shop.locator(".messages").evaluate(scrolls)
    assert last_message_in_view(shop)

    # A refusal next to the input takes room: the newest message stays in view.
    send_message(shop, "Пишите мне на почту shop@example.com")
    expect(shop.locator(".composer .refusal")).to_be_visible()
    expect(shop.locator(".composer-input")).to_have_value("Пишите мне на почту shop@example.com")
    shop.wait_for_timeout(100)
    assert last_message_in_view(shop)
    shop.locator(".refusal-close").click()

    # So does the connection banner.
    shop.context.set_offline(True)
    expect(shop.locator(".conn-banner")).to_be_visible()
    shop.wait_for_timeout(100)
    assert last_message_in_view(shop)
    shop.context.set_offline(False)
    expect(shop.locator(".conn-banner")).to_be_hidden(timeout=15_000)

    # After the approval, each side's card says what comes next.
    card = shop.locator(".kind-return-requested .product-card", has_text="Юбка")
    card.get_by_role("button", name="Согласиться на возврат").click()
    card.get_by_role("button", name="Возврат на ПВЗ").click()
    dialog(shop).get_by_role("button", name="Подтвердить").click()
    for page in (shop, buyer):
        expect(service_with(page, "Процедура возврата согласована.")).to_have_count(1)
    expect(card.locator(".card-next")).to_have_text(
        "Что дальше: покупатель сдаст товар в пункт выдачи. Деньги вернутся ему на баланс, "
        "когда товар поступит на склад."
    )
    buyer_card = buyer.locator(".kind-return-requested .product-card", has_text="Юбка")
    expect(buyer_card.locator(".card-next")).to_have_text(
        "Что дальше: отнесите товар в пункт выдачи заказов. Деньги вернутся на баланс, когда "
        "товар поступит на склад."
    )

    # The portal's sections that do not open are plain text, not links or buttons.
    inert = shop.locator("nav.topnav .nav-top.inert", has_text="Поставки")
    assert inert.evaluate("e => e.tagName") == "SPAN"
    assert inert.evaluate("e => getComputedStyle(e).cursor") == "default"
    assert float(inert.evaluate("e => getComputedStyle(e).opacity")) < 0.6
    expect(shop.locator(".who-shop")).to_have_text(SHOP_NAME)
    assert shop.locator(".who-shop").evaluate("e => getComputedStyle(e, '::after').content") in (
        "none",
        "normal",
    )
