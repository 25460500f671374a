"""Scripted conversations: the file format (TOML), its validation, and `$variables`.

A scenario names its actors (a buyer, shop operators, a manager, the marketplace back end)
and lists steps: actions (`do = ...`) and expectations (`expect = ...`). SCENARIOS.md beside
this file describes the format; `chatd.client.runner` runs it.

>>> scenario = loads('''
... title = "hello"
... [actors.buyer]
... role = "buyer"
... [actors.shop]
... role = "seller"
... [[steps]]
... actor = "buyer"
... do = "open"
... seller = "shop"
... save = "chat"
... [[steps]]
... actor = "buyer"
... do = "send"
... chat = "$chat"
... text = "Здравствуйте!"
... [[steps]]
... actor = "shop"
... expect = "event"
... kind = "message"
... text = "Здравствуйте!"
... ''')
>>> [step.describe() for step in scenario.steps]
['buyer open', 'buyer send', 'shop expects event message']
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Struct

from protocol.events import Decision, GoodsState, Money, ReturnMode, Role, Side


class ScenarioError(Exception):
    """The file is not a valid scenario; the message says where and why."""


# ---- the file ------------------------------------------------------------------------------


class Party(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str


class ActorSpec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role
    id: str | None = None  # default: "{key}-$run"
    name: str | None = None  # default: the key
    seller: str | None = None  # a seller's shop id; default: "{key}-shop-$run"
    shop_name: str | None = None
    subprotocol: Literal["chatd.v1.json", "chatd.v1.msgpack"] | None = None


class _Step(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    actor: str
    note: str = ""

    def describe(self) -> str:
        """One line naming the step in reports; each kind of step says more."""
        return f"{self.actor}: {self.note}" if self.note else self.actor


class _Action(_Step, frozen=True, kw_only=True, tag_field="do"):
    """A request of `actor`. `save` keeps its result, `capture` fields of its reply."""

    save: str | None = None
    capture: dict[str, str] = {}
    expect_error: str | None = None
    error_details: dict[str, Any] | None = None
    reply: Any = None

    def describe(self) -> str:
        return f"{self.actor} {type(self).__struct_config__.tag}"


# Fields that take an int, money or a bool also take a string: a `$variable`.
IntOrVar = int | str
MoneyOrVar = Money | str


class Open(_Action, frozen=True, kw_only=True, tag="open"):
    seller: str
    order: str | None = None


class Send(_Action, frozen=True, kw_only=True, tag="send"):
    chat: str
    text: str = ""
    attachments: list[str] = []
    nonce: str | None = None


class Read(_Action, frozen=True, kw_only=True, tag="read"):
    chat: str
    seq: IntOrVar


class History(_Action, frozen=True, kw_only=True, tag="history"):
    chat: str
    before: IntOrVar | None = None
    limit: IntOrVar = 50


class Chats(_Action, frozen=True, kw_only=True, tag="chats"):
    before: str | None = None
    limit: IntOrVar = 50


class Search(_Action, frozen=True, kw_only=True, tag="search"):
    q: str
    chat: str | None = None


class Attachments(_Action, frozen=True, kw_only=True, tag="attachments"):
    chat: str


class ReturnRequest(_Action, frozen=True, kw_only=True, tag="return.request"):
    chat: str
    order: str
    comment: str | None = None
    attachments: list[str] = []


class ReturnInitiate(_Action, frozen=True, kw_only=True, tag="return.initiate"):
    chat: str
    order: str


class ReturnApprove(_Action, frozen=True, kw_only=True, tag="return.approve"):
    claim: str
    mode: ReturnMode
    amount: MoneyOrVar


class ReturnReject(_Action, frozen=True, kw_only=True, tag="return.reject"):
    claim: str
    reason: str | None = None


class ReturnWithdraw(_Action, frozen=True, kw_only=True, tag="return.withdraw"):
    claim: str


class ReturnDispute(_Action, frozen=True, kw_only=True, tag="return.dispute"):
    claim: str


class ReturnResolve(_Action, frozen=True, kw_only=True, tag="return.resolve"):
    claim: str
    decision: Decision
    mode: ReturnMode | None = None
    comment: str | None = None


class Ping(_Action, frozen=True, kw_only=True, tag="ping"):
    pass


class RegisterOrder(_Action, frozen=True, kw_only=True, tag="order"):
    """The marketplace registers an order (system, HTTP). `buyer` and `seller` name actors
    (or are {id, name} tables); dates are RFC 3339, TOML dates, `now` or relative (`-20d`)."""

    id: str
    buyer: str | Party
    seller: str | Party
    article: str
    name: str
    brand: str
    price: MoneyOrVar
    size: str | None = None
    color: str | None = None
    purchased_at: str | None = None  # default: 7 days before received_at (or now)
    received_at: str | None = None
    non_returnable: bool = False


class Logistics(_Action, frozen=True, kw_only=True, tag="logistics"):
    order: str
    event: GoodsState
    defect: bool | None = None


class Balance(_Action, frozen=True, kw_only=True, tag="balance"):
    pass


class SalesReport(_Action, frozen=True, kw_only=True, tag="sales_report"):
    pass


Action = (
    Open
    | Send
    | Read
    | History
    | Chats
    | Search
    | Attachments
    | ReturnRequest
    | ReturnInitiate
    | ReturnApprove
    | ReturnReject
    | ReturnWithdraw
    | ReturnDispute
    | ReturnResolve
    | Ping
    | RegisterOrder
    | Logistics
    | Balance
    | SalesReport
)
HTTP_ACTIONS = (RegisterOrder, Logistics, Balance, SalesReport)
SYSTEM_ACTIONS = (RegisterOrder, Logistics)


class _Expect(_Step, frozen=True, kw_only=True, tag_field="expect"):
    within: float | None = None  # seconds; default: the runner's --timeout

    def describe(self) -> str:
        what = str(type(self).__struct_config__.tag)
        kind = getattr(self, "kind", None)
        return f"{self.actor} expects {what}" + (f" {kind}" if kind else "")


class ExpectEvent(_Expect, frozen=True, kw_only=True, tag="event"):
    """An event the actor has received and no earlier step matched. Every given field must
    match; `author` and `data` match as subsets."""

    kind: str | None = None
    chat: str | None = None
    seq: IntOrVar | None = None
    text: str | None = None
    author: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    capture: dict[str, str] = {}

    def expected(self) -> dict[str, Any]:
        fields = {
            "kind": self.kind,
            "chat": self.chat,
            "seq": self.seq,
            "text": self.text,
            "author": self.author,
            "data": self.data,
        }
        return {k: v for k, v in fields.items() if v is not None}


class ExpectNoEvent(ExpectEvent, frozen=True, kw_only=True, tag="no_event"):
    """No matching event arrives within `within` seconds (default 0.5)."""


class ExpectRead(_Expect, frozen=True, kw_only=True, tag="read"):
    """A read mark: the `side` read the chat up to `seq`."""

    chat: str
    side: Side
    seq: IntOrVar

    def expected(self) -> dict[str, Any]:
        return {"chat": self.chat, "side": self.side, "seq": self.seq}


Expectation = ExpectEvent | ExpectNoEvent | ExpectRead
Step = Action | Expectation


class _File(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: str
    description: str = ""
    timezone: str = "Europe/Moscow"
    vars: dict[str, Any] = {}
    actors: dict[str, ActorSpec]
    steps: list[dict[str, Any]]


class Scenario(Struct, frozen=True, kw_only=True):
    path: str
    title: str
    description: str
    timezone: ZoneInfo
    vars: dict[str, Any]
    actors: dict[str, ActorSpec]
    steps: list[Step]


# ---- loading -------------------------------------------------------------------------------

BUILTINS = ("run", "now")
ACTOR_FIELDS = ("id", "name", "role", "seller", "shop_name")


def load(path: str | Path) -> Scenario:
    """Reads and validates a scenario file; `ScenarioError` says what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from exc
    return loads(text, str(path))


