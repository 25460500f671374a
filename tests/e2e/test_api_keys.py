"""A shop's API keys against a real server (docs/protocol.md section 12, "Credentials"): created
by an operator and shown once, listed without the key, acting as the shop with
`author.operator` naming the key, held to their scopes, and revoked at once: the next request
is 401 and the key's open sockets close with 4001."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.api_keys import (
    bearer,
    closed_within,
    create_key,
    raw_socket,
    revoke_key,
    upload,
)
from tests.e2e.harness import (
    ServerProcess,
    chat_events,
    connect,
    module_server,
    order_body,
    register_order,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)

EVERY_SCOPE = ("chat:read", "chat:write", "returns:write")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "keys") as process:
        yield process


def operator_of(shop: str) -> str:
    return token("seller", uid("op"), "Анна", seller=shop)


def keys_of(srv: ServerProcess, credential: str) -> httpx.Response:
    return httpx.get(srv.http + "/api/v1/keys", headers=bearer(credential), timeout=10)


# ---- managing keys ----------------------------------------------------------------------------


def test_a_key_is_shown_once_and_listed_without_itself(srv: ServerProcess) -> None:
    shop = uid("shop")
    operator = operator_of(shop)
    created = create_key(srv, operator, "  CRM «Север» ", ("returns:write", "chat:read"))
    assert set(created) == {"id", "key", "name", "scopes", "created_at"}
    assert created["key"].startswith("chatd_") and len(created["key"]) == 49
    assert created["name"] == "CRM «Север»"
    assert created["scopes"] == ["chat:read", "returns:write"]
    assert created["created_at"].endswith("Z")

    # Another operator of the shop sees it, without the key; another shop does not.
    listed = keys_of(srv, operator_of(shop))
    assert listed.status_code == 200, listed.text
    shown = {k: v for k, v in created.items() if k != "key"}
    assert listed.json() == {"keys": [shown]}
    assert created["key"] not in listed.text
    assert keys_of(srv, operator_of(uid("shop"))).json() == {"keys": []}


def test_only_an_operators_token_manages_keys(srv: ServerProcess) -> None:
    shop = uid("shop")
    key = create_key(srv, operator_of(shop), "бот", EVERY_SCOPE)["key"]
    for credential in (key, token("buyer", uid("buyer")), token("manager", uid("m"))):
        listed = keys_of(srv, credential)
        assert listed.status_code == 403, listed.text
        assert listed.json()["error"]["code"] == "forbidden"
        made = httpx.post(
            srv.http + "/api/v1/keys",
            json={"name": "wider", "scopes": list(EVERY_SCOPE)},
            headers=bearer(credential),
            timeout=10,
        )
        assert made.status_code == 403, made.text
    assert httpx.get(srv.http + "/api/v1/keys", timeout=10).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["chat:admin"]},
        {"name": "x", "scopes": ["chat:read", "chat:read"]},
        {"name": "   ", "scopes": ["chat:read"]},
        {"name": "x" * 101, "scopes": ["chat:read"]},
        {"scopes": ["chat:read"]},
        {"name": "x", "scopes": "chat:read"},
        "not json",
    ],
)
def test_a_key_that_cannot_be_is_400(srv: ServerProcess, body: object) -> None:
    operator = operator_of(uid("shop"))
    sent = (
        {"content": body, "headers": {**bearer(operator), "Content-Type": "application/json"}}
        if isinstance(body, str)
        else {"json": body, "headers": bearer(operator)}
    )
    response = httpx.post(srv.http + "/api/v1/keys", timeout=10, **sent)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_frame"
    assert keys_of(srv, operator).json() == {"keys": []}


# ---- a key at work ----------------------------------------------------------------------------


async def test_a_keys_messages_carry_its_id_and_name_as_the_operator(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    order = order_body(uid("order"), buyer_id, shop)
    assert register_order(srv, order).status_code == 201
    created = create_key(srv, operator_of(shop), "Бот ответов", ("chat:read", "chat:write"))
    async with (
        connect(srv, token("buyer", buyer_id, "Люда")) as buyer,
        connect(srv, created["key"]) as bot,
    ):
        assert bot.welcome["user"] == {
            "id": created["id"],
            "role": "seller",
            "name": "Бот ответов",
            "seller": shop,
        }
        chat = (await buyer.request({"type": "open", "seller": shop, "order": order["id"]}))["chat"]
        await buyer.request({"type": "send", "chat": chat, "text": "Добрый день"})
        await chat_events(bot, chat, 2)
        acked = await bot.request({"type": "send", "chat": chat, "text": "Здравствуйте!"})
        assert acked["type"] == "ack", acked
        events = await chat_events(buyer, chat, 3)
        author = events[-1]["author"]
        assert author["role"] == "seller" and author["id"] == shop
        assert author["operator"] == {"id": created["id"], "name": "Бот ответов"}
        # The shop's operators see the same author in the history.
        page = await bot.request({"type": "history", "chat": chat})
        assert page["events"][-1]["author"]["operator"] == author["operator"]


async def test_a_key_outside_its_scopes_is_forbidden(srv: ServerProcess) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    operator = operator_of(shop)
    reader = create_key(srv, operator, "читатель", ("chat:read",))["key"]
    writer = create_key(srv, operator, "писатель", ("chat:write",))["key"]
    async with (
        connect(srv, token("buyer", buyer_id)) as buyer,
        connect(srv, reader) as reading,
    ):
        chat = (await buyer.request({"type": "open", "seller": shop}))["chat"]
        assert (await reading.request({"type": "history", "chat": chat}))["type"] == "history"
        for frame in (
            {"type": "send", "chat": chat, "text": "нельзя"},
            {"type": "read", "chat": chat, "seq": 1},
            {
                "type": "return.approve",
                "claim": "c-x",
                "mode": "pvz",
                "amount": {"value": 1, "currency": "RUB"},
            },
            {"type": "return.initiate", "chat": chat, "order": "o-x"},
        ):
            refused = await reading.request(frame)
            assert refused["type"] == "error" and refused["code"] == "forbidden", refused
    # Over HTTP: 403 with the scope it lacks; what no scope names is 403 for every key.
    refused_upload = upload(srv, reader)
    assert refused_upload.status_code == 403, refused_upload.text
    assert refused_upload.json()["error"] == {
        "code": "forbidden",
        "message": "this API key lacks the scope chat:write",
        "details": {"scope": "chat:write"},
    }
    uploaded = upload(srv, writer)
    assert uploaded.status_code == 201, uploaded.text
    download = f"{srv.http}/api/v1/files/{uploaded.json()['id']}"
    assert httpx.get(download, headers=bearer(writer), timeout=10).status_code == 403
    assert httpx.get(download, headers=bearer(reader), timeout=10).status_code == 200
    every = create_key(srv, operator, "всё", EVERY_SCOPE)["key"]
    for path in ("/api/v1/balance", "/api/v1/reports/sales"):
        response = httpx.get(srv.http + path, headers=bearer(every), timeout=10)
        assert response.status_code == 403, (path, response.text)
        assert httpx.get(srv.http + path, headers=bearer(operator), timeout=10).status_code == 200
    # A socket carries every event of the shop: a key without chat:read opens none.
    async with raw_socket(srv, writer) as (ws, first):
        assert first["code"] == "unauthorized" and "chat:read" in first["message"]
        assert (await closed_within(ws, 5))[0] == 4001


# ---- revoking ---------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused_at_once_and_its_sockets_close_with_4001(
    srv: ServerProcess,
) -> None:
    shop = uid("shop")
    operator = operator_of(shop)
    created = create_key(srv, operator, "скрипт", EVERY_SCOPE)
    key = created["key"]
    spare = create_key(srv, operator, "другой", EVERY_SCOPE)["key"]
    assert upload(srv, key).status_code == 201
    async with (
        raw_socket(srv, key) as (first_ws, first_welcome),
        raw_socket(srv, key) as (second_ws, second_welcome),
        connect(srv, spare) as other_key,
        connect(srv, operator) as anna,
    ):
        assert first_welcome["type"] == second_welcome["type"] == "welcome"
        revoked = revoke_key(srv, operator, created["id"])
        assert revoked.status_code == 204, revoked.text
        # The very next request with it, no wait.
        refused = upload(srv, key)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
        for ws in (first_ws, second_ws):
            code, took = await closed_within(ws, 5)
            assert code == 4001
            assert took < 1.0  # by the hub at once, not by the store's re-reading later
        # The shop's other key and its operators stay.
        assert (await other_key.request({"type": "ping"}))["type"] == "pong"
        assert (await anna.request({"type": "ping"}))["type"] == "pong"
        assert upload(srv, spare).status_code == 201
    async with raw_socket(srv, key) as (ws, answer):
        assert answer["type"] == "error" and answer["code"] == "unauthorized", answer
        assert (await closed_within(ws, 5))[0] == 4001
    assert created["id"] not in keys_of(srv, operator).text
    # Revoked is gone: a second DELETE finds nothing.
    assert revoke_key(srv, operator, created["id"]).status_code == 404


async def test_another_shop_cannot_revoke_a_key(srv: ServerProcess) -> None:
    shop = uid("shop")
    created = create_key(srv, operator_of(shop), "бот", ("chat:read",))
    intruder = operator_of(uid("shop"))
    response = revoke_key(srv, intruder, created["id"])
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    async with connect(srv, created["key"]) as bot:
        assert (await bot.request({"type": "ping"}))["type"] == "pong"


async def test_a_key_that_was_never_issued_is_refused_on_both_doors(srv: ServerProcess) -> None:
    for credential in ("chatd_" + "A" * 43, "chatd_short"):
        response = upload(srv, credential)
        assert response.status_code == 401, response.text
        async with raw_socket(srv, credential) as (ws, answer):
            assert answer["code"] == "unauthorized", answer
            assert (await closed_within(ws, 5))[0] == 4001
