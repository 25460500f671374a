"""Who may do what: one table of role × action × relation to the chat.

Every permission question asks this module; nothing else compares `actor.role` to decide
whether an actor may do something. `POLICY[action][role]` is one of:

- `ALLOW`: the role may (what is left is the action's own rules: claim states, texts, sizes);
- `Deny(message)`: the role never may. It is answered before anything is looked up, so that
  the answer is the same for a chat that exists elsewhere and for one that does not;
- a mapping from the actor's relation to the chat (`relation_of`) to a verdict: the role may
  on some chats only. A relation the mapping leaves out is `HIDE`: `not_found`, with the very
  message of an id that names nothing (`SUBJECT` says what the action names), so that nobody
  learns that a foreign chat, claim or file exists.

The relations: `participant` (the chat's buyer, or an operator of its shop), `arbiter` (a
manager, once a claim of the chat is disputed), `marketplace` (the system, which sees every
chat), `foreign` (everyone else: another buyer, another shop, a manager before a dispute).
An order's photo is read by the same row as a chat's files, with the actor's relation to
the order instead (`order_relation`): its buyer and its shop take part in it, and a manager
is its arbiter once the chat between them is disputed.

The order of checks, wherever an action runs: `check(actor, action)` (the role alone, before
any look-up), then `check(actor, action, state)` (the relation to the chat the action
reaches), then the action's own rules (protocol/DECISIONS.md, "The order of checks").
The actions are the client frames (named by their `type`), the HTTP API's routes
(`ROUTES`), and `deadline`: what the server itself does when a claim's wait ends (a request
the shop left undecided goes to the managers, an offer the buyer never took up expires), and
`shop_events`: who may see the shop's own events in a chat (its notes and assignments). The
tests hold the table to the lists of frames and routes.

A shop's API key acts as its shop (role `seller`) within its scopes: `KEY_SCOPES` says which
scope each action needs, and every check above asks it after the role's cell, so a key
outside its scopes is `forbidden` wherever the action runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from chatd.domain.actors import Actor
from chatd.domain.commands import (
    ApproveReturn,
    AssignChat,
    Command,
    DisputeReturn,
    EscalateClaim,
    ExpireOffer,
    InitiateReturn,
    OpenChat,
    PostMessage,
    PostNote,
    RejectReturn,
    ReportLogistics,
    RequestReturn,
    ResolveReturn,
    WithdrawReturn,
)
from chatd.domain.errors import Rejection, forbidden, not_found
from chatd.domain.model import ChatState
from protocol.codes import ErrorCode
from protocol.events import OrderCard, Role, Side

Action = Literal[
    # The client frames (docs/protocol.md section 3), by their `type`.
    "hello",
    "ping",
    "open",
    "send",
    "read",
    "history",
    "chats",
    "search",
    "attachments",
    "return.request",
    "return.initiate",
    "return.approve",
    "return.reject",
    "return.dispute",
    "return.resolve",
    "return.withdraw",
    # The operator's day (version 1.1): the shop gives a chat to an operator, and leaves
    # private notes in it.
    "assign",
    "note",
    # The operator's day (docs/protocol.md, version 1.1): typing, relayed and never stored.
    "typing",
    # The HTTP API (docs/protocol.md section 8).
    "healthz",
    "metrics",
    # /openapi.json and /asyncapi.json: the contract, public as the docs are.
    "documents",
    "register_order",
    "logistics",
    "upload",
    "download",
    "balance",
    "sales_report",
    # A shop's API keys (docs/protocol.md section 12, "Credentials"): create, list, revoke.
    "keys",
    # HTTP for integrators (docs/protocol.md, "HTTP without a socket"); the chat list, a
    # chat's history and sending over HTTP are the frames' own actions.
    "events",
    "claims",
    "claim_action",
    # A shop's webhook endpoints (docs/protocol.md, "Webhooks"): create, list, delete, and
    # read an endpoint's deliveries.
    "webhooks",
    # A shop's canned replies (docs/protocol.md, "Canned replies"): list, create, change,
    # delete.
    "templates",
    # The operators a shop is known to have, whom its chats may be assigned to.
    "operators",
    # The server's own deadlines on claims (docs/protocol.md, version 1.1).
    "deadline",
    # Not a frame or a route: seeing the shop's own events in a chat (`note`,
    # `chat.assigned`: protocol.events.SHOP_ONLY_KINDS), which every read path asks
    # (chatd.domain.access.hidden_kinds) and the routing of a chat's events follows.
    "shop_events",
]
ACTIONS: tuple[Action, ...] = get_args(Action)

Relation = Literal["participant", "arbiter", "marketplace", "foreign"]
RELATIONS: tuple[Relation, ...] = get_args(Relation)
ROLES: tuple[Role, ...] = get_args(Role)

Scope = Literal["chat:read", "chat:write", "returns:write"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


@dataclass(frozen=True, slots=True)
class Allow:
    """The actor may."""


@dataclass(frozen=True, slots=True)
class Deny:
    """The actor may not: `code` (`forbidden` unless said otherwise) and this message."""

    message: str
    code: ErrorCode = ErrorCode.FORBIDDEN


@dataclass(frozen=True, slots=True)
class Hide:
    """`not_found`, as for an id that names nothing: the thing is not the actor's to see."""


