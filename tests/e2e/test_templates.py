"""A shop's canned replies over real HTTP (docs/protocol.md, "Canned replies"): the defaults
at a shop's first listing, create, replace and delete, shortcuts unique per shop, the
contacts filter at save, clear refusals, and who may touch them (another shop's are 404)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.api_keys import bearer, create_key
from tests.e2e.harness import ServerProcess, module_server, token, uid

pytestmark = pytest.mark.timeout(60)

ROUTE = "/api/v1/templates"
DEFAULT_SHORTCUTS = ["check", "hello", "return", "size", "support", "thanks"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "templates") as process:
        yield process


def operator(shop: str, name: str = "Анна") -> str:
    return token("seller", uid("op"), name, seller=shop)


def call(
    srv: ServerProcess, method: str, credential: str | None, path: str = ROUTE, **kwargs: Any
) -> httpx.Response:
    headers = bearer(credential) if credential is not None else {}
    return httpx.request(method, srv.http + path, headers=headers, timeout=10, **kwargs)


def listed(srv: ServerProcess, credential: str) -> list[dict[str, Any]]:
    answer = call(srv, "GET", credential)
    assert answer.status_code == 200, answer.text
    return answer.json()["templates"]  # type: ignore[no-any-return]


def created(srv: ServerProcess, credential: str, **fields: str) -> dict[str, Any]:
    body = {"shortcut": "delivery", "title": "Сроки доставки", "text": "Отправим завтра."}
    answer = call(srv, "POST", credential, json={**body, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_shop_finds_the_defaults_at_its_first_listing_and_only_then(srv: ServerProcess) -> None:
    shop = uid("shop")
    first = listed(srv, operator(shop))
    assert [t["shortcut"] for t in first] == DEFAULT_SHORTCUTS
    assert all(set(t) == {"id", "shortcut", "title", "text"} for t in first)
    support = next(t for t in first if t["shortcut"] == "support")
    # The portal's hint: questions about the platform go to the marketplace's support.
    assert "поддержку Wildberries" in support["text"]
    # Shared by the shop: another operator sees the same ones, made once.
    assert listed(srv, operator(shop, "Олег")) == first
    for template in first:
        assert call(srv, "DELETE", operator(shop), f"{ROUTE}/{template['id']}").status_code == 204
    assert listed(srv, operator(shop)) == []  # a shop that deleted them does not get them back


def test_a_shop_that_wrote_first_gets_no_defaults(srv: ServerProcess) -> None:
    anna = operator(uid("shop"))
    mine = created(srv, anna)
    assert listed(srv, anna) == [mine]


def test_create_replace_and_delete(srv: ServerProcess) -> None:
    anna = operator(uid("shop"))
    listed(srv, anna)
    made = created(srv, anna, title="  Сроки доставки  ", text="  Отправим завтра утром.  ")
    assert made == {
        "id": made["id"],
        "shortcut": "delivery",
        "title": "Сроки доставки",
        "text": "Отправим завтра утром.",
    }
    assert made in listed(srv, anna)
    change = {"shortcut": "ship", "title": "Отправка", "text": "Отправили сегодня."}
    replaced = call(srv, "PUT", anna, f"{ROUTE}/{made['id']}", json=change)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"id": made["id"], **change}
    shortcuts = [t["shortcut"] for t in listed(srv, anna)]
    assert "ship" in shortcuts and "delivery" not in shortcuts
    assert shortcuts == sorted(shortcuts)
    assert call(srv, "DELETE", anna, f"{ROUTE}/{made['id']}").status_code == 204
    assert made["id"] not in [t["id"] for t in listed(srv, anna)]
    again = call(srv, "DELETE", anna, f"{ROUTE}/{made['id']}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_found")
    gone = call(srv, "PUT", anna, f"{ROUTE}/{made['id']}", json=change)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "not_found")


def test_a_shortcut_is_the_shops_once(srv: ServerProcess) -> None:
    anna = operator(uid("shop"))
    first = created(srv, anna, shortcut="promo")
    twice = call(srv, "POST", anna, json={"shortcut": "promo", "title": "Ещё", "text": "Текст"})
    assert twice.status_code == 409, twice.text
    assert twice.json()["error"]["code"] == "conflict"
    assert twice.json()["error"]["details"] == {"shortcut": "promo"}
    other = created(srv, anna, shortcut="other")
    renamed = call(
        srv, "PUT", anna, f"{ROUTE}/{other['id']}",
        json={"shortcut": "promo", "title": "Т", "text": "Т"},
    )  # fmt: skip
    assert renamed.status_code == 409, renamed.text
    assert [t for t in listed(srv, anna) if t["shortcut"] == "promo"] == [first]
    # Another shop may have its own.
    assert created(srv, operator(uid("shop")), shortcut="promo")["shortcut"] == "promo"


def test_contacts_are_refused_at_save_with_the_findings(srv: ServerProcess) -> None:
    anna = operator(uid("shop"))
    text = "Пишите в телеграм @shop_help или звоните 8 916 123-45-67"
    body = {"shortcut": "contacts", "title": "Контакты", "text": text}
    refused = call(srv, "POST", anna, json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "contacts_forbidden"
    assert error["details"]["field"] == "text"
    found = [text[start:end] for start, end in error["details"]["spans"]]
    assert any("@shop_help" in piece for piece in found), found
    assert any("916" in piece for piece in found), found
    made = created(srv, anna)
    replaced = call(srv, "PUT", anna, f"{ROUTE}/{made['id']}", json=body)
    assert replaced.status_code == 422, replaced.text
    assert [t["text"] for t in listed(srv, anna)] == [made["text"]]
    # Shortcuts and titles are the operators' own labels: only the text is read.
    assert created(srv, anna, shortcut="tg", title="Про телеграм")["title"] == "Про телеграм"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"shortcut": "Hello", "title": "Т", "text": "Т"}, "shortcut"),
        ({"shortcut": "", "title": "Т", "text": "Т"}, "shortcut"),
        ({"shortcut": "a" * 33, "title": "Т", "text": "Т"}, "shortcut"),
        ({"shortcut": "при", "title": "Т", "text": "Т"}, "shortcut"),
        ({"shortcut": "ok", "title": "   ", "text": "Т"}, "title"),
        ({"shortcut": "ok", "title": "т" * 101, "text": "Т"}, "title"),
        ({"shortcut": "ok", "title": "Т", "text": ""}, "text"),
        ({"shortcut": "ok", "title": "Т", "text": "т" * 1001}, "text"),
        ({"shortcut": "ok", "title": "Т"}, "text"),
        ({"shortcut": "ok", "title": "Т", "text": 5}, "text"),
        (["shortcut"], "object"),
    ],
)
def test_a_template_that_cannot_be_is_400_and_says_why(
    srv: ServerProcess, body: object, names: str
) -> None:
    answer = call(srv, "POST", operator(uid("shop")), json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_frame"
    assert names in error["message"], error


def test_a_body_that_is_no_json_is_400(srv: ServerProcess) -> None:
    answer = call(srv, "POST", operator(uid("shop")), content=b"shortcut=hello")
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_frame")


def test_another_shops_templates_are_not_found(srv: ServerProcess) -> None:
    mine, theirs = operator(uid("shop")), operator(uid("shop"))
    made = created(srv, mine)
    assert made["id"] not in [t["id"] for t in listed(srv, theirs)]
    change = {"shortcut": "x", "title": "Чужой", "text": "Чужой текст"}
    for method, kwargs in (("PUT", {"json": change}), ("DELETE", {})):
        foreign = call(srv, method, theirs, f"{ROUTE}/{made['id']}", **kwargs)
        missing = call(srv, method, theirs, f"{ROUTE}/tpl_0000000000000000", **kwargs)
        assert foreign.status_code == missing.status_code == 404, foreign.text
        assert foreign.json() == missing.json()
    assert made in listed(srv, mine)


def test_who_may_keep_templates(srv: ServerProcess) -> None:
    shop = uid("shop")
    anna = operator(shop)
    listed(srv, anna)
    for role in ("buyer", "manager", "system"):
        refused = call(srv, "GET", token(role, uid(role)))
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
        posted = call(srv, "POST", token(role, uid(role)), json={"shortcut": "x"})
        assert posted.status_code == 403, (role, posted.text)
    assert call(srv, "GET", None).status_code == 401
    # A key that sends may keep them (as its shop); one that only reads may not.
    writer = create_key(srv, anna, "бот", ("chat:write",))["key"]
    reader = create_key(srv, anna, "аналитика", ("chat:read",))["key"]
    by_key = created(srv, writer, shortcut="bot")
    assert by_key in listed(srv, anna)
    refused = call(srv, "GET", reader)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"scope": "chat:write"}
