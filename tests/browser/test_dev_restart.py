"""`chatd serve --dev` keeps what it made: a restart is invisible to the pages it served. The
secret (and so the demo links) stays with the database, a message typed while the server was
down goes out once when it is back, and a new link pasted into the same tab takes effect
without a reload, the draft and all."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as sync_api

from chatd.process.dev_state import state_path
from tests.browser.driver import (
    SHOP_NAME,
    Pages,
    messages_with,
    open_chat,
    send_message,
    texts_in_log,
)
from tests.e2e.harness import ServerProcess

expect = sync_api.expect

LINK = re.compile(r"(shop operator|buyer Тимур)\b.*?#token=(\S+)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`chatd serve --dev` as `make run` starts it: without CHATD_SECRET."""
    process = ServerProcess(db=tmp_path / "chatd.db", secret="", extra_args=("--dev",))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def printed_links(server: ServerProcess) -> dict[str, str]:
    """The tokens of the links the server printed last, by whom they log in."""
    found: dict[str, str] = {}
    for line in server.log_path.read_text(encoding="utf-8").splitlines():
        match = LINK.search(line)
        if match:
            found["shop" if match.group(1) == "shop operator" else "buyer"] = match.group(2)
    assert set(found) == {"shop", "buyer"}, server.log_path.read_text()
    return found


def test_a_restart_is_invisible_to_open_pages(pages: Pages, server: ServerProcess) -> None:
    links = printed_links(server)
    kept = state_path(server.db)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    shop = pages.open(links["shop"])
    buyer = pages.open(links["buyer"])
    open_chat(shop, "Тимур")
    open_chat(buyer, SHOP_NAME)
    chat = shop.evaluate("window.chatd.chatView.chatId")

    pages.wait_for_quiet_network(shop, buyer)
    server.kill()
    for page in (shop, buyer):
        expect(page.locator(".conn-banner")).to_have_text("Нет соединения… Переподключаемся")

    # Written while the server is down: it shows as waiting, and the input is free again.
    text = "Написала, пока сервер перезапускался"
    send_message(buyer, text)
    queued = buyer.locator(".messages .queued")
    expect(queued).to_have_count(1)
    expect(queued.locator(".outbox-text")).to_have_text(text)
    expect(queued.locator(".outbox-status")).to_contain_text("Ждёт соединения")
    expect(buyer.locator(".composer-input")).to_have_value("")

    # The same secret after the restart: the same links, nobody logged out.
    server.start()
    assert printed_links(server) == links
    for page in (shop, buyer):
        expect(page.locator(".conn-banner")).to_be_hidden(timeout=15_000)
    expect(messages_with(buyer, text)).to_have_count(1)
    expect(messages_with(shop, text)).to_have_count(1)
    expect(queued).to_have_count(0)
    shop.wait_for_timeout(700)
    for page in (shop, buyer):
        expect(messages_with(page, text)).to_have_count(1)
        expect(page.locator(".conn-banner.fatal")).to_have_count(0)
    assert texts_in_log(server, links["shop"], chat, text) == 1

    # Live both ways after the restart.
    send_message(shop, "Получили, спасибо!")
    expect(messages_with(buyer, "Получили, спасибо!")).to_have_count(1)

    # A new link pasted into the same tab takes effect without a reload, keeping the draft.
    # The --dev state removed: the next start makes a new secret, and the page's token means
    # nothing to it any more.
    open_chat(shop, "Люда")
    draft = "Черновик, который нельзя потерять"
    shop.fill(".composer-input", draft)
    shop.evaluate("window.loadedOnce = true")
    pages.wait_for_quiet_network(shop, buyer)
    server.kill()
    kept.unlink()
    server.start()
    banner = shop.locator(".conn-banner")
    expect(banner).to_contain_text("Вход не выполнен", timeout=15_000)

    # The new link pasted into the address bar: only the hash changes.
    fresh = printed_links(server)["shop"]
    shop.evaluate("token => { location.hash = 'token=' + token; }", fresh)
    expect(banner).to_be_hidden(timeout=15_000)
    assert shop.evaluate("window.loadedOnce") is True, "the page was reloaded"
    assert "token=" not in shop.url
    expect(shop.locator(".composer-input")).to_have_value(draft)
    expect(shop.locator(".chat-item.active .chat-item-name")).to_have_text("Люда")
    shop.click(".send-btn")
    expect(messages_with(shop, draft)).to_have_count(1)
    expect(shop.locator(".composer-input")).to_have_value("")