Verdict = Allow | Deny | Hide
Cell = Allow | Deny | Mapping[Relation, Verdict]

ALLOW = Allow()
HIDE = Hide()

# The chats a role may reach, for actions on one chat; every other relation is `HIDE`.
_OWN: Mapping[Relation, Verdict] = {"participant": ALLOW}
_DISPUTED: Mapping[Relation, Verdict] = {"arbiter": ALLOW}
_EVERY: Mapping[Relation, Verdict] = {"marketplace": ALLOW}


def _row(buyer: Cell, seller: Cell, manager: Cell, system: Cell) -> dict[Role, Cell]:
    return {"buyer": buyer, "seller": seller, "manager": manager, "system": system}


def _only(role: Role, message: str, cell: Cell = ALLOW) -> dict[Role, Cell]:
    """One role may (`cell`); every other one is denied with `message`."""
    never = Deny(message)
    return {r: cell if r == role else never for r in ROLES}


_WRITE = Deny("only the buyer and the shop write in a chat")
_READ_MARKS = Deny("only the buyer and the shop keep read marks")
_UPLOAD = Deny("only buyers, shops and the marketplace upload files")
_BALANCE = Deny("only buyers and shops have a balance")
_CLAIMS = Deny("only a shop and the marketplace's managers work on claims")
_SHOP_ONLY = Deny("only the shop, and the managers in a disputed chat, see the shop's notes")

