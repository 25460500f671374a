"""A short-lived token is renewed through `window.chatdRenewToken` before it expires: the page
stays connected past the old token's `exp` (when the server closes its socket), keeps the
draft typed in the composer, and sends and receives with the new token, without a reload."""

from __future__ import annotations

import time

from playwright import sync_api as sync_api

from tests.browser.driver import (
    SHOP,
    VIEWPORT,
    Pages,
    messages_with,
    open_buyer_chat,
    open_chat,
    send_message,
)
from tests.e2e.harness import ServerProcess, token

expect = sync_api.expect
SHORT_TTL = 6.0

# What a hosting page does: it gets a new token from its own back end. Here the test mints it;
# the calls are counted so that the test knows the hook, not a reload, brought it.
HOOK = """
window.chatdRenewals = [];
window.chatdRenewToken = async (current) => {
  const renewed = await window.mintChatdToken();
  window.chatdRenewals.push({ old: current, renewed });
  return renewed;
};
"""


def test_a_short_token_is_renewed_through_the_hook_and_the_page_stays_live(
    pages: Pages, server: ServerProcess
) -> None:
    buyer = open_buyer_chat(pages, "buyer-timur", "Тимур")
    send_message(buyer, "Здравствуйте, где мой заказ?")

    context = pages.browser.new_context(
        viewport=VIEWPORT, locale="ru-RU", timezone_id="Europe/Moscow"
    )
    pages.contexts.append(context)
    minted: list[str] = []

    def mint() -> str:
        minted.append(token("seller", "op-anna", "Анна", seller=SHOP, ttl=3600))
        return minted[-1]

    context.expose_function("mintChatdToken", mint)
    context.add_init_script(HOOK)
    shop = context.new_page()
    shop.set_default_timeout(10_000)
    shop.on("pageerror", lambda error: pages.errors.append(str(error)))
    short = token("seller", "op-anna", "Анна", seller=SHOP, ttl=SHORT_TTL)
    issued = time.time()
    shop.goto(f"{server.http}/#token={short}")
    shop.wait_for_selector(".chat-list[data-loaded]")
    open_chat(shop, "Тимур")
    shop.fill(".composer-input", "Черновик: уточню у склада")

    # Past the short token's `exp`: had the page kept it, the server would have closed its
    # socket with 4001 «token expired» and the page would ask for a new link.
    shop.wait_for_timeout(max(0.0, issued + SHORT_TTL + 1.5 - time.time()) * 1000)

    renewals = shop.evaluate("window.chatdRenewals")
    assert len(minted) == 1, "the hook was not asked for a new token"
    assert [(r["old"], r["renewed"]) for r in renewals] == [(short, minted[0])]
    expect(shop.locator(".conn-banner")).to_be_hidden()
    expect(shop.locator(".composer-input")).to_have_value("Черновик: уточню у склада")
    assert shop.evaluate("sessionStorage.getItem('chatd.token')") == minted[0]

    # Live both ways on the new token: the buyer's message arrives, the draft goes out.
    send_message(buyer, "Жду ответа")
    expect(messages_with(shop, "Жду ответа")).to_have_count(1)
    shop.click(".send-btn")
    expect(messages_with(buyer, "Черновик: уточню у склада")).to_have_count(1)
    assert pages.errors == []
