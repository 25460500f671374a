"""The manager's console: the disputed and escalated claims as a queue, the longest waiting
first, each with its age and what the parties wrote; the decision from the claim's file beside
the chat; a decided claim leaves the queue for «Решённые», marked so, and the next one is a
click away."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright import sync_api as sync_api

from chatd.domain.ids import claim_id
from tests.browser.driver import (
    Pages,
    chat_item,
    dialog,
    manager_token,
    open_buyer_chat,
    png,
    register_order,
    request_return,
    service_with,
    shop_token,
)
from tests.e2e.harness import ServerProcess, uid

expect = sync_api.expect


def test_the_queue_oldest_first_with_evidence_and_decisions(
    pages: Pages, server: ServerProcess, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    # A claim disputed today, beside the demo's Марина, disputed in 2023.
    buyer_id, order_id = uid("buyer"), uid("order")
    register_order(server, order_id, buyer_id, "Ксения", name="Термокружка", brand="Stanley")
    buyer = open_buyer_chat(pages, buyer_id, "Ксения", order_id)
    photo = tmp_path / "dent.png"
    photo.write_bytes(png(40, 30, (90, 90, 90)))
    request_return(buyer, "Кружка пришла с вмятиной и не держит тепло.", [photo])
    refused = httpx.post(
        f"{server.http}/api/v1/claims/{claim_id(order_id)}/actions",
        json={"action": "reject", "reason": "Вмятина от падения у покупателя."},
        headers={"Authorization": f"Bearer {shop_token()}"},
        timeout=10,
    )
    assert refused.status_code == 200, refused.text
    # The refusal shown whole before its button is pressed (see test_claims).
    refusal = buyer.locator(".kind-return-rejected")
    expect(refusal.locator(".claim-note")).to_have_text(
        "Причина отказа: Вмятина от падения у покупателя."
    )
    refusal.get_by_role("button", name="Оспорить решение").click()
    dialog(buyer).get_by_role("button", name="Оспорить").click()
    expect(service_with(buyer, "Покупатель оспорил решение продавца.")).to_have_count(1)

    manager = pages.open(manager_token())
    expect(manager).to_have_title("(2) Спорные заявки")
    heads = manager.locator(".queue-head")
    expect(heads).to_have_count(1)
    expect(heads).to_contain_text("Ждут решения")
    items = manager.locator(".chat-item .chat-item-name")
    expect(items).to_have_text(["Марина — ИП Кунченко С.А.", "Ксения — ИП Кунченко С.А."])
    kseniya = chat_item(manager, "Ксения")
    expect(kseniya.locator(".tag-disputed")).to_contain_text("Оспорено покупателем · 0 мин")
    evidence = kseniya.locator(".queue-evidence")
    expect(evidence.locator(".ev-order")).to_have_text("Термокружка")
    expect(evidence.locator(".ev-comment")).to_have_text(
        "«Кружка пришла с вмятиной и не держит тепло.»"
    )
    expect(evidence.locator(".ev-photos")).to_have_text("фото: 1")
    expect(evidence.locator(".ev-reason")).to_have_text("Отказ: Вмятина от падения у покупателя.")
    expect(chat_item(manager, "Марина").locator(".tag-disputed")).to_contain_text("дн.")

    # The claim's file beside the chat, with the decision.
    kseniya.click()
    claim = manager.locator(".claims-bar .product-card", has_text="Термокружка")
    expect(claim.locator(".claim-step-title")).to_have_text(
        ["Заявка покупателя", "Отказ продавца", "Покупатель оспорил решение"]
    )
    claim.get_by_role("button", name="Одобрить возврат").click()
    claim.get_by_role("button", name="Возврат товара не нужен").click()
    dialog(manager).get_by_role("button", name="Подтвердить").click()

    # Decided: out of the queue, marked, and each side reads what comes next.
    expect(manager).to_have_title("(1) Спорные заявки")
    decided = manager.locator(".queue-head.queue-decided")
    expect(decided).to_contain_text("Решённые")
    expect(items).to_have_text(["Марина — ИП Кунченко С.А.", "Ксения — ИП Кунченко С.А."])
    expect(kseniya.locator(".decided")).to_have_text("Решено: возврат одобрен")
    expect(kseniya.locator(".tag")).to_have_count(0)
    expect(claim.locator(".card-state")).to_have_text("Менеджер одобрил возврат")
    expect(claim.locator(".card-next")).to_contain_text("товар остаётся у покупателя")
    expect(buyer.locator(".kind-return-requested .card-next")).to_have_text(
        "Что дальше: ничего не нужно, товар остаётся у вас. Деньги возвращены на баланс."
    )
    screenshot(manager, "manager-queue.png")

    # The next claim of the queue is one click away.
    manager.get_by_role("button", name="Следующая в очереди").click()
    expect(manager.locator(".chat-item.active .chat-item-name")).to_have_text(
        "Марина — ИП Кунченко С.А."
    )
    expect(manager.locator(".claims-bar .product-card", has_text="Платок")).to_be_visible()