# One row per action; `_row`'s columns are buyer, seller, manager, system.
POLICY: dict[Action, dict[Role, Cell]] = {
    # ---- the socket ----------------------------------------------------------------------------
    "hello": _row(
        ALLOW,
        ALLOW,
        ALLOW,
        Deny("the system role uses the HTTP API only", ErrorCode.UNAUTHORIZED),
    ),
    "ping": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "open": _only("buyer", "only a buyer opens a chat"),
    "send": _row(_OWN, _OWN, _WRITE, _WRITE),
    # A manager may see a disputed chat but keeps no read marks there.
    "read": _row(_OWN, _OWN, {"arbiter": _READ_MARKS}, {"marketplace": _READ_MARKS}),
    "history": _row(_OWN, _OWN, _DISPUTED, _EVERY),
    "chats": _row(ALLOW, ALLOW, ALLOW, Deny("this role has no chat list")),
    # Without `chat`, a search covers the chats of the actor's routing key.
    "search": _row(_OWN, _OWN, _DISPUTED, Deny("this role cannot search")),
    "attachments": _row(_OWN, _OWN, _DISPUTED, _EVERY),
    # ---- returns: who presses which button, and on which chats -------------------------------
    "return.request": _only("buyer", "only the buyer requests a return", _OWN),
    "return.dispute": _only("buyer", "only the buyer disputes the shop's decision", _OWN),
    "return.initiate": _only("seller", "only the shop offers a return", _OWN),
    "return.approve": _only("seller", "only the shop approves a return", _OWN),
    "return.reject": _only("seller", "only the shop rejects a return", _OWN),
    "return.resolve": _only("manager", "only a manager resolves a disputed return", _DISPUTED),
    "return.withdraw": _only("seller", "only the shop withdraws its offer", _OWN),
    # ---- the operator's day: the shop's own work, which the buyer never sees -----------------
    "assign": _only("seller", "only the shop's operators assign its chats", _OWN),
    "note": _only("seller", "only the shop's operators leave notes in its chats", _OWN),
    # The managers see a disputed chat in full, its notes too; the marketplace's back end
    # (which may read every chat's history) does not: they are the shop's alone.
    "shop_events": _row(_SHOP_ONLY, _OWN, _DISPUTED, _SHOP_ONLY),
    # ---- the operator's day --------------------------------------------------------------------
    # Only the chat's two sides type in it; a manager reads a disputed chat but writes nothing.
    "typing": _row(_OWN, _OWN, _WRITE, _WRITE),
    # Only the server, acting for the marketplace, ends a claim's wait when it is due.
    "deadline": _only("system", "only the marketplace's deadlines end a claim's wait", _EVERY),
    # ---- the HTTP API --------------------------------------------------------------------------
    # No token is read for these two: /metrics is served by address, not by role.
    "healthz": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "metrics": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "documents": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "register_order": _only("system", "only the marketplace back end registers orders"),
    "logistics": _only("system", "only the marketplace reports where the goods are", _EVERY),
    # The marketplace uploads the product photos its orders name (chatd.domain.orders).
    "upload": _row(ALLOW, ALLOW, _UPLOAD, ALLOW),
    # A file sent in a chat, or the photo of an order (`order_relation`); a buyer or a shop
    # may always read its own uploads back (chatd.views.download). The contract gives files
    # to a chat's participants and the uploader only: the system, which sees every chat, is
    # answered about files as a stranger is (`not_found`), its own photos included.
    "download": _row(_OWN, _OWN, _DISPUTED, {"marketplace": HIDE}),
    "balance": _row(ALLOW, ALLOW, _BALANCE, _BALANCE),
    "sales_report": _only("seller", "only a shop has a sales report"),
    # The feed of events is what a socket receives: the system role holds none.
    "events": _row(ALLOW, ALLOW, ALLOW, Deny("this role has no feed of events")),
    # A shop's claims are those of its chats; the managers', those disputed or escalated.
    "claims": _row(_CLAIMS, _OWN, _DISPUTED, _CLAIMS),
    # Each action is then a return command, checked as its frame is.
    "claim_action": _row(_CLAIMS, ALLOW, ALLOW, _CLAIMS),
    # A key cannot manage keys (no scope below opens it): it could mint itself wider ones.
    "keys": _only("seller", "only a shop's operators manage its API keys"),
    "webhooks": _only("seller", "only a shop manages its webhooks"),
    "operators": _only("seller", "only a shop's side lists its operators"),
    # Shared by the shop: every operator reads and edits the same list.
    "templates": _only("seller", "only a shop's operators keep canned replies"),
}

