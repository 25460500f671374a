"""The role policy (chatd/domain/policy.py): who may do what, on which chats.

Pure: the table, `relation_of` and `check` against hand-made chat states. That the server
asks the table is what tests/e2e/test_contract_access.py and tests/security/ show on the wire.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from chatd.domain import policy
from chatd.domain.access import first_visible_seq, side_of
from chatd.domain.actors import Actor
from chatd.domain.commands import Command
from chatd.domain.errors import Rejection, not_found
from chatd.domain.model import ChatState
from chatd.domain.policy import (
    ACTIONS,
    ALLOW,
    HIDE,
    POLICY,
    RELATIONS,
    ROLES,
    ROUTES,
    SUBJECT,
    Action,
    Allow,
    Deny,
    Relation,
    check,
    check_order,
    order_relation,
    relation_of,
    roles_for,
    verdict,
)
from protocol import frames
from protocol.codes import ErrorCode
from protocol.events import Money, OrderCard, Party, Role

APP = Path(__file__).parents[2] / "chatd" / "web" / "app.py"
# Routes app.py takes from modules of their own.
ROUTE_MODULES = (
    APP,
    APP.with_name("keys_api.py"),
    APP.with_name("webhooks_api.py"),
    APP.with_name("wb_compat.py"),
    APP.with_name("operators_api.py"),
    APP.with_name("templates_api.py"),
)

BUYER = Actor(role="buyer", id="lyuda", name="Люда")
OTHER_BUYER = Actor(role="buyer", id="timur", name="Тимур")
OPERATOR = Actor(role="seller", id="op-anna", name="Анна", shop="shop1")
OTHER_OPERATOR = Actor(role="seller", id="op-x", name="Икс", shop="shop2")
MANAGER = Actor(role="manager", id="m1", name="Менеджер")
SYSTEM = Actor(role="system", id="backend", name="Маркетплейс")

CHAT = ChatState(
    chat="c1", buyer=Party(id="lyuda", name="Люда"), seller=Party(id="shop1", name="Шоп"), seq=3
)
DISPUTED = ChatState(
    chat="c1",
    buyer=Party(id="lyuda", name="Люда"),
    seller=Party(id="shop1", name="Шоп"),
    seq=7,
    managers_from=6,
)

# Who may do what at all: the "who" columns of docs/protocol.md sections 3 and 8.
WHO: dict[Action, tuple[Role, ...]] = {
    "hello": ("buyer", "seller", "manager"),
    "ping": ROLES,
    "open": ("buyer",),
    "send": ("buyer", "seller"),
    "read": ("buyer", "seller"),
    "history": ROLES,
    "chats": ("buyer", "seller", "manager"),
    "search": ("buyer", "seller", "manager"),
    "attachments": ROLES,
    "return.request": ("buyer",),
    "return.initiate": ("seller",),
    "return.approve": ("seller",),
    "return.reject": ("seller",),
    "return.dispute": ("buyer",),
    "return.resolve": ("manager",),
    "return.withdraw": ("seller",),
    "healthz": ROLES,
    "metrics": ROLES,
    "documents": ROLES,
    "register_order": ("system",),
    "logistics": ("system",),
    # The marketplace uploads the product photos of its orders.
    "upload": ("buyer", "seller", "system"),
    # "participants of a chat it was sent in, and its uploader": never the system (issue 12).
    "download": ("buyer", "seller", "manager"),
    "balance": ("buyer", "seller"),
    "sales_report": ("seller",),
    "keys": ("seller",),
    "webhooks": ("seller",),
    # HTTP without a socket: the feed is a socket's, the claims the shop's and the managers'.
    "events": ("buyer", "seller", "manager"),
    "claims": ("seller", "manager"),
    "claim_action": ("seller", "manager"),
    # Not a frame or a route: the server's own deadlines on claims, for the marketplace.
    "deadline": ("system",),
    # The operator's day: the shop's own work, and who sees it (the managers in a dispute).
    "assign": ("seller",),
    "note": ("seller",),
    "operators": ("seller",),
    "shop_events": ("seller", "manager"),
    # Typing is the chat's two sides'; canned replies are the shop's.
    "typing": ("buyer", "seller"),
    "templates": ("seller",),
}

# The refusals as the server has always worded them (clients and bots may show them).
REFUSALS: list[tuple[Actor, Action, ErrorCode, str]] = [
    (SYSTEM, "hello", ErrorCode.UNAUTHORIZED, "the system role uses the HTTP API only"),
    (MANAGER, "open", ErrorCode.FORBIDDEN, "only a buyer opens a chat"),
    (OPERATOR, "open", ErrorCode.FORBIDDEN, "only a buyer opens a chat"),
    (MANAGER, "send", ErrorCode.FORBIDDEN, "only the buyer and the shop write in a chat"),
    (SYSTEM, "send", ErrorCode.FORBIDDEN, "only the buyer and the shop write in a chat"),
    (SYSTEM, "chats", ErrorCode.FORBIDDEN, "this role has no chat list"),
    (SYSTEM, "search", ErrorCode.FORBIDDEN, "this role cannot search"),
    (OPERATOR, "return.request", ErrorCode.FORBIDDEN, "only the buyer requests a return"),
    (
        MANAGER,
        "return.dispute",
        ErrorCode.FORBIDDEN,
        "only the buyer disputes the shop's decision",
    ),
    (BUYER, "return.initiate", ErrorCode.FORBIDDEN, "only the shop offers a return"),
    (BUYER, "return.approve", ErrorCode.FORBIDDEN, "only the shop approves a return"),
    (MANAGER, "return.reject", ErrorCode.FORBIDDEN, "only the shop rejects a return"),
    (
        OPERATOR,
        "return.resolve",
        ErrorCode.FORBIDDEN,
        "only a manager resolves a disputed return",
    ),
    (
        MANAGER,
        "logistics",
        ErrorCode.FORBIDDEN,
        "only the marketplace reports where the goods are",
    ),
    (
        OPERATOR,
        "register_order",
        ErrorCode.FORBIDDEN,
        "only the marketplace back end registers orders",
    ),
    (
        MANAGER,
        "upload",
        ErrorCode.FORBIDDEN,
        "only buyers, shops and the marketplace upload files",
    ),
    (BUYER, "return.withdraw", ErrorCode.FORBIDDEN, "only the shop withdraws its offer"),
    (
        OPERATOR,
        "deadline",
        ErrorCode.FORBIDDEN,
        "only the marketplace's deadlines end a claim's wait",
    ),
    (SYSTEM, "balance", ErrorCode.FORBIDDEN, "only buyers and shops have a balance"),
    (MANAGER, "typing", ErrorCode.FORBIDDEN, "only the buyer and the shop write in a chat"),
    (BUYER, "templates", ErrorCode.FORBIDDEN, "only a shop's operators keep canned replies"),
]


def _tag(frame_type: type) -> str:
    tag = frame_type.__struct_config__.tag  # type: ignore[attr-defined]
    assert isinstance(tag, str)
    return tag


def _app_paths() -> set[str]:
    """The paths of the routes chatd/web/app.py declares, without their converters, and the
    socket's path (`SOCKET_PATH`, which the app's entry serves before any route)."""
    paths = set()
    nodes = [node for module in ROUTE_MODULES for node in ast.walk(ast.parse(module.read_text()))]
    for node in nodes:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["SOCKET_PATH"]
            and isinstance(node.value, ast.Constant)
        ):
            paths.add(str(node.value.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("Route", "WebSocketRoute")
        ):
            first = node.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            paths.add(re.sub(r"\{(\w+):\w+\}", r"{\1}", first.value))
    return paths


# ---- the table is whole -------------------------------------------------------------------


def test_every_client_frame_is_an_action_with_a_cell_for_every_role() -> None:
    tags = {_tag(t) for t in get_args(frames.ClientFrame)}
    assert tags and tags <= set(POLICY)
    for tag in tags:
        assert set(POLICY[tag]) == set(ROLES), tag  # type: ignore[index]


def test_every_http_route_of_the_app_is_an_action() -> None:
    paths = _app_paths()
    assert "/api/v1/orders" in paths and "/ws" in paths
    assert paths == set(ROUTES), "policy.ROUTES and chatd/web/app.py list other routes"
    assert set(ROUTES.values()) <= set(POLICY)


def test_the_table_has_every_action_and_every_role_and_nothing_else() -> None:
    assert set(POLICY) == set(ACTIONS)
    for action, row in POLICY.items():
        assert set(row) == set(ROLES), action
        for cell in row.values():
            if not isinstance(cell, Allow | Deny):
                assert set(cell) <= set(RELATIONS), action


def test_every_command_of_the_domain_has_its_action() -> None:
    assert set(policy.COMMAND_ACTIONS) == set(get_args(Command))
    assert set(policy.COMMAND_ACTIONS.values()) <= set(ACTIONS)


def test_what_an_action_on_one_chat_hides_is_named() -> None:
    on_a_chat = {
        action
        for action, row in POLICY.items()
        if any(not isinstance(cell, Allow | Deny) for cell in row.values())
    }
    assert on_a_chat == set(SUBJECT)
    assert set(SUBJECT.values()) == {"chat", "claim", "file"}


def test_who_may_is_the_contracts_who() -> None:
    assert {action: roles_for(action) for action in ACTIONS} == WHO


# ---- relations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "state", "relation"),
    [
        (BUYER, CHAT, "participant"),
        (OTHER_BUYER, CHAT, "foreign"),
        (OPERATOR, CHAT, "participant"),
        (OTHER_OPERATOR, CHAT, "foreign"),
        (MANAGER, CHAT, "foreign"),
        (MANAGER, DISPUTED, "arbiter"),
        (SYSTEM, CHAT, "marketplace"),
        (BUYER, DISPUTED, "participant"),
    ],
)
def test_relation_to_a_chat(actor: Actor, state: ChatState, relation: Relation) -> None:
    assert relation_of(state, actor) == relation


def test_an_operator_without_a_shop_is_foreign_everywhere() -> None:
    assert relation_of(CHAT, Actor(role="seller", id="op", name="Оп")) == "foreign"


def test_who_sees_a_chat_and_from_where_follows_the_relation() -> None:
    assert first_visible_seq(CHAT, BUYER) == 1 and first_visible_seq(CHAT, OPERATOR) == 1
    assert first_visible_seq(CHAT, SYSTEM) == 1
    assert first_visible_seq(CHAT, MANAGER) is None
    assert first_visible_seq(DISPUTED, MANAGER) == 6
    assert first_visible_seq(CHAT, OTHER_BUYER) is None
    assert first_visible_seq(CHAT, OTHER_OPERATOR) is None
    assert (side_of(CHAT, BUYER), side_of(CHAT, OPERATOR)) == ("buyer", "seller")
    assert side_of(DISPUTED, MANAGER) is None and side_of(CHAT, SYSTEM) is None
    assert side_of(CHAT, OTHER_OPERATOR) is None


# ---- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("actor", "action", "code", "message"), REFUSALS)
def test_a_role_that_never_may_is_refused_before_any_look_up(
    actor: Actor, action: Action, code: ErrorCode, message: str
) -> None:
    assert check(actor, action) == Rejection(code, message)
    # The chat changes nothing: a foreign one is refused alike.
    assert check(actor, action, CHAT) == Rejection(code, message)
    assert check(actor, action, DISPUTED) == Rejection(code, message)


def test_the_role_check_alone_never_hides() -> None:
    for action in ACTIONS:
        for role in ROLES:
            assert verdict(role, action) != HIDE, (role, action)


@pytest.mark.parametrize(
    ("actor", "action", "subject"),
    [
        (OTHER_BUYER, "send", "chat"),
        (OTHER_OPERATOR, "send", "chat"),
        (OTHER_BUYER, "read", "chat"),
        (MANAGER, "read", "chat"),
        (MANAGER, "history", "chat"),
        (OTHER_OPERATOR, "search", "chat"),
        (MANAGER, "attachments", "chat"),
        (OTHER_BUYER, "return.request", "chat"),
        (OTHER_OPERATOR, "return.initiate", "chat"),
        (OTHER_OPERATOR, "return.approve", "claim"),
        (OTHER_OPERATOR, "return.reject", "claim"),
        (OTHER_BUYER, "return.dispute", "claim"),
        (MANAGER, "return.resolve", "claim"),
        (OTHER_OPERATOR, "return.withdraw", "claim"),
        (OTHER_BUYER, "download", "file"),
        (MANAGER, "download", "file"),
        (OTHER_BUYER, "typing", "chat"),
        (OTHER_OPERATOR, "typing", "chat"),
    ],
)
def test_a_foreign_chat_is_answered_as_a_missing_id(
    actor: Actor, action: Action, subject: str
) -> None:
    assert relation_of(CHAT, actor) == "foreign"
    assert check(actor, action) is None
    assert check(actor, action, CHAT) == not_found(subject)
    assert not_found(subject).message == f"no such {subject}"


@pytest.mark.parametrize(
    ("actor", "action"),
    [
        (BUYER, "send"),
        (OPERATOR, "send"),
        (BUYER, "read"),
        (OPERATOR, "read"),
        (BUYER, "history"),
        (OPERATOR, "attachments"),
        (BUYER, "search"),
        (BUYER, "return.request"),
        (BUYER, "return.dispute"),
        (OPERATOR, "return.initiate"),
        (OPERATOR, "return.approve"),
        (OPERATOR, "return.reject"),
        (OPERATOR, "return.withdraw"),
        (SYSTEM, "logistics"),
        (SYSTEM, "deadline"),
        (SYSTEM, "history"),
        (BUYER, "download"),
        (BUYER, "typing"),
        (OPERATOR, "typing"),
    ],
)
def test_participants_and_the_marketplace_may_on_their_chats(actor: Actor, action: Action) -> None:
    assert check(actor, action) is None
    assert check(actor, action, CHAT) is None
    assert check(actor, action, DISPUTED) is None


@pytest.mark.parametrize("action", ["history", "search", "attachments", "download"])
def test_a_manager_sees_a_disputed_chat(action: Action) -> None:
    assert check(MANAGER, action, DISPUTED) is None


def test_a_manager_resolves_only_in_a_disputed_chat() -> None:
    assert check(MANAGER, "return.resolve") is None
    assert check(MANAGER, "return.resolve", DISPUTED) is None
    assert check(MANAGER, "return.resolve", CHAT) == not_found("claim")


def test_a_manager_keeps_no_read_marks_but_learns_nothing_of_a_chat_it_may_not_see() -> None:
    marks = Rejection(ErrorCode.FORBIDDEN, "only the buyer and the shop keep read marks")
    assert check(MANAGER, "read") is None
    assert check(MANAGER, "read", DISPUTED) == marks
    assert check(MANAGER, "read", CHAT) == not_found("chat")
    assert check(SYSTEM, "read", CHAT) == marks


def test_read_marks_are_kept_by_the_two_sides_only() -> None:
    # The service takes the side of whoever may `read`: only a participant has one.
    for role in ROLES:
        for relation in RELATIONS:
            if verdict(role, "read", relation) == ALLOW:
                assert relation == "participant" and role in policy.PARTY_SIDE


def test_what_a_chat_may_show_to_someone_is_what_they_see_of_it() -> None:
    """The reads of one chat hide exactly the chats an actor cannot see (chatd.states)."""
    actors = [BUYER, OTHER_BUYER, OPERATOR, OTHER_OPERATOR, MANAGER, SYSTEM]
    for action in ("history", "attachments", "download"):
        for state in (CHAT, DISPUTED):
            for actor in actors:
                if action == "download" and actor is SYSTEM:
                    continue  # it sees every chat, but no file in one (the test below)
                sees = first_visible_seq(state, actor) is not None
                assert (check(actor, action, state) is None) == sees, (action, actor, state)


def test_the_system_is_answered_about_files_as_a_stranger() -> None:
    # Not `forbidden` before the look-up: the same 404 as for an id that names nothing.
    assert check(SYSTEM, "download") is None
    for state in (CHAT, DISPUTED):
        assert check(SYSTEM, "download", state) == not_found("file")
        assert check(OTHER_BUYER, "download", state) == not_found("file")


def test_http_names_the_roles_that_may() -> None:
    # chatd/web/http.py words its `forbidden` from these: "this needs the role buyer or seller".
    assert " or ".join(roles_for("upload")) == "buyer or seller or system"
    assert " or ".join(roles_for("balance")) == "buyer or seller"
    assert " or ".join(roles_for("sales_report")) == "seller"
    assert " or ".join(roles_for("register_order")) == "system"
    assert " or ".join(roles_for("logistics")) == "system"


# ---- an order's photo -----------------------------------------------------------------------

ORDER = OrderCard(
    id="o1",
    buyer=Party(id="lyuda", name="Люда"),
    seller=Party(id="shop1", name="Шоп"),
    article="140158860",
    name="Юбка",
    brand="SK - Line",
    price=Money(value=118600, currency="RUB"),
    purchased_at=datetime(2023, 8, 10, 9, tzinfo=UTC),
    non_returnable=False,
    photo="f" + "1" * 24,
)
# The disputed chat of another buyer of the same shop: it shows none of this order.
ELSEWHERE = ChatState(
    chat="c2",
    buyer=Party(id="timur", name="Тимур"),
    seller=Party(id="shop1", name="Шоп"),
    seq=7,
    managers_from=6,
)


@pytest.mark.parametrize(
    ("actor", "chat", "relation"),
    [
        (BUYER, None, "participant"),
        (OPERATOR, None, "participant"),
        (OTHER_BUYER, CHAT, "foreign"),
        (OTHER_OPERATOR, DISPUTED, "foreign"),
        (MANAGER, None, "foreign"),
        (MANAGER, CHAT, "foreign"),
        (MANAGER, ELSEWHERE, "foreign"),
        (MANAGER, DISPUTED, "arbiter"),
        (SYSTEM, DISPUTED, "marketplace"),
    ],
)
def test_relation_to_an_order(actor: Actor, chat: ChatState | None, relation: Relation) -> None:
    assert order_relation(ORDER, actor, chat) == relation


def test_an_orders_photo_is_read_as_a_chats_files_are() -> None:
    for actor in (BUYER, OPERATOR):
        assert check_order(actor, "download", ORDER, None) is None
    assert check_order(MANAGER, "download", ORDER, DISPUTED) is None
    hidden = not_found("file")
    for actor, chat in (
        (OTHER_BUYER, DISPUTED),
        (OTHER_OPERATOR, DISPUTED),
        (MANAGER, CHAT),
        (MANAGER, ELSEWHERE),
        (SYSTEM, DISPUTED),
    ):
        assert check_order(actor, "download", ORDER, chat) == hidden, actor
