"""The HTTP side of chatd (PROTOCOL.md 8): what the marketplace back end (`system`) posts,
and what buyers and shops read besides the chat.

>>> import asyncio
>>> async def refund_arrives(base: str, system_token: str, order: OrderCard) -> None:
...     async with HttpApi(base, system_token) as api:
...         await api.register_order(order)
...         await api.logistics(order.id, "handed_in")
...         await api.logistics(order.id, "arrived")
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import msgspec

from chatd.client.errors import ChatError
from protocol.events import GoodsState, Money, OrderCard

T = TypeVar("T")


class LogisticsDone(msgspec.Struct, frozen=True, kw_only=True):
    """The event a logistics report appended (`refund.issued` may follow `arrived`)."""

    chat: str
    seq: int
    cursor: str
    claim: str | None = None


class SalesRow(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    order: str
    article: str
    name: str
    amount: Money
    reason: str


class FileInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int
    sha256: str


class _Balances(msgspec.Struct, frozen=True):
    balances: list[Money]


class _Rows(msgspec.Struct, frozen=True):
    rows: list[SalesRow]


class _ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str = ""
    details: dict[str, Any] | None = None


class _ErrorReply(msgspec.Struct, frozen=True):
    error: _ErrorBody


def http_base(ws_url: str) -> str:
    """The HTTP base of a WebSocket URL: ws://host:port/ws -> http://host:port.

    >>> http_base("wss://chat.example/ws")
    'https://chat.example'
    """
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path[: -len("/ws")] if parts.path.endswith("/ws") else parts.path
    return urlunsplit((scheme, parts.netloc, path.rstrip("/"), "", ""))


class HttpApi:
    """The HTTP API with one user's Bearer token. Refusals raise `ChatError` with the wire
    code and `status`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    async def __aenter__(self) -> HttpApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register_order(self, order: OrderCard) -> OrderCard:
        """Registers an order (system). The same body again is fine; another body under the
        same id is `conflict`."""
        response = await self._http.post(
            "/api/v1/orders",
            content=msgspec.json.encode(order),
            headers={"Content-Type": "application/json"},
        )
        return _decode(response, OrderCard)

    async def logistics(
        self, order: str, event: GoodsState, defect: bool | None = None
    ) -> LogisticsDone:
        """Reports the returned goods: `handed_in`, `arrived` (refunds), `inspected`."""
        body: dict[str, Any] = {"event": event}
        if defect is not None:
            body["defect"] = defect
        path = f"/api/v1/orders/{quote(order, safe='')}/logistics"
        response = await self._http.post(path, json=body)
        return _decode(response, LogisticsDone)

    async def balance(self) -> list[Money]:
        """The user's balances, one per currency (buyer, seller)."""
        return _decode(await self._http.get("/api/v1/balance"), _Balances).balances

    async def sales_report(self) -> list[SalesRow]:
        """The shop's ledger rows; a refund's reason is «Возврат» (seller)."""
        return _decode(await self._http.get("/api/v1/reports/sales"), _Rows).rows

    async def upload(self, name: str, content: bytes, mime: str) -> FileInfo:
        """Uploads a JPEG, PNG or PDF to send as an attachment (buyer, seller)."""
        response = await self._http.post("/api/v1/files", files={"file": (name, content, mime)})
        return _decode(response, FileInfo)

    async def get_json(self, path: str) -> Any:
        """Any GET of the API, as plain JSON."""
        response = await self._http.get(path)
        _raise_for_error(response)
        return msgspec.json.decode(response.content)

    async def healthy(self) -> bool:
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False


def _decode(response: httpx.Response, kind: type[T]) -> T:
    _raise_for_error(response)
    return msgspec.json.decode(response.content, type=kind)


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            error = msgspec.json.decode(response.content, type=_ErrorReply).error
        except msgspec.MsgspecError:
            raise ChatError(
                "internal",
                f"HTTP {response.status_code}: {response.text[:200]}",
                status=response.status_code,
            ) from None
        raise ChatError(error.code, error.message, error.details, status=response.status_code)