# The scope a shop's API key needs for each action, on top of the seller's cell above;
# `None`: any key may. An action missing here is one no key may do whatever its scopes, so
# that an action added to the table stays closed to keys until someone decides which scope
# opens it. What no scope names stays with the operators' tokens: the shop's money (balance,
# sales report) and the keys themselves.
KEY_SCOPES: dict[Action, Scope | None] = {
    # A socket carries every event of the shop as it happens: that is reading its chats.
    "hello": "chat:read",
    "ping": None,
    "chats": "chat:read",
    "history": "chat:read",
    "search": "chat:read",
    "attachments": "chat:read",
    "download": "chat:read",
    "events": "chat:read",
    "claims": "chat:read",
    "send": "chat:write",
    # A read mark changes what the shop's operators see as unread: a write, not a read.
    "read": "chat:write",
    # Files are uploaded to be sent in a chat.
    "upload": "chat:write",
    "return.initiate": "returns:write",
    "return.approve": "returns:write",
    "return.reject": "returns:write",
    "return.withdraw": "returns:write",
    "claim_action": "returns:write",
    # A bot of the shop may route its chats and leave notes: writing in the shop's chats.
    "assign": "chat:write",
    "note": "chat:write",
    # What the shop reads of its chats includes its own notes and assignments, and who of
    # its operators a chat may go to.
    "shop_events": "chat:read",
    "operators": "chat:read",
    # An endpoint receives every event of the shop it asks for, as a socket would.
    "webhooks": "chat:read",
    # Typing is part of writing a message; canned replies exist to be sent, so a key that
    # sends may read and keep them, and one that only reads has no use for them.
    "typing": "chat:write",
    "templates": "chat:write",
    # No token is read for these.
    "healthz": None,
    "metrics": None,
    "documents": None,
}

# What a hidden action's `not_found` names: the id the frame or the path carries.
SUBJECT: dict[Action, str] = {
    "send": "chat",
    "read": "chat",
    "history": "chat",
    "search": "chat",
    "attachments": "chat",
    "return.request": "chat",
    "return.initiate": "chat",
    "return.approve": "claim",
    "return.reject": "claim",
    "return.dispute": "claim",
    "return.resolve": "claim",
    "return.withdraw": "claim",
    "typing": "chat",
    "assign": "chat",
    "note": "chat",
    "shop_events": "chat",
    "deadline": "claim",
    "logistics": "claim",
    "download": "file",
    "claims": "claim",
}

# The routes of chatd/web/app.py (path parameters without their converters) and their actions.
ROUTES: dict[str, Action] = {
    "/ws": "hello",
    "/healthz": "healthz",
    # Liveness and readiness (chatd.web.health): like /healthz, for anyone, with no token.
    "/livez": "healthz",
    "/readyz": "healthz",
    "/metrics": "metrics",
    "/openapi.json": "documents",
    "/asyncapi.json": "documents",
    "/api/v1/orders": "register_order",
    "/api/v1/orders/{order}/logistics": "logistics",
    "/api/v1/files": "upload",
    "/api/v1/files/{file}": "download",
    "/api/v1/balance": "balance",
    "/api/v1/reports/sales": "sales_report",
    "/api/v1/keys": "keys",
    "/api/v1/keys/{key}": "keys",
    "/api/v1/chats": "chats",
    "/api/v1/chats/{chat}/history": "history",
    "/api/v1/chats/{chat}/messages": "send",
    "/api/v1/events": "events",
    "/api/v1/claims": "claims",
    "/api/v1/claims/{claim}/actions": "claim_action",
    "/api/v1/webhooks": "webhooks",
    "/api/v1/webhooks/{webhook}": "webhooks",
    "/api/v1/webhooks/{webhook}/deliveries": "webhooks",
    "/api/v1/operators": "operators",
    "/api/v1/templates": "templates",
    "/api/v1/templates/{template}": "templates",
    # WB's Buyers Chat API shapes (docs/protocol.md, "WB-compatible routes"): the same reads
    # and commands as the routes above, for a shop's API key.
    "/api/v1/seller/chats": "chats",
    "/api/v1/seller/events": "events",
    "/api/v1/seller/message": "send",
    "/api/v1/seller/download/{id}": "download",
}

# The domain's commands and the actions they carry out.
COMMAND_ACTIONS: dict[type[Command], Action] = {
    OpenChat: "open",
    PostMessage: "send",
    RequestReturn: "return.request",
    InitiateReturn: "return.initiate",
    ApproveReturn: "return.approve",
    RejectReturn: "return.reject",
    DisputeReturn: "return.dispute",
    ResolveReturn: "return.resolve",
    ReportLogistics: "logistics",
    WithdrawReturn: "return.withdraw",
    EscalateClaim: "deadline",
    ExpireOffer: "deadline",
    AssignChat: "assign",
    PostNote: "note",
}