def loads(text: str, path: str = "<scenario>") -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    raw = _plain(raw)
    actors = raw.get("actors")
    if isinstance(actors, dict):
        for key, actor in actors.items():
            try:
                msgspec.convert(actor, ActorSpec)
            except msgspec.ValidationError as exc:
                raise ScenarioError(f"{path}: {_where(exc, f'actors.{key}.')}") from exc
    try:
        spec = msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{path}: {_where(exc)}") from exc
    try:
        zone = ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScenarioError(f"{path}: unknown timezone {spec.timezone!r}") from exc
    steps = [_step(path, number, item) for number, item in enumerate(spec.steps, 1)]
    scenario = Scenario(
        path=path,
        title=spec.title,
        description=spec.description,
        timezone=zone,
        vars=spec.vars,
        actors=spec.actors,
        steps=steps,
    )
    _check(scenario)
    return scenario


def _step(path: str, number: int, item: dict[str, Any]) -> Step:
    where = f"{path}: step {number}"
    if ("do" in item) == ("expect" in item):
        raise ScenarioError(f"{where}: needs either `do` (an action) or `expect`, not both")
    kind: Any = Action if "do" in item else Expectation
    tag_field = "do" if "do" in item else "expect"
    known = [str(t.__struct_config__.tag) for t in kind.__args__]
    if item[tag_field] not in known:
        raise ScenarioError(
            f"{where}: unknown {tag_field} = {item[tag_field]!r} (known: {', '.join(known)})"
        )
    try:
        step: Step = msgspec.convert(item, kind)
    except msgspec.ValidationError as exc:
        label = f"do = {item['do']!r}" if "do" in item else f"expect = {item['expect']!r}"
        raise ScenarioError(f"{where} ({label}): {_where(exc)}") from exc
    return step


