"""Runs scenarios (`chatd.client.scenario`) against a server: one connection per actor that
chats, the HTTP API for the marketplace, steps in order, and on the first unmet expectation
a report of what was expected and what actually arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import msgspec

from chatd.client import scenario as sc
from chatd.client.client import ChatClient, Pushed, connect
from chatd.client.errors import ChatError, ClientError
from chatd.client.http import HttpApi, http_base
from chatd.client.matching import diff, matches, mismatches
from chatd.client.tokens import mint
from protocol import frames as f
from protocol.codec import Subprotocol
from protocol.events import OrderCard, Role

NO_EVENT_WAIT = 0.5
SHOWN_FRAMES = 40


@dataclass(frozen=True, slots=True)
class Settings:
    url: str  # ws://host:port/ws
    secret: str
    http: str | None = None  # default: from `url`
    subprotocol: Subprotocol = "chatd.v1.json"
    timeout: float = 5.0  # how long an expectation waits unless its step says `within`
    request_timeout: float = 15.0
    verbose: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


class Unmet(Exception):
    """A step did not go as the scenario says; `str()` is the whole report."""

    def __init__(self, where: str, reason: str, details: str = "") -> None:
        self.where = where
        self.reason = reason
        self.details = details
        text = f"{where}\n  {reason}"
        if details:
            text += "\n" + _indent(details, "  ")
        super().__init__(text)


# ---- what each actor received --------------------------------------------------------------


class Inbox:
    """Every frame pushed to one actor, and which of them steps have matched."""

    def __init__(self, client: ChatClient) -> None:
        self.frames: list[Pushed] = []
        self.used: set[int] = set()
        self.failure: ClientError | None = None
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._collect(client))

    async def _collect(self, client: ChatClient) -> None:
        try:
            async for frame in client.frames():
                self.frames.append(frame)
                self._arrived.set()
        except ClientError as exc:
            self.failure = exc
            self._arrived.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def find(self, want: Callable[[Pushed], bool]) -> int | None:
        for index, frame in enumerate(self.frames):
            if index not in self.used and want(frame):
                return index
        return None

    async def wait(self, want: Callable[[Pushed], bool], within: float) -> int | None:
        """The first unmatched frame that `want`s, waiting up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            self._arrived.clear()
            index = self.find(want)
            if index is not None or self.failure is not None:
                return index
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


@dataclass
class Actor:
    key: str
    role: Role
    id: str
    name: str
    seller: str | None
    shop_name: str | None
    subprotocol: Subprotocol
    token: Callable[[], str]
    client: ChatClient | None = None
    inbox: Inbox | None = None
    http: HttpApi | None = None

    def as_var(self) -> dict[str, Any]:
        values = {"id": self.id, "name": self.name, "role": self.role}
        if self.seller is not None:
            values["seller"] = self.seller
            values["shop_name"] = self.shop_name or self.seller
        return values

    def party(self) -> dict[str, str]:
        if self.seller is not None:
            return {"id": self.seller, "name": self.shop_name or self.seller}
        return {"id": self.id, "name": self.name}


# ---- one run of one scenario ---------------------------------------------------------------


