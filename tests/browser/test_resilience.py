"""The page stays live across a lost network and a server restart: it says so, comes back
with its cursor, and shows every event exactly once."""

from __future__ import annotations

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    buyer_token,
    messages_with,
    open_chat,
    rendered_seqs,
    send_message,
    shop_token,
)
from tests.e2e.harness import ServerProcess

expect = sync_api.expect


def assert_each_event_once(page: object) -> None:
    seqs = rendered_seqs(page)
    assert seqs == sorted(set(seqs)), seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_the_page_survives_a_server_restart(pages: Pages, server: ServerProcess) -> None:
    shop = pages.open(shop_token())
    buyer = pages.open(buyer_token("buyer-timur", "Тимур"))
    open_chat(shop, "Тимур")
    open_chat(buyer, SHOP_NAME)
    send_message(buyer, "Сообщение до перезапуска")
    expect(messages_with(shop, "Сообщение до перезапуска")).to_have_count(1)
    banner = shop.locator(".conn-banner")
    expect(banner).to_be_hidden()

    # The server dies without a goodbye: both pages say so.
    server.kill()
    for page in (shop, buyer):
        expect(page.locator(".conn-banner")).to_have_text("Нет соединения… Переподключаемся")

    # The shop's page stays off the network while the buyer writes to the new process.
    shop.context.set_offline(True)
    server.start()
    expect(buyer.locator(".conn-banner")).to_be_hidden(timeout=15_000)
    missed = ["Пропущенное первое", "Пропущенное второе", "Пропущенное третье"]
    for text in missed:
        send_message(buyer, text)
        expect(messages_with(buyer, text)).to_have_count(1)
    expect(banner).to_be_visible()

    # Back online: the page resumes from its cursor and shows what it missed, once.
    shop.context.set_offline(False)
    expect(banner).to_be_hidden(timeout=15_000)
    for text in missed:
        expect(messages_with(shop, text)).to_have_count(1)
    send_message(buyer, "Сообщение после перезапуска")
    expect(messages_with(shop, "Сообщение после перезапуска")).to_have_count(1)
    expect(messages_with(shop, "Сообщение до перезапуска")).to_have_count(1)
    for page in (shop, buyer):
        assert_each_event_once(page)

    # The unread count of a chat that is not open counts the missed events once as well.
    shop.locator(".chat-item", has_text="Люда").click()
    shop.context.set_offline(True)
    expect(banner).to_be_visible()
    send_message(buyer, "Ещё одно, пока вас нет")
    shop.context.set_offline(False)
    expect(banner).to_be_hidden(timeout=15_000)
    badge = shop.locator(".chat-item", has_text="Тимур").locator(".badge")
    expect(badge).to_have_text("1")
    shop.wait_for_timeout(500)
    expect(badge).to_have_text("1")


def test_the_token_survives_a_reload(pages: Pages) -> None:
    shop = pages.open(shop_token())
    assert "token=" not in shop.url
    shop.reload()
    shop.wait_for_selector(".chat-list[data-loaded]")
    expect(shop.locator(".chat-item")).to_have_count(6)


def test_an_unknown_cursor_reloads_the_chats(pages: Pages, server: ServerProcess) -> None:
    shop = pages.open(shop_token())
    open_chat(shop, "Тимур")
    send_message(shop, "Это сообщение пропадёт вместе с базой")
    expect(messages_with(shop, "пропадёт вместе с базой")).to_have_count(1)

    # Another log behind the same address (a database restored from elsewhere): the page's
    # cursor means nothing there, so it loads its chats again instead of missing events.
    server.kill()
    for leftover in server.db.parent.glob(server.db.name + "*"):
        if leftover.is_file():
            leftover.unlink()
    server.start()
    expect(shop.locator(".conn-banner")).to_be_hidden(timeout=15_000)
    expect(messages_with(shop, "пропадёт вместе с базой")).to_have_count(0)
    expect(shop.locator(".kind-return-requested")).to_have_count(2)
    expect(shop.locator(".chat-item")).to_have_count(6)
    assert_each_event_once(shop)
    send_message(shop, "Новая база, новое сообщение")
    expect(messages_with(shop, "Новая база, новое сообщение")).to_have_count(1)


def test_a_buyers_link_opens_the_chat_with_a_shop(pages: Pages) -> None:
    buyer = pages.open(buyer_token("buyer-lyuda", "Люда") + "&shop=shop-kunchenko")
    expect(buyer.locator(".chat-name")).to_have_text(SHOP_NAME)
    expect(messages_with(buyer, "товар не отправили")).to_have_count(1)
    expect(buyer.locator(".chat-item.active")).to_have_count(1)
