"""The HTTP API's errors (docs/protocol.md sections 8 and 9): bodies `{"error": {"code",
"message", "details"?}}` with a fitting status; order registration is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    ServerProcess,
    module_server,
    order_body,
    register_order,
    token,
    uid,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "http") as process:
        yield process


def post_order(srv: ServerProcess, body: Any, auth: str | None) -> httpx.Response:
    headers = {"Authorization": auth} if auth is not None else {}
    url = srv.http + "/api/v1/orders"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers=headers, timeout=10)
    return httpx.post(url, json=body, headers=headers, timeout=10)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error  # type: ignore[no-any-return]


def system() -> str:
    return "Bearer " + token("system", "marketplace")


def an_order() -> dict[str, Any]:
    return order_body(uid("order"), uid("buyer"), uid("shop"))


@pytest.mark.parametrize(
    "auth",
    [None, "", "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer {expired}"],
    ids=["none", "empty", "bearer_only", "garbage", "basic", "expired"],
)
def test_order_without_a_valid_token_is_401(srv: ServerProcess, auth: str | None) -> None:
    if auth is not None:
        auth = auth.format(expired=token("system", "marketplace", ttl=-60))
    response = post_order(srv, an_order(), auth)
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "role",
    [("buyer", None), ("seller", "shop-x"), ("manager", None)],
    ids=["buyer", "seller", "manager"],
)
def test_order_from_another_role_is_403(srv: ServerProcess, role: tuple[str, str | None]) -> None:
    name, shop = role
    response = post_order(srv, an_order(), "Bearer " + token(name, uid(name), seller=shop))
    assert_error(response, 403, "forbidden")


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


INVALID_BODIES: dict[str, Any] = {
    "not_json": b"{not json",
    "array": [],
    "empty_object": {},
    "without_id": _without(order_body("o-x", "b-x", "s-x"), "id"),
    "without_price": _without(order_body("o-x", "b-x", "s-x"), "price"),
    "price_not_money": order_body("o-x", "b-x", "s-x", price=1186),
    "price_value_fraction": order_body(
        "o-x", "b-x", "s-x", price={"value": 1186.5, "currency": "RUB"}
    ),
    "buyer_not_object": {**order_body("o-x", "b-x", "s-x"), "buyer": "b-x"},
    "received_at_not_a_time": order_body("o-x", "b-x", "s-x", received_at="вчера"),
    "non_returnable_not_bool": order_body("o-x", "b-x", "s-x", non_returnable="no"),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_order_body_is_400_bad_frame(srv: ServerProcess, body: Any) -> None:
    response = post_order(srv, body, system())
    assert_error(response, 400, "bad_frame")


def test_invalid_body_registers_nothing(srv: ServerProcess) -> None:
    body = order_body(uid("order"), uid("buyer"), uid("shop"))
    broken = {**body, "price": "1186 руб"}
    assert_error(post_order(srv, broken, system()), 400, "bad_frame")
    assert register_order(srv, body).status_code == 201


def test_same_body_twice_is_201_then_200(srv: ServerProcess) -> None:
    body = an_order()
    first = register_order(srv, body)
    assert first.status_code == 201, first.text
    again = register_order(srv, body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()


def test_another_body_under_the_same_id_is_409(srv: ServerProcess) -> None:
    body = an_order()
    assert register_order(srv, body).status_code == 201
    changed = {**body, "price": {"value": 99900, "currency": "RUB"}}
    assert_error(register_order(srv, changed), 409, "conflict")
    # The first body still stands.
    assert register_order(srv, body).status_code == 200


def test_healthz(srv: ServerProcess) -> None:
    response = httpx.get(srv.http + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_from_loopback(srv: ServerProcess) -> None:
    response = httpx.get(srv.http + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "chatd_connections" in response.text


def test_unknown_path_is_404_not_found(srv: ServerProcess) -> None:
    response = httpx.get(srv.http + "/api/v1/nothing-here", timeout=10)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("path", "roles"),
    [("/api/v1/balance", ["manager", "system"]), ("/api/v1/reports/sales", ["buyer", "manager"])],
    ids=["balance", "sales_report"],
)
def test_read_endpoints_refuse_other_roles(srv: ServerProcess, path: str, roles: list[str]) -> None:
    assert_error(httpx.get(srv.http + path, timeout=10), 401, "unauthorized")
    for role in roles:
        headers = {"Authorization": "Bearer " + token(role, uid(role))}
        assert_error(httpx.get(srv.http + path, headers=headers, timeout=10), 403, "forbidden")


def test_logistics_errors(srv: ServerProcess) -> None:
    url = srv.http + f"/api/v1/orders/{uid('order')}/logistics"
    assert_error(httpx.post(url, json={"event": "arrived"}, timeout=10), 401, "unauthorized")
    buyer = {"Authorization": "Bearer " + token("buyer", uid("buyer"))}
    assert_error(
        httpx.post(url, json={"event": "arrived"}, headers=buyer, timeout=10), 403, "forbidden"
    )
    sys_auth = {"Authorization": system()}
    assert_error(
        httpx.post(url, json={"event": "teleported"}, headers=sys_auth, timeout=10),
        400,
        "bad_frame",
    )
    assert_error(
        httpx.post(url, json={"event": "arrived"}, headers=sys_auth, timeout=10), 404, "not_found"
    )