class Run:
    def __init__(self, scenario: sc.Scenario, settings: Settings) -> None:
        self.scenario = scenario
        self.settings = settings
        self.now = datetime.now(UTC).replace(microsecond=0)
        run_id = secrets.token_hex(4)
        self.scope = sc.Scope({"run": run_id, "now": self.now.isoformat()}, scenario.timezone)
        for name, value in scenario.vars.items():
            self.scope[name] = self.scope.substitute(value)
        self.actors = {key: self._actor(key, spec) for key, spec in scenario.actors.items()}
        for key, actor in self.actors.items():
            self.scope[key] = actor.as_var()

    def _actor(self, key: str, spec: sc.ActorSpec) -> Actor:
        run = self.scope.lookup("run")

        def resolve(value: str | None, default: str) -> str:
            return str(self.scope.substitute(value if value is not None else default))

        user_id = resolve(spec.id, f"{key}-{run}")
        name = resolve(spec.name, key)
        seller = resolve(spec.seller, f"{key}-shop-{run}") if spec.role == "seller" else None
        shop_name = resolve(spec.shop_name, "") or None if spec.role == "seller" else None
        secret, role = self.settings.secret, spec.role

        def token() -> str:
            return mint(
                secret, role=role, sub=user_id, name=name, seller=seller, shop_name=shop_name
            )

        return Actor(
            key=key,
            role=role,
            id=user_id,
            name=name,
            seller=seller,
            shop_name=shop_name,
            subprotocol=spec.subprotocol or self.settings.subprotocol,
            token=token,
        )

    async def __call__(self) -> int:
        async with contextlib.AsyncExitStack() as stack:
            await self._connect(stack)
            for number, step in enumerate(self.scenario.steps, 1):
                where = f"FAIL {self.scenario.path}, step {number}: {step.describe()}"
                if step.note:
                    where += f" ({step.note})"
                try:
                    if isinstance(step, sc.ExpectEvent | sc.ExpectRead):
                        await self._expect(where, step)
                    else:
                        await self._act(where, step)
                except sc.ScenarioError as exc:
                    raise Unmet(where, str(exc)) from None
                if self.settings.verbose:
                    print(f"  {number:>3}  {step.describe()}", file=self.settings.out)
        return len(self.scenario.steps)

    async def _connect(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        base = settings.http or http_base(settings.url)
        chatting = [a for a in self.actors.values() if a.role != "system"]
        clients = [
            connect(
                settings.url,
                actor.token(),
                subprotocol=actor.subprotocol,
                token_provider=actor.token,
                request_timeout=settings.request_timeout,
            )
            for actor in chatting
        ]
        opened = await asyncio.gather(*(c.__aenter__() for c in clients), return_exceptions=True)
        for client, result in zip(clients, opened, strict=True):
            if not isinstance(result, BaseException):
                stack.push_async_callback(client.aclose)
        for result in opened:
            if isinstance(result, BaseException):
                raise result
        for actor, client in zip(chatting, clients, strict=True):
            actor.client = client
            actor.inbox = Inbox(client)
            stack.push_async_callback(actor.inbox.close)
        for actor in self.actors.values():
            actor.http = HttpApi(base, actor.token(), timeout=settings.request_timeout)
            stack.push_async_callback(actor.http.aclose)

    # ---- actions -------------------------------------------------------------------------------

    async def _act(self, where: str, step: sc.Action) -> None:
        actor = self.actors[step.actor]
        values = self.scope.substitute(_fields(step))
        try:
            reply, result = await self._perform(actor, step, values)
        except ChatError as error:
            self._refused(where, step, error)
            return
        if step.expect_error is not None:
            wanted = {"type": "error", "code": step.expect_error}
            raise Unmet(
                where,
                f"expected the error {step.expect_error}, but it went through",
                diff(wanted, reply),
            )
        if step.reply is not None:
            expected = self.scope.substitute(step.reply)
            if not matches(expected, reply):
                raise Unmet(where, "the reply differs", _mismatch_report(expected, reply))
        if step.save:
            self.scope[step.save] = result
        for name, path in step.capture.items():
            self.scope[name] = _dig(reply, path)

    def _refused(self, where: str, step: sc.Action, error: ChatError) -> None:
        got: dict[str, Any] = {"type": "error", "code": str(error.code), "message": error.message}
        if error.details:
            got["details"] = error.details
        if step.expect_error is None:
            raise Unmet(where, f"refused: {error.code}: {error.message}", _json(got))
        expected: dict[str, Any] = {"type": "error", "code": step.expect_error}
        if step.error_details is not None:
            expected["details"] = self.scope.substitute(step.error_details)
        if not matches(expected, got):
            raise Unmet(where, "a different error came back", _mismatch_report(expected, got))
        for name, path in step.capture.items():
            self.scope[name] = _dig(got, path)

    async def _perform(self, actor: Actor, step: sc.Action, v: dict[str, Any]) -> tuple[Any, Any]:
        """The reply (plain JSON values) and the step's result for `save`."""
        if isinstance(step, sc.HTTP_ACTIONS):
            return await self._http(actor, step, v)
        client = actor.client
        assert client is not None
        match step:
            case sc.Open():
                ack = await self._request(
                    client, "open", seller=self._shop(v["seller"]), order=v["order"]
                )
                return ack, ack["chat"]
            case sc.Send():
                fields = {"chat": v["chat"], "text": v["text"], "attachments": v["attachments"]}
                ack = await self._request(
                    client, "send", **fields, nonce=v["nonce"] or secrets.token_hex(16)
                )
                return ack, ack["seq"]
            case sc.Read():
                await client.read(str(v["chat"]), sc.integer(v["seq"], "seq"), confirm=True)
                return {}, None
            case sc.History():
                reply = await self._request(
                    client, "history", chat=v["chat"], before=v["before"], limit=v["limit"]
                )
                return reply, reply
            case sc.Chats():
                reply = await self._request(client, "chats", before=v["before"], limit=v["limit"])
                return reply, reply
            case sc.Search():
                reply = await self._request(client, "search", q=v["q"], chat=v["chat"])
                return reply, reply
            case sc.Attachments():
                reply = await self._request(client, "attachments", chat=v["chat"])
                return reply, reply
            case sc.ReturnRequest():
                ack = await self._request(
                    client,
                    "return.request",
                    chat=v["chat"],
                    order=v["order"],
                    comment=v["comment"],
                    attachments=v["attachments"],
                )
                return ack, ack.get("claim")
            case sc.ReturnInitiate():
                ack = await self._request(
                    client, "return.initiate", chat=v["chat"], order=v["order"]
                )
                return ack, ack.get("claim")
            case sc.ReturnApprove():
                amount = msgspec.to_builtins(sc.money(v["amount"]))
                ack = await self._request(
                    client, "return.approve", claim=v["claim"], mode=v["mode"], amount=amount
                )
                return ack, ack["seq"]
            case sc.ReturnReject():
                ack = await self._request(
                    client, "return.reject", claim=v["claim"], reason=v["reason"]
                )
                return ack, ack["seq"]
            case sc.ReturnDispute() | sc.ReturnWithdraw():
                tag = str(type(step).__struct_config__.tag)
                ack = await self._request(client, tag, claim=v["claim"])
                return ack, ack["seq"]
            case sc.ReturnResolve():
                ack = await self._request(
                    client,
                    "return.resolve",
                    claim=v["claim"],
                    decision=v["decision"],
                    mode=v["mode"],
                    comment=v["comment"],
                )
                return ack, ack["seq"]
            case sc.Ping():
                reply = await self._request(client, "ping")
                return reply, reply
        raise AssertionError(f"unhandled step {step!r}")

    async def _request(self, client: ChatClient, tag: str, **fields: Any) -> dict[str, Any]:
        try:
            frame = msgspec.convert({"type": tag, **fields}, f.ClientFrame, strict=False)
        except msgspec.ValidationError as exc:
            raise sc.ScenarioError(f"cannot make a {tag} frame: {exc}") from None
        reply: dict[str, Any] = msgspec.to_builtins(await client.request(frame))
        return reply

    async def _http(self, actor: Actor, step: sc.Action, v: dict[str, Any]) -> tuple[Any, Any]:
        api = actor.http
        assert api is not None
        match step:
            case sc.RegisterOrder():
                card = await api.register_order(self._order(v))
                body = msgspec.to_builtins(card)
                return body, body
            case sc.Logistics():
                done = await api.logistics(str(v["order"]), v["event"], v["defect"])
                body = msgspec.to_builtins(done)
                return body, body
            case sc.Balance():
                body = {"balances": msgspec.to_builtins(await api.balance())}
                return body, body
            case sc.SalesReport():
                body = {"rows": msgspec.to_builtins(await api.sales_report())}
                return body, body
        raise AssertionError(f"unhandled step {step!r}")

    def _shop(self, value: Any) -> Any:
        """A seller actor's name stands for its shop id."""
        actor = self.actors.get(value) if isinstance(value, str) else None
        return actor.seller if actor is not None and actor.seller is not None else value

    def _party(self, value: Any, field_name: str) -> dict[str, Any]:
        actor = self.actors.get(value) if isinstance(value, str) else None
        if actor is not None:
            return actor.party()
        if isinstance(value, dict):
            return value
        raise sc.ScenarioError(f"`{field_name}`: {value!r} is neither an actor nor {{id, name}}")

    def _order(self, v: dict[str, Any]) -> OrderCard:
        received = sc.when(v["received_at"], self.now) if v["received_at"] else None
        purchased = (
            sc.when(v["purchased_at"], self.now)
            if v["purchased_at"]
            else (received or self.now) - timedelta(days=7)
        )
        body = {
            "id": v["id"],
            "buyer": self._party(v["buyer"], "buyer"),
            "seller": self._party(v["seller"], "seller"),
            "article": v["article"],
            "name": v["name"],
            "brand": v["brand"],
            "price": sc.money(v["price"]),
            "size": v["size"],
            "color": v["color"],
            "purchased_at": purchased,
            "received_at": received,
            "non_returnable": v["non_returnable"],
        }
        try:
            return msgspec.convert(body, OrderCard, strict=False, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise sc.ScenarioError(f"not a valid order: {exc}") from None

    # ---- expectations --------------------------------------------------------------------------

    async def _expect(self, where: str, step: sc.ExpectEvent | sc.ExpectRead) -> None:
        actor = self.actors[step.actor]
        inbox = actor.inbox
        assert inbox is not None
        expected = self.scope.substitute(step.expected())
        if "seq" in expected:
            expected["seq"] = sc.integer(expected["seq"], "seq")
        kind: type[Any] = f.ReadMark if isinstance(step, sc.ExpectRead) else f.EventFrame

        def want(frame: Pushed) -> bool:
            return isinstance(frame, kind) and matches(expected, _plain(frame))

        if isinstance(step, sc.ExpectNoEvent):
            index = await inbox.wait(want, step.within or NO_EVENT_WAIT)
            if index is not None:
                found = _plain(inbox.frames[index])
                raise Unmet(
                    where,
                    "an event that should not come arrived",
                    _json(found) + "\n" + self._received(actor),
                )
            return
        within = step.within or self.settings.timeout
        index = await inbox.wait(want, within)
        if index is None:
            raise Unmet(
                where, self._why_not(inbox, within), self._closest(inbox, kind, expected, actor)
            )
        inbox.used.add(index)
        if isinstance(step, sc.ExpectEvent):
            got = _plain(inbox.frames[index])
            for name, path in step.capture.items():
                self.scope[name] = _dig(got, path)

    @staticmethod
    def _why_not(inbox: Inbox, within: float) -> str:
        if inbox.failure is not None:
            return f"the connection was lost: {inbox.failure}"
        return f"nothing matching arrived within {within:g} s"

    def _closest(
        self, inbox: Inbox, kind: type[Any], expected: dict[str, Any], actor: Actor
    ) -> str:
        candidates = [
            _plain(frame)
            for index, frame in enumerate(inbox.frames)
            if index not in inbox.used and isinstance(frame, kind)
        ]
        parts = [f"expected:\n{_indent(_json(expected), '  ')}"]
        if candidates:
            best = min(
                candidates,
                key=lambda got: (
                    got.get("kind") != expected.get("kind"),
                    len(mismatches(expected, got)),
                ),
            )
            label = f"{best.get('kind', 'read')} #{best.get('seq')}"
            parts.append(f"closest unmatched ({label}):\n{_indent(diff(expected, best), '  ')}")
        parts.append(self._received(actor))
        return "\n".join(parts)

    def _received(self, actor: Actor) -> str:
        inbox = actor.inbox
        assert inbox is not None
        names = {
            value: f"${name}"
            for name, value in self.scope.values.items()
            if isinstance(value, str) and len(value) > 3
        }
        lines = []
        for index, frame in enumerate(inbox.frames):
            mark = " " if index in inbox.used else "*"
            match frame:
                case f.EventFrame():
                    chat = names.get(frame.chat, frame.chat)
                    text = f"  {_clip(frame.text)}" if frame.text else ""
                    lines.append(f"{mark} event {chat}#{frame.seq} {frame.kind}{text}")
                case f.ReadMark():
                    chat = names.get(frame.chat, frame.chat)
                    lines.append(f"{mark} read  {chat} {frame.side} up to {frame.seq}")
                case f.Error():
                    lines.append(f"  error {frame.code}: {frame.message}")
        if not lines:
            return f"{actor.key} received no events"
        shown = lines[-SHOWN_FRAMES:]
        skipped = len(lines) - len(shown)
        head = f"what {actor.key} received (* = no step matched it yet)"
        if skipped:
            head += f", the last {len(shown)} of {len(lines)}"
        return head + ":\n" + "\n".join(f"  {line}" for line in shown)


# ---- running files -------------------------------------------------------------------------


async def run_scenario(scenario: sc.Scenario, settings: Settings) -> int:
    """Runs one scenario; the number of steps. Raises `Unmet` on the first unmet step."""
    return await Run(scenario, settings)()


async def run_files(paths: Sequence[str], settings: Settings) -> int:
    """Validates every file, then runs them in order; the exit status: 0 when every step of
    every file went as written, 1 on the first that did not, 2 on an invalid file."""
    try:
        scenarios = [sc.load(path) for path in paths]
    except sc.ScenarioError as exc:
        print(f"chatd bot: {exc}", file=settings.err)
        return 2
    for scenario in scenarios:
        started = time.monotonic()
        if settings.verbose:
            print(f"{scenario.path}: {scenario.title}", file=settings.out)
        try:
            steps = await run_scenario(scenario, settings)
        except Unmet as exc:
            print(str(exc), file=settings.err)
            return 1
        except (ClientError, OSError) as exc:
            print(f"FAIL {scenario.path}: {type(exc).__name__}: {exc}", file=settings.err)
            return 1
        took = time.monotonic() - started
        print(
            f"ok   {scenario.path}: {scenario.title} ({steps} steps, {took:.1f} s)",
            file=settings.out,
        )
    return 0


# ---- helpers -------------------------------------------------------------------------------


def _fields(step: sc.Action) -> dict[str, Any]:
    skip = {"actor", "note", "save", "capture", "expect_error", "error_details", "reply"}
    return {k: v for k, v in msgspec.structs.asdict(step).items() if k not in skip}


def _plain(frame: Pushed) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(frame)
    return value


def _dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = sc.dig(value, part, path)
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def _mismatch_report(expected: Any, got: Any) -> str:
    listed = "\n".join(f"- {line}" for line in mismatches(expected, got))
    return f"{listed}\n{diff(expected, got)}"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _clip(text: str, limit: int = 70) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