def _where(exc: msgspec.ValidationError, prefix: str = "") -> str:
    """msgspec's message with its `$` path made readable."""
    message = re.sub(r"Invalid (enum )?value", "unknown value", str(exc))
    return re.sub(
        r" - at `\$\.?([^`]*)`",
        lambda m: f" (at {prefix}{m.group(1)})".replace(" (at )", ""),
        message,
    )


def _check(scenario: Scenario) -> None:
    """Actors exist and may act so; every `$variable` is defined by an earlier step."""
    defined = set(BUILTINS) | set(scenario.vars) | set(scenario.actors)
    for key, spec in scenario.actors.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ScenarioError(f"{scenario.path}: actor name {key!r}: use letters, digits, _")
        if spec.role != "seller" and (spec.seller or spec.shop_name):
            raise ScenarioError(f"{scenario.path}: actor {key}: only a seller has a shop")
    for name in scenario.vars:
        if name in scenario.actors or name in BUILTINS:
            raise ScenarioError(f"{scenario.path}: variable {name!r} shadows an actor or builtin")
    for number, step in enumerate(scenario.steps, 1):
        where = f"{scenario.path}: step {number} ({step.describe()})"
        actor = scenario.actors.get(step.actor)
        if actor is None:
            known = ", ".join(sorted(scenario.actors)) or "none"
            raise ScenarioError(f"{where}: no actor {step.actor!r} (actors: {known})")
        _check_role(where, step, actor.role)
        for name in references(msgspec.structs.asdict(step)):
            if name not in defined:
                raise ScenarioError(
                    f"{where}: ${name} is not defined by [vars], an actor or an earlier step"
                )
        for name in _defines(step):
            if name in scenario.actors or name in BUILTINS:
                raise ScenarioError(f"{where}: cannot save into {name!r}: an actor or builtin")
            defined.add(name)


def _check_role(where: str, step: Step, role: Role) -> None:
    if role == "system":
        if not isinstance(step, SYSTEM_ACTIONS):
            raise ScenarioError(
                f"{where}: a system actor only registers orders and reports logistics"
            )
        return
    if isinstance(step, SYSTEM_ACTIONS):
        raise ScenarioError(f"{where}: only a system actor may do this")
    if isinstance(step, Balance) and role not in ("buyer", "seller"):
        raise ScenarioError(f"{where}: balances are for buyers and sellers")
    if isinstance(step, SalesReport) and role != "seller":
        raise ScenarioError(f"{where}: the sales report is for sellers")


def _defines(step: Step) -> Iterator[str]:
    if isinstance(step, _Action) and step.save:
        yield step.save
    yield from getattr(step, "capture", {})