# The side of a chat each participating role writes for.
PARTY_SIDE: dict[Role, Side] = {"buyer": "buyer", "seller": "seller"}


def relation_of(state: ChatState, actor: Actor) -> Relation:
    """How `actor` stands to the chat in `state`."""
    if actor.role == "buyer":
        return "participant" if actor.id == state.buyer.id else "foreign"
    if actor.role == "seller":
        return "participant" if actor.shop == state.seller.id else "foreign"
    if actor.role == "manager":
        return "arbiter" if state.managers_from is not None else "foreign"
    return "marketplace"


def order_relation(order: OrderCard, actor: Actor, chat: ChatState | None) -> Relation:
    """How `actor` stands to an order: its buyer and its shop's operators take part in it; a
    manager is its arbiter once the chat between that buyer and that shop (`chat`; None
    when they have none) is disputed, since the manager then sees that chat's orders."""
    if actor.role == "buyer":
        return "participant" if actor.id == order.buyer.id else "foreign"
    if actor.role == "seller":
        return "participant" if actor.shop == order.seller.id else "foreign"
    if actor.role == "manager":
        if chat is None or chat.managers_from is None:
            return "foreign"
        between = (chat.buyer.id, chat.seller.id) == (order.buyer.id, order.seller.id)
        return "arbiter" if between else "foreign"
    return "marketplace"


def verdict(role: Role, action: Action, relation: Relation | None = None) -> Verdict:
    """The table's answer; with no relation, `ALLOW` for a role that may on some chats."""
    cell = POLICY[action][role]
    if isinstance(cell, Allow | Deny):
        return cell
    if relation is None:
        return ALLOW
    return cell.get(relation, HIDE)


def check(actor: Actor, action: Action, state: ChatState | None = None) -> Rejection | None:
    """None when `actor` may do `action` (on the chat in `state`), else the rejection.

    Without a state only the role is checked: call it before any look-up, then again with
    the chat's state once it is known.
    """
    relation = relation_of(state, actor) if state is not None else None
    return _answer(actor, action, verdict(actor.role, action, relation))


def check_order(
    actor: Actor, action: Action, order: OrderCard, chat: ChatState | None
) -> Rejection | None:
    """`check` for an action on an order's own things (its photo): the table's cell for the
    actor's relation to the order (`order_relation`; `chat` is the chat between the order's
    buyer and shop, None when they have none). Called after the role alone was checked."""
    relation = order_relation(order, actor, chat)
    return _answer(actor, action, verdict(actor.role, action, relation))


def _answer(actor: Actor, action: Action, answer: Verdict) -> Rejection | None:
    if isinstance(answer, Deny):
        return Rejection(answer.code, answer.message)
    # Before `Hide`: a key's scopes do not depend on the chat, so `forbidden` for a foreign
    # chat tells no more than for its own.
    scoped = key_refusal(actor, action)
    if scoped is not None:
        return scoped
    if isinstance(answer, Hide):
        return not_found(SUBJECT[action])
    return None


def key_refusal(actor: Actor, action: Action) -> Rejection | None:
    """`forbidden` when `actor` is an API key (it has `scopes`) whose scopes do not open
    `action`; None for a key that may, and for a token (its role decides alone)."""
    if actor.scopes is None:
        return None
    if action not in KEY_SCOPES:
        return forbidden("an API key cannot do this; an operator's token can")
    needed = KEY_SCOPES[action]
    if needed is None or needed in actor.scopes:
        return None
    return Rejection(
        ErrorCode.FORBIDDEN, f"this API key lacks the scope {needed}", {"scope": needed}
    )


def may(role: Role, action: Action) -> bool:
    """Whether the role may do `action` at all (on some chat, for an action on one)."""
    cell = POLICY[action][role]
    if isinstance(cell, Allow | Deny):
        return isinstance(cell, Allow)
    return any(isinstance(answer, Allow) for answer in cell.values())


def roles_for(action: Action) -> tuple[Role, ...]:
    """The roles that may do `action` at all, in the order of `Role`."""
    return tuple(role for role in ROLES if may(role, action))
