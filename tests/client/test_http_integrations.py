"""The SDK's calls for a shop's integrations, against a real server: API keys (created,
listed, used, revoked), webhooks (created, delivered to a real receiver, listed with their
deliveries, deleted) and file downloads."""

from __future__ import annotations

import asyncio
import hashlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.client import ChatError
from chatd.client.http import Delivery, HttpApi
from tests.client.conftest import UNLIMITED, serve
from tests.client.test_http_api import buyer_token, open_chat, shop_token, uid
from tests.e2e.harness import ServerProcess
from tests.e2e.webhook_receiver import Receiver

pytestmark = pytest.mark.timeout(90)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The receiver listens on loopback, which only this flag lets a webhook reach.
    process = serve(
        tmp_path_factory.mktemp("integrations") / "chatd.db",
        *UNLIMITED,
        "--webhook-allow-private",
        "--webhook-timeout",
        "1s",
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    process = Receiver()
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_a_key_is_shown_once_works_in_its_scopes_and_is_refused_once_revoked(
    server: ServerProcess,
) -> None:
    shop = uid("shop")
    async with HttpApi(server.http, shop_token(shop)) as operator:
        created = await operator.create_key("CRM", ["chat:read"])
        listed = await operator.keys()
        with pytest.raises(ChatError) as bad_scope:
            await operator.create_key("CRM", ["chat:everything"])  # type: ignore[list-item]
        async with HttpApi(server.http, created.key) as script:
            readable = await script.chats()
            with pytest.raises(ChatError) as out_of_scope:
                await script.upload("a.png", PNG, "image/png")
            with pytest.raises(ChatError) as keys_by_key:
                await script.keys()
            await operator.revoke_key(created.id)
            with pytest.raises(ChatError) as revoked:
                await script.chats()
        with pytest.raises(ChatError) as again:
            await operator.revoke_key(created.id)
        after = await operator.keys()

    assert created.key.startswith("chatd_") and created.scopes == ["chat:read"]
    assert [(k.id, k.name, k.scopes) for k in listed] == [(created.id, "CRM", ["chat:read"])]
    assert (bad_scope.value.code, bad_scope.value.status) == ("bad_frame", 400)
    assert readable.chats == []
    assert out_of_scope.value.status == 403 and out_of_scope.value.details == {
        "scope": "chat:write"
    }
    assert keys_by_key.value.status == 403
    assert (revoked.value.code, revoked.value.status) == ("unauthorized", 401)
    assert (again.value.code, again.value.status) == ("not_found", 404)
    assert after == []


async def test_a_webhook_is_delivered_listed_with_its_attempts_and_deleted(
    server: ServerProcess, receiver: Receiver
) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(server, buyer, shop)
    async with HttpApi(server.http, shop_token(shop)) as api:
        created = await api.create_webhook(receiver.url(), ["message"], description="CRM")
        listed = await api.webhooks()
        async with HttpApi(server.http, buyer_token(buyer)) as buyer_api:
            await buyer_api.send(chat, "где заказ?")

        attempts: list[Delivery] = []
        async with asyncio.timeout(20):
            while not attempts:
                attempts = await api.deliveries(created.id, limit=10)
                await asyncio.sleep(0.05)
        await api.delete_webhook(created.id)
        after = await api.webhooks()
        with pytest.raises(ChatError) as gone:
            await api.deliveries(created.id)
        with pytest.raises(ChatError) as malformed:
            await api.create_webhook("ftp://example.com/hook")

    assert created.secret.startswith("whsec_") and created.events == ["message"]
    assert [(w.id, w.url, w.description) for w in listed] == [(created.id, receiver.url(), "CRM")]
    [attempt] = attempts
    assert (attempt.webhook_id, attempt.event, attempt.chat, attempt.seq) == (
        receiver.snapshot()[0].webhook_id,
        "message",
        chat,
        2,
    )
    assert (attempt.status, attempt.response_status, attempt.attempt) == ("delivered", 200, 1)
    assert after == []
    assert (gone.value.code, gone.value.status) == ("not_found", 404)
    assert malformed.value.status == 400


async def test_a_file_is_downloaded_by_who_may_see_it(server: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    chat = await open_chat(server, buyer, shop)
    async with HttpApi(server.http, buyer_token(buyer)) as api:
        uploaded = await api.upload("чек.jpg", PNG, "image/png")
        await api.send(chat, "чек", [uploaded.id])
    async with HttpApi(server.http, shop_token(shop)) as api:
        downloaded = await api.download(uploaded.id)
    async with HttpApi(server.http, shop_token(uid("shop"))) as stranger:
        with pytest.raises(ChatError) as refused:
            await stranger.download(uploaded.id)

    assert downloaded.content == PNG
    assert hashlib.sha256(downloaded.content).hexdigest() == uploaded.sha256
    # The name follows the sniffed type, and the Cyrillic survives the header.
    assert (downloaded.mime, downloaded.name) == ("image/png", "чек.png")
    assert (refused.value.code, refused.value.status) == ("not_found", 404)


def test_the_package_ships_py_typed() -> None:
    # PEP 561: type checkers read an installed package's annotations only beside the marker,
    # and setuptools puts a non-Python file in the wheel only when package-data names it.
    root = Path(__file__).resolve().parents[2]
    with (root / "pyproject.toml").open("rb") as file:
        package_data = tomllib.load(file)["tool"]["setuptools"]["package-data"]
    for package in ("chatd", "protocol"):
        assert (root / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]