def _plain(value: Any) -> Any:
    """TOML dates and times as RFC 3339 strings: every date field is then one type."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---- variables -----------------------------------------------------------------------------

_REF = re.compile(
    r"\$(?:(?P<dollar>\$)"
    r"|\{(?P<braced>[A-Za-z_][\w.]*)(?:\|(?P<filter>\w+))?\}"
    r"|(?P<plain>[A-Za-z_]\w*(?:\.\w+)*))"
)


def references(value: Any) -> Iterator[str]:
    """The root names of every `$variable` in a value."""
    if isinstance(value, str):
        for match in _REF.finditer(value):
            name = match.group("braced") or match.group("plain")
            if name:
                yield name.split(".")[0]
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


class Scope:
    """The variables of one run: builtins, [vars], actors (`$buyer.id`) and saved results.

    >>> scope = Scope({"chat": "c1", "order": {"id": "o1", "received_at": "2023-08-17T09:00:00Z"}})
    >>> scope.substitute("$chat: ${order.id}, ${order.received_at|date}, $$5")
    'c1: o1, 17.08.2023, $5'
    >>> scope.substitute("$order")["id"]
    'o1'
    """

    def __init__(self, values: Mapping[str, Any], zone: ZoneInfo | None = None) -> None:
        self.values: dict[str, Any] = dict(values)
        self.zone = zone or ZoneInfo("Europe/Moscow")

    def __setitem__(self, name: str, value: Any) -> None:
        self.values[name] = value

    def lookup(self, path: str) -> Any:
        root, *rest = path.split(".")
        if root not in self.values:
            raise ScenarioError(f"${root} is not defined")
        value = self.values[root]
        for part in rest:
            value = dig(value, part, path)
        return value

    def substitute(self, value: Any) -> Any:
        """`$name`, `${name}`, `${name.field}`, `${name|date}` in strings, recursively; a
        string that is one reference and nothing else becomes the value itself."""
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if not isinstance(value, str) or "$" not in value:
            return value
        whole = _REF.fullmatch(value)
        if whole is not None and not whole.group("dollar") and not whole.group("filter"):
            return self.lookup(whole.group("braced") or whole.group("plain"))
        return _REF.sub(self._render, value)

    def _render(self, match: re.Match[str]) -> str:
        if match.group("dollar"):
            return "$"
        value = self.lookup(match.group("braced") or match.group("plain"))
        match match.group("filter"):
            case None:
                return str(value)
            case "date":
                moment = when(str(value), datetime.now(UTC))
                return moment.astimezone(self.zone).strftime("%d.%m.%Y")
            case other:
                raise ScenarioError(f"unknown filter |{other} (known: date)")


def dig(value: Any, part: str, path: str) -> Any:
    if isinstance(value, dict) and part in value:
        return value[part]
    if isinstance(value, list) and part.isdigit() and int(part) < len(value):
        return value[int(part)]
    raise ScenarioError(f"${path}: no {part!r} in {short(value)}")


def short(value: Any, limit: int = 120) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- values --------------------------------------------------------------------------------

_RELATIVE = re.compile(r"([+-])((?:\d+(?:\.\d+)?[wdhms])+)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def when(text: str, now: datetime) -> datetime:
    """`now`, a time relative to now (`-20d`, `+1h`, `-14d2h`), or RFC 3339.

    >>> base = datetime(2024, 3, 1, tzinfo=UTC)
    >>> when("-20d", base).isoformat(), when("2023-08-17T09:00:00Z", base).isoformat()
    ('2024-02-10T00:00:00+00:00', '2023-08-17T09:00:00+00:00')
    """
    text = text.strip()
    if text == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        seconds = sum(
            float(amount) * _UNITS[unit]
            for amount, unit in re.findall(r"(\d+(?:\.\d+)?)([wdhms])", relative.group(2))
        )
        return now + timedelta(seconds=seconds if relative.group(1) == "+" else -seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ScenarioError(
            f"{text!r} is not a time: use RFC 3339, `now` or a relative time like -20d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_MONEY = re.compile(r"(-?\d[\d ]*)(?:[.,](\d{1,2}))?\s*([A-Z]{3})")


def money(value: Any) -> Money:
    """Money from a table {value, currency} (minor units) or a string like "1186 RUB" or
    "27.53 BYN" (two decimal places).

    >>> money("1 186 RUB"), money("27,53 BYN").value
    (Money(value=118600, currency='RUB'), 2753)
    """
    if isinstance(value, Money):
        return value
    if isinstance(value, str):
        found = _MONEY.fullmatch(value.strip())
        if found is None:
            raise ScenarioError(f'{value!r} is not money: write it as "1186 RUB" or a table')
        whole, fraction, currency = found.groups()
        units = int(whole.replace(" ", "")) * 100
        cents = int((fraction or "0").ljust(2, "0"))
        return Money(value=units - cents if units < 0 else units + cents, currency=currency)
    try:
        return msgspec.convert(value, Money)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{short(value)} is not money: {exc}") from None


def integer(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"`{field}` must be a number, got {short(value)}") from None
