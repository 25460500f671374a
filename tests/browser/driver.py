"""Driving the browser app: pages per user, tokens, and the marketplace back end's calls."""

from __future__ import annotations

import re
import struct
import time as time_module
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.e2e.harness import ServerProcess, token

SHOP = "shop-kunchenko"
SHOP_NAME = "ИП Кунченко С.А."
VIEWPORT = {"width": 1360, "height": 860}
# A phone held upright (the 390 × 844).
PHONE = {"width": 390, "height": 844}
MOSCOW = ZoneInfo("Europe/Moscow")


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
    # The HTTP requests each page has in flight (WebSockets are not among them), by page.
    in_flight: dict[int, set[Any]] = field(default_factory=dict)

    def open(
        self,
        tok: str,
        *,
        viewport: dict[str, int] | None = None,
        init_script: str | None = None,
        websocket_route: Callable[[Any], None] | None = None,
    ) -> Any:
        """A page of its own context logged in with `tok`; `viewport` defaults to a desktop's
        (PHONE for a phone, with touch), `init_script` runs before the app's own scripts, and
        `websocket_route` stands between the page and the server's /ws (Playwright's
        WebSocketRoute)."""
        phone = viewport is not None and viewport["width"] < 600
        context = self.browser.new_context(
            viewport=viewport or VIEWPORT,
            locale="ru-RU",
            timezone_id="Europe/Moscow",
            has_touch=phone,
            is_mobile=phone,
        )
        if init_script:
            context.add_init_script(init_script)
        if websocket_route:
            context.route_web_socket(re.compile(r"/ws$"), websocket_route)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        pending: set[Any] = set()
        self.in_flight[id(page)] = pending
        page.on("request", lambda request: pending.add(request))
        page.on("requestfinished", lambda request: pending.discard(request))
        page.on("requestfailed", lambda request: pending.discard(request))
        page.goto(f"{self.server.http}/#token={tok}")
        # Attached, not visible: a phone opened on a chat shows the chat, not the list.
        page.wait_for_selector(".chat-list[data-loaded]", state="attached")
        return page

    def _console(self, message: Any) -> None:
        # A lost network or a restarting server fails connection attempts: that is expected.
        expected = ("WebSocket connection", "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_REFUSED")
        if message.type == "error" and not any(e in message.text for e in expected):
            self.errors.append(message.text)

    def wait_for_quiet_network(self, *pages: Any, timeout_s: float = 10.0) -> None:
        """Until none of `pages` has an HTTP request in flight: a test that kills the server
        does it between downloads, or the browser rightly reports the one it cut."""
        deadline = time_module.monotonic() + timeout_s
        for page in pages:
            while self.in_flight[id(page)]:
                busy = [request.url for request in self.in_flight[id(page)]]
                assert time_module.monotonic() < deadline, f"still loading: {busy}"
                page.wait_for_timeout(50)  # Playwright delivers the page's events meanwhile

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


def system_upload(server: ServerProcess, data: bytes, name: str) -> dict[str, Any]:
    """The marketplace back end uploads a file (an order's product photo); its metadata."""
    response = httpx.post(
        server.http + "/api/v1/files",
        files={"file": (name, data, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token('system', 'marketplace')}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def balances(server: ServerProcess, tok: str) -> list[dict[str, Any]]:
    response = httpx.get(
        server.http + "/api/v1/balance", headers={"Authorization": f"Bearer {tok}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["balances"])


def texts_in_log(server: ServerProcess, tok: str, chat: str, text: str) -> int:
    """How many messages of `chat` in the server's log read `text` (its history, as `tok`
    may read it)."""
    response = httpx.get(
        f"{server.http}/api/v1/chats/{chat}/history?limit=100",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    return sum(1 for e in events if e["kind"] == "message" and e["text"] == text)


def rendered_seqs(page: Any) -> list[int]:
    """The seq of every event the open chat shows, in screen order."""
    values = page.eval_on_selector_all(".messages [data-seq]", "els => els.map(e => e.dataset.seq)")
    return [int(v) for v in values]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def moscow_noon(days_ago: int) -> str:
    """Noon in Moscow, `days_ago` calendar days before today there."""
    today = datetime.now(MOSCOW).date()
    return rfc3339(datetime.combine(today - timedelta(days=days_ago), time(12), tzinfo=MOSCOW))


MONTHS = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip


def moscow_day(days_from_today: int) -> str:
    """A Moscow calendar day as the page writes it: «2 сентября 2023 г.»."""
    day = datetime.now(MOSCOW).date() + timedelta(days=days_from_today)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year} г."


def hours_ago(hours: float) -> str:
    return rfc3339(datetime.now(UTC) - timedelta(hours=hours))


def register_order(
    server: ServerProcess, order_id: str, buyer: str, buyer_name: str, **fields: Any
) -> dict[str, Any]:
    """The marketplace registers an order of the demo shop (bought 20 days ago and received
    unless `fields` say otherwise)."""
    body: dict[str, Any] = {
        "id": order_id,
        "buyer": {"id": buyer, "name": buyer_name},
        "seller": {"id": SHOP, "name": SHOP_NAME},
        "article": "180077215",
        "name": "Плед флисовый",
        "brand": "Home Line",
        "price": {"value": 149000, "currency": "RUB"},
        "purchased_at": moscow_noon(20),
        "received_at": moscow_noon(16),
        "non_returnable": False,
        **fields,
    }
    response = system_post(server, "/api/v1/orders", body)
    assert response.status_code in (200, 201), response.text
    return body


def open_buyer_chat(pages: Pages, buyer: str, name: str, order: str | None = None) -> Any:
    """A buyer's page opened from a link to the demo shop (and an order), on that chat."""
    link = buyer_token(buyer, name) + f"&shop={SHOP}" + (f"&order={order}" if order else "")
    page = pages.open(link)
    page.wait_for_selector(".chat-item.active")
    page.wait_for_selector(".messages .event")
    return page


def request_return(buyer: Any, comment: str | None = None, photos: list[Any] | None = None) -> None:
    """The buyer presses «Вернуть товар» on the chat's order card and confirms."""
    card = buyer.locator(".kind-chat-opened .product-card")
    card.get_by_role("button", name="Вернуть товар").click()
    form = buyer.locator("dialog.modal[open]")
    if comment:
        form.get_by_label("Комментарий").fill(comment)
    if photos:
        form.locator("input[type=file]").set_input_files([str(p) for p in photos])
        form.locator(".picked-photo.done").nth(len(photos) - 1).wait_for()
    form.get_by_role("button", name="Отправить заявку").click()
    form.wait_for(state="detached")
