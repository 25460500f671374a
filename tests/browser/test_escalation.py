"""A request the shop leaves undecided past `--claim-deadline` goes to the managers by itself
(docs/protocol.md 11): the shop's buttons go, and the manager finds the claim, how it came and
how long it has waited, with the buyer's words, and decides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as sync_api

from tests.browser.driver import (
    Pages,
    chat_item,
    dialog,
    hours_ago,
    manager_token,
    open_buyer_chat,
    open_chat,
    register_order,
    service_with,
    shop_token,
)
from tests.e2e.harness import ServerProcess, uid

expect = sync_api.expect

ESCALATED = (
    "Продавец не ответил на заявку вовремя. Заявка передана на рассмотрение менеджеру Wildberries."
)
DEADLINE_SECONDS = 3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The demo with a shop's decision due 3 s after a request."""
    process = ServerProcess(
        db=tmp_path / "chatd.db",
        extra_args=("--dev", "--claim-deadline", f"{DEADLINE_SECONDS}s"),
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_an_escalated_claim_reaches_the_manager_with_its_age(
    pages: Pages, server: ServerProcess
) -> None:
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(
        server, order_id, buyer_id, "Дарья", name="Мёд липовый", brand="Пасека",
        purchased_at=hours_ago(5), received_at=hours_ago(2), non_returnable=True,
    )  # fmt: skip
    buyer = open_buyer_chat(pages, buyer_id, "Дарья", order_id)
    shop = pages.open(shop_token())
    manager = pages.open(manager_token())
    expect(chat_item(manager, "Дарья")).to_have_count(0)

    comment = "Банка пришла треснутой, мёд вытек."
    buyer.locator(".kind-chat-opened").get_by_role("button", name="Вернуть товар").click()
    dialog(buyer).get_by_label("Комментарий").fill(comment)
    dialog(buyer).get_by_role("button", name="Отправить заявку").click()
    open_chat(shop, "Дарья")
    request = shop.locator(".kind-return-requested .product-card")
    expect(request.get_by_role("button", name="Согласиться на возврат")).to_be_visible()

    # The shop lets the deadline pass: the claim goes to the managers, on every page, live.
    timeout = (DEADLINE_SECONDS + 10) * 1000
    for page in (shop, buyer):
        expect(service_with(page, ESCALATED)).to_have_count(1, timeout=timeout)
    expect(request.locator(".card-actions")).to_have_count(0)
    expect(request.locator(".card-state")).to_have_text("Заявка на рассмотрении у менеджера")

    item = chat_item(manager, "Дарья")
    expect(item).to_have_count(1)
    expect(item.locator(".tag-escalated")).to_contain_text("Продавец не ответил вовремя")
    expect(item.locator(".tag-escalated")).to_contain_text("0 мин")

    open_chat(manager, "Дарья")
    claim = manager.locator(".claims-bar .product-card", has_text="Мёд липовый")
    expect(claim.locator(".claim-age")).to_have_text("Ждёт решения менеджера 0 мин")
    expect(claim.locator(".claim-step-title")).to_have_text(
        ["Заявка покупателя", "Продавец не ответил вовремя"]
    )
    expect(claim.locator(".claim-note")).to_have_text(f"Комментарий покупателя: {comment}")
    # The portal's advice for non-returnable goods stands by the manager's buttons too.
    expect(claim.locator(".card-advice")).to_contain_text("«Возврат товара не нужен»")

    claim.get_by_role("button", name="Одобрить возврат").click()
    claim.get_by_role("button", name="Возврат товара не нужен").click()
    dialog(manager).get_by_role("button", name="Подтвердить").click()
    for page in (manager, shop, buyer):
        expect(service_with(page, "Менеджер Wildberries одобрил возврат.")).to_have_count(1)
    expect(item.locator(".tag")).to_have_count(0)
