"""What a running server answers matches what its own /openapi.json says, route by route: the
successes and the errors, for every role. /asyncapi.json and the /docs/ page are served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.e2e.harness import (
    ServerProcess,
    connect,
    module_server,
    open_claim,
    order_body,
    register_order,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "openapi") as process:
        yield process


@pytest.fixture(scope="module")
def document(srv: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(srv.http + "/openapi.json", timeout=10)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def check(document: dict[str, Any], path: str, answer: httpx.Response) -> None:
    """`answer` is one of the statuses the document gives for `path`, and its body matches."""
    method = answer.request.method.lower()
    responses = document["paths"][path][method]["responses"]
    status = str(answer.status_code)
    assert status in responses, f"{method} {path} answered {status}: {answer.text[:300]}"
    content = responses[status].get("content", {}).get("application/json")
    if content is None:
        return
    schema = {**content["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(answer.json())


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def a_claim(srv: ServerProcess, buyer: str, buyer_id: str, shop: str) -> tuple[str, str]:
    async with connect(srv, buyer) as socket:
        return await open_claim(srv, socket, buyer_id, shop, uid("order"))


def test_answers_match_the_document(srv: ServerProcess, document: dict[str, Any]) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    buyer, seller = token("buyer", buyer_id), token("seller", uid("op"), "Анна", seller=shop)
    system = token("system", "marketplace")
    http = httpx.Client(base_url=srv.http, timeout=10)
    chat, claim = asyncio.run(a_claim(srv, buyer, buyer_id, shop))

    calls: list[tuple[str, httpx.Response]] = [
        ("/healthz", http.get("/healthz")),
        ("/livez", http.get("/livez")),
        ("/readyz", http.get("/readyz")),
        ("/api/v1/chats", http.get("/api/v1/chats", headers=auth(buyer))),
        ("/api/v1/chats", http.get("/api/v1/chats", headers=auth(seller), params={"limit": 1})),
        ("/api/v1/chats", http.get("/api/v1/chats")),  # 401
        (
            "/api/v1/chats/{chat}/history",
            http.get(f"/api/v1/chats/{chat}/history", headers=auth(seller)),
        ),
        (
            "/api/v1/chats/{chat}/history",
            http.get("/api/v1/chats/no-such-chat/history", headers=auth(buyer)),
        ),
        (
            "/api/v1/chats/{chat}/messages",
            http.post(
                f"/api/v1/chats/{chat}/messages",
                headers={**auth(buyer), "Idempotency-Key": "k1"},
                json={"text": "Здравствуйте!"},
            ),
        ),
        (
            "/api/v1/chats/{chat}/messages",
            http.post(
                f"/api/v1/chats/{chat}/messages",
                headers={**auth(buyer), "Idempotency-Key": "k1"},
                json={"text": "Здравствуйте!"},
            ),
        ),
        (
            "/api/v1/chats/{chat}/messages",
            http.post(f"/api/v1/chats/{chat}/messages", headers=auth(buyer), json={"text": 5}),
        ),
        ("/api/v1/events", http.get("/api/v1/events", headers=auth(seller))),
        (
            "/api/v1/events",
            http.get("/api/v1/events", headers=auth(seller), params={"cursor": "x"}),
        ),
        ("/api/v1/claims", http.get("/api/v1/claims", headers=auth(seller))),
        (
            "/api/v1/claims/{claim}/actions",
            http.post(
                f"/api/v1/claims/{claim}/actions",
                headers=auth(seller),
                json={"action": "reject", "reason": "Следы носки"},
            ),
        ),
        (
            "/api/v1/claims/{claim}/actions",
            http.post(
                f"/api/v1/claims/{claim}/actions", headers=auth(seller), json={"action": "reject"}
            ),
        ),  # no longer possible: 409
        ("/api/v1/balance", http.get("/api/v1/balance", headers=auth(buyer))),
        ("/api/v1/reports/sales", http.get("/api/v1/reports/sales", headers=auth(seller))),
        ("/api/v1/reports/sales", http.get("/api/v1/reports/sales", headers=auth(buyer))),  # 403
        (
            "/api/v1/files",
            http.post(
                "/api/v1/files", headers=auth(buyer), files={"file": ("a.jpg", JPEG, "image/jpeg")}
            ),
        ),
        (
            "/api/v1/orders",
            http.post(
                "/api/v1/orders",
                headers=auth(system),
                json=order_body(uid("order"), buyer_id, shop),
            ),
        ),
        ("/api/v1/orders", http.post("/api/v1/orders", headers=auth(system), json={"id": 1})),
        ("/api/v1/keys", http.get("/api/v1/keys", headers=auth(seller))),
        (
            "/api/v1/keys",
            http.post(
                "/api/v1/keys", headers=auth(seller), json={"name": "CRM", "scopes": ["chat:read"]}
            ),
        ),
    ]
    key = calls[-1][1].json()["id"]
    calls.append(("/api/v1/keys/{key}", http.delete(f"/api/v1/keys/{key}", headers=auth(seller))))
    calls.append(("/api/v1/keys/{key}", http.delete(f"/api/v1/keys/{key}", headers=auth(seller))))
    register_order(srv, order_body(uid("order"), buyer_id, shop))
    for path, answer in calls:
        check(document, path, answer)
    statuses = {answer.status_code for _, answer in calls}
    assert {200, 201, 204, 400, 401, 403, 404, 409} <= statuses


def test_the_other_documents_and_the_page_are_served(srv: ServerProcess) -> None:
    asyncapi = httpx.get(srv.http + "/asyncapi.json", timeout=10)
    assert asyncapi.status_code == 200 and asyncapi.json()["asyncapi"] == "3.0.0"
    page = httpx.get(srv.http + "/docs/", timeout=10)
    assert page.status_code == 200 and "docs.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(srv.http + "/docs/docs.js", timeout=10)
    assert script.status_code == 200 and "openapi.json" in script.text


def test_the_wb_shapes_match_the_document(srv: ServerProcess, document: dict[str, Any]) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    operator = token("seller", uid("op"), "Анна", seller=shop)
    created = httpx.post(
        srv.http + "/api/v1/keys",
        headers=auth(operator),
        json={"name": "WB bot", "scopes": ["chat:read", "chat:write"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    http = httpx.Client(
        base_url=srv.http, headers={"Authorization": created.json()["key"]}, timeout=10
    )
    asyncio.run(a_claim(srv, token("buyer", buyer_id), buyer_id, shop))
    chats = http.get("/api/v1/seller/chats")
    sign = chats.json()["result"][0]["replySign"]
    sent = http.post(
        "/api/v1/seller/message",
        data={"replySign": sign, "message": "Пришлите фото"},
        files={"file": ("a.jpg", JPEG, "image/jpeg")},
    )
    events = http.get("/api/v1/seller/events", params={"limit": 2})
    calls: list[tuple[str, httpx.Response]] = [
        ("/api/v1/seller/chats", chats),
        ("/api/v1/seller/chats", httpx.get(srv.http + "/api/v1/seller/chats")),  # 401
        ("/api/v1/seller/message", sent),
        (
            "/api/v1/seller/message",
            http.post(
                "/api/v1/seller/message",
                data={"replySign": "forged", "message": "x"},
                files={"file": ("a.jpg", JPEG, "image/jpeg")},
            ),
        ),  # 400
        ("/api/v1/seller/events", events),
        ("/api/v1/seller/events", http.get("/api/v1/seller/events", params={"next": "1"})),
        ("/api/v1/seller/events", http.get("/api/v1/seller/events", params={"next": "x"})),
        ("/api/v1/seller/download/{id}", http.get("/api/v1/seller/download/no-such-file")),
    ]
    # From the Unix time 0: every event, the reply with its file last.
    attached = http.get("/api/v1/seller/events", params={"next": "0"}).json()
    [image] = attached["result"]["events"][-1]["message"]["attachments"]["images"]
    calls.append(
        ("/api/v1/seller/download/{id}", http.get(f"/api/v1/seller/download/{image['downloadID']}"))
    )
    for path, answer in calls:
        check(document, path, answer)
    statuses = {answer.status_code for _, answer in calls}
    assert {200, 400, 401, 404} <= statuses


def test_the_templates_match_the_document(srv: ServerProcess, document: dict[str, Any]) -> None:
    seller = token("seller", uid("op"), "Анна", seller=uid("shop"))
    http = httpx.Client(base_url=srv.http, headers=auth(seller), timeout=10)
    body = {"shortcut": "delivery", "title": "Доставка", "text": "Отправим завтра."}
    made = http.post("/api/v1/templates", json=body)
    one = f"/api/v1/templates/{made.json()['id']}"
    calls: list[tuple[str, httpx.Response]] = [
        ("/api/v1/templates", http.get("/api/v1/templates")),
        ("/api/v1/templates", made),
        ("/api/v1/templates", http.post("/api/v1/templates", json=body)),  # 409
        ("/api/v1/templates", http.post("/api/v1/templates", json={**body, "shortcut": "A"})),
        (
            "/api/v1/templates",
            http.post("/api/v1/templates", json={**body, "text": "Звоните 89161234567"}),
        ),  # 422
        ("/api/v1/templates", httpx.get(srv.http + "/api/v1/templates")),  # 401
        (
            "/api/v1/templates",
            httpx.get(srv.http + "/api/v1/templates", headers=auth(token("buyer", uid("b")))),
        ),  # 403
        ("/api/v1/templates/{template}", http.put(one, json={**body, "title": "Отправка"})),
        ("/api/v1/templates/{template}", http.delete(one)),
        ("/api/v1/templates/{template}", http.delete(one)),  # 404
    ]
    for path, answer in calls:
        check(document, path, answer)
    statuses = {answer.status_code for _, answer in calls}
    assert {200, 201, 204, 400, 401, 403, 404, 409, 422} <= statuses
