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

The order of checks, wherever an action runs: `check(actor, action)` (the role alone, before
any look-up), then `check(actor, action, state)` (the relation to the chat the action
reaches), then the action's own rules (protocol/DECISIONS.md, "The order of checks").
The actions are the client frames (named by their `type`), the HTTP API's routes
(`ROUTES`), and `deadline`: what the server itself does when a claim's wait ends (a request
the shop left undecided goes to the managers, an offer the buyer never took up expires). The
tests hold the table to the lists of frames and routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from chatd.domain.actors import Actor
from chatd.domain.commands import (
    ApproveReturn,
    Command,
    DisputeReturn,
    EscalateClaim,
    ExpireOffer,
    InitiateReturn,
    OpenChat,
    PostMessage,
    RejectReturn,
    ReportLogistics,
    RequestReturn,
    ResolveReturn,
    WithdrawReturn,
)
from chatd.domain.errors import Rejection, not_found
from chatd.domain.model import ChatState
from protocol.codes import ErrorCode
from protocol.events import Role, Side

Action = Literal[
    # The client frames (PROTOCOL.md section 3), by their `type`.
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
    # The HTTP API (PROTOCOL.md section 8).
    "healthz",
    "metrics",
    "register_order",
    "logistics",
    "upload",
    "download",
    "balance",
    "sales_report",
    # The server's own deadlines on claims (docs/protocol.md, version 1.1).
    "deadline",
]
ACTIONS: tuple[Action, ...] = get_args(Action)

Relation = Literal["participant", "arbiter", "marketplace", "foreign"]
RELATIONS: tuple[Relation, ...] = get_args(Relation)
ROLES: tuple[Role, ...] = get_args(Role)


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
_UPLOAD = Deny("only buyers and shops upload files")
_BALANCE = Deny("only buyers and shops have a balance")

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
    # Only the server, acting for the marketplace, ends a claim's wait when it is due.
    "deadline": _only("system", "only the marketplace's deadlines end a claim's wait", _EVERY),
    # ---- the HTTP API --------------------------------------------------------------------------
    # No token is read for these two: /metrics is served by address, not by role.
    "healthz": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "metrics": _row(ALLOW, ALLOW, ALLOW, ALLOW),
    "register_order": _only("system", "only the marketplace back end registers orders"),
    "logistics": _only("system", "only the marketplace reports where the goods are", _EVERY),
    "upload": _row(ALLOW, ALLOW, _UPLOAD, _UPLOAD),
    # A file sent in a chat; its uploader may always read it back (chatd.views.download).
    # The contract gives files to a chat's participants and the uploader only: the system,
    # which sees every chat, is answered about files as a stranger is (`not_found`).
    "download": _row(_OWN, _OWN, _DISPUTED, {"marketplace": HIDE}),
    "balance": _row(ALLOW, ALLOW, _BALANCE, _BALANCE),
    "sales_report": _only("seller", "only a shop has a sales report"),
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
    "deadline": "claim",
    "logistics": "claim",
    "download": "file",
}

# The routes of chatd/web/app.py (path parameters without their converters) and their actions.
ROUTES: dict[str, Action] = {
    "/ws": "hello",
    "/healthz": "healthz",
    "/metrics": "metrics",
    "/api/v1/orders": "register_order",
    "/api/v1/orders/{order}/logistics": "logistics",
    "/api/v1/files": "upload",
    "/api/v1/files/{file}": "download",
    "/api/v1/balance": "balance",
    "/api/v1/reports/sales": "sales_report",
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
    answer = verdict(actor.role, action, relation)
    if isinstance(answer, Deny):
        return Rejection(answer.code, answer.message)
    if isinstance(answer, Hide):
        return not_found(SUBJECT[action])
    return None


def may(role: Role, action: Action) -> bool:
    """Whether the role may do `action` at all (on some chat, for an action on one)."""
    cell = POLICY[action][role]
    if isinstance(cell, Allow | Deny):
        return isinstance(cell, Allow)
    return any(isinstance(answer, Allow) for answer in cell.values())


def roles_for(action: Action) -> tuple[Role, ...]:
    """The roles that may do `action` at all, in the order of `Role`."""
    return tuple(role for role in ROLES if may(role, action))
