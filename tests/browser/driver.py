"""Driving the browser app: pages per user, tokens, and the marketplace back end's calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.harness import ServerProcess, token

SHOP = "shop-kunchenko"
SHOP_NAME = "ИП Кунченко С.А."
VIEWPORT = {"width": 1360, "height": 860}


def shop_token(operator: str = "op-anna", name: str = "Анна") -> str:
    return token("seller", operator, name, seller=SHOP)


def buyer_token(buyer: str, name: str) -> str:
    return token("buyer", buyer, name)


def manager_token() -> str:
    return token("manager", "mgr-1", "Менеджер Wildberries")


@dataclass
class Pages:
    """Opens pages of the app, each in its own browser context (its own sessionStorage), and
    records every uncaught error they throw."""

    browser: Any
    server: ServerProcess
    contexts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, tok: str) -> Any:
        context = self.browser.new_context(
            viewport=VIEWPORT, locale="ru-RU", timezone_id="Europe/Moscow"
        )
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.goto(f"{self.server.http}/#token={tok}")
        page.wait_for_selector(".chat-list[data-loaded]")
        return page

    def _console(self, message: Any) -> None:
        # A lost network or a restarting server fails connection attempts: that is expected.
        expected = ("WebSocket connection", "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_REFUSED")
        if message.type == "error" and not any(e in message.text for e in expected):
            self.errors.append(message.text)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def chat_item(page: Any, name: str) -> Any:
    """The chat list entry whose title contains `name`."""
    return page.locator(".chat-item", has=page.locator(".chat-item-name", has_text=name))


def open_chat(page: Any, name: str) -> None:
    chat_item(page, name).click()
    page.wait_for_selector(".messages .event")


def messages_with(page: Any, text: str) -> Any:
    return page.locator(".messages .msg-text", has_text=text)


def service_with(page: Any, text: str) -> Any:
    return page.locator(".messages .service-text", has_text=text)


def dialog(page: Any) -> Any:
    return page.locator("dialog.modal[open]")


def send_message(page: Any, text: str) -> None:
    page.fill(".composer-input", text)
    page.click(".send-btn")


def system_post(server: ServerProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    system = token("system", "marketplace")
    return httpx.post(
        server.http + path,
        json=body,
        headers={"Authorization": f"Bearer {system}"},
        timeout=10,
    )


def balances(server: ServerProcess, tok: str) -> list[dict[str, Any]]:
    response = httpx.get(
        server.http + "/api/v1/balance", headers={"Authorization": f"Bearer {tok}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["balances"])


def rendered_seqs(page: Any) -> list[int]:
    """The seq of every event the open chat shows, in screen order."""
    values = page.eval_on_selector_all(".messages [data-seq]", "els => els.map(e => e.dataset.seq)")
    return [int(v) for v in values]
