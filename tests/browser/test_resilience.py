"""The page stays live across a lost network and a server restart: it says so, comes back
with its cursor, and shows every event exactly once; a message whose answer was lost goes
out again with its nonce and is written once."""

from __future__ import annotations

import json
from typing import Any

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
    texts_in_log,
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
    pages.wait_for_quiet_network(shop, buyer)
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
    pages.wait_for_quiet_network(shop)
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


RETRIED = "Отправлено, а ответ потерялся"


def test_a_message_whose_answer_was_lost_is_sent_again_and_written_once(
    pages: Pages, server: ServerProcess
) -> None:
    """The socket dies after the server took a message and before its `ack` reached the page:
    the page sends it again with the same nonce, and the server writes it once."""
    wire = {"sent": 0, "cut": False}

    def relay(page_side: Any) -> None:
        server_side = page_side.connect_to_server()
        waiting_for: dict[str, str] = {}

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "send" and frame.get("text") == RETRIED:
                wire["sent"] += 1
                if not wire["cut"]:
                    waiting_for["id"] = frame["id"]
            server_side.send(message)

        def to_page(message: str | bytes) -> None:
            if "id" in waiting_for and not wire["cut"]:
                frame = json.loads(message)
                if frame.get("type") == "ack" and frame.get("id") == waiting_for["id"]:
                    # Written and acked: the page never hears of it, its socket dies.
                    wire["cut"] = True
                    page_side.close(code=1006, reason="")
                return  # the message's own event is lost with the socket as well
            page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)

    buyer = pages.open(buyer_token("buyer-timur", "Тимур"), websocket_route=relay)
    shop = pages.open(shop_token())
    open_chat(buyer, SHOP_NAME)
    open_chat(shop, "Тимур")
    send_message(buyer, RETRIED)
    expect(messages_with(buyer, RETRIED)).to_have_count(1, timeout=15_000)
    expect(messages_with(shop, RETRIED)).to_have_count(1)
    expect(buyer.locator(".messages .queued")).to_have_count(0)
    buyer.wait_for_timeout(500)
    expect(messages_with(buyer, RETRIED)).to_have_count(1)
    assert wire == {"sent": 2, "cut": True}
    chat = shop.evaluate("window.chatd.chatView.chatId")
    assert texts_in_log(server, shop_token(), chat, RETRIED) == 1
