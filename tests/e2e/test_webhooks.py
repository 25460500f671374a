"""Webhooks against real processes (docs/protocol.md, "Webhooks"): a receiver that is a real
HTTP server fails, hangs past the timeout and goes away, and still gets every event of the
shop once per `webhook-id`, signed as the Standard Webhooks scheme says (checked with the
`standardwebhooks` package), in `seq` order per chat; a kill -9 of chatd loses nothing;
given-up events show in the deliveries; DELETE stops deliveries; private destinations are
refused at creation and at delivery without `--webhook-allow-private`."""

from __future__ import annotations

import asyncio
import base64
import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.api_keys import bearer, create_key
from tests.e2e.harness import Client, ServerProcess, connect, start_server, token, uid
from tests.e2e.webhook_receiver import Received, Receiver

pytestmark = pytest.mark.timeout(120)
# Loaded by name: the package has no type stubs, and what is used of it is one call.
jsonschema: Any = importlib.import_module("jsonschema")

# Short waits, so that a failing endpoint is tried again within the test's patience.
FAST = ("--webhook-allow-private", "--webhook-timeout", "1s")
RETRIES = "0.2s,0.3s,0.5s,1s,1s,1s,1s,1s,1s,1s,1s,1s"
# Between two looks at the deliveries over HTTP: well within the server's rate limit.
POLL = 0.25


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    process = Receiver()
    process.start()
    try:
        yield process
    finally:
        process.stop()


def operator_of(shop: str) -> str:
    return token("seller", uid("op"), "Анна", seller=shop)


def create_webhook(
    server: ServerProcess, credential: str, url: str, events: list[str] | None = None
) -> httpx.Response:
    return httpx.post(
        server.http + "/api/v1/webhooks",
        json={"url": url, "events": ["*"] if events is None else events, "description": "CRM"},
        headers=bearer(credential),
        timeout=10,
    )


def deliveries(server: ServerProcess, credential: str, endpoint: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{server.http}/api/v1/webhooks/{endpoint}/deliveries?limit=200",
        headers=bearer(credential),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


async def until(
    check: Callable[[], bool], timeout: float = 30, what: str = "", every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(every)


async def open_chat(buyer: Client, shop: str) -> str:
    ack = await buyer.request({"type": "open", "seller": shop})
    assert ack["type"] == "ack", ack
    chat: str = ack["chat"]
    return chat


async def say(buyer: Client, chat: str, count: int, label: str) -> None:
    for n in range(count):
        ack = await buyer.request({"type": "send", "chat": chat, "text": f"{label} номер {n}"})
        assert ack["type"] == "ack", ack


def events_by_id(received: list[Received], secret: str) -> dict[str, tuple[str, int]]:
    """Every request verified with the `standardwebhooks` package (which raises on a bad
    signature or timestamp); the event (chat, seq) each `webhook-id` carried, checking that
    every attempt under one id carried the very same body."""
    verifier = Webhook(secret)
    bodies: dict[str, bytes] = {}
    events: dict[str, tuple[str, int]] = {}
    for request in received:
        verifier.verify(request.body, request.headers)
        first = bodies.setdefault(request.webhook_id, request.body)
        assert first == request.body, "a repeated webhook-id carried another body"
        data = request.payload["data"]
        events[request.webhook_id] = (data["chat"], data["seq"])
    return events


def assert_once_each_in_order(
    received: list[Received], secret: str, expected: dict[str, int]
) -> None:
    """Each event of each chat (`expected`: chat -> its last seq) reached the receiver under
    exactly one `webhook-id`, and the first arrivals of the ids are in `seq` order per chat."""
    events = events_by_id(received, secret)
    ids_per_event: dict[tuple[str, int], set[str]] = defaultdict(set)
    for webhook_id, event in events.items():
        ids_per_event[event].add(webhook_id)
    wanted = {(chat, seq) for chat, last in expected.items() for seq in range(1, last + 1)}
    assert set(ids_per_event) == wanted
    assert all(len(ids) == 1 for ids in ids_per_event.values()), ids_per_event
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for request in received:
        if request.webhook_id not in seen:
            seen.add(request.webhook_id)
            chat, seq = events[request.webhook_id]
            order[chat].append(seq)
    assert order == {chat: list(range(1, last + 1)) for chat, last in expected.items()}


def matches_the_document(server: ServerProcess, path: str, answer: httpx.Response) -> None:
    """`answer` has a status /openapi.json gives for `path`, and a body its schema takes."""
    document = httpx.get(server.http + "/openapi.json", timeout=10).json()
    responses = document["paths"][path][answer.request.method.lower()]["responses"]
    assert str(answer.status_code) in responses, answer.text
    content = responses[str(answer.status_code)].get("content", {}).get("application/json")
    if content is not None:
        schema = {**content["schema"], "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(answer.json())


def history(server: ServerProcess, credential: str, chat: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{server.http}/api/v1/chats/{chat}/history?limit=100",
        headers=bearer(credential),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


# ---- delivery through failures, a timeout and a restart of the receiver ----------------------


async def test_a_receiver_that_fails_hangs_and_restarts_gets_every_event_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = start_server(tmp_path / "chatd.db", *FAST, "--webhook-retries", RETRIES)
    try:
        shop = uid("shop")
        operator = operator_of(shop)
        made = create_webhook(server, operator, receiver.url())
        assert made.status_code == 201, made.text
        hook = made.json()
        assert set(hook) == {"id", "url", "events", "description", "created_at", "secret"}
        assert hook["url"] == receiver.url() and hook["events"] == ["*"]
        assert hook["secret"].startswith("whsec_")
        assert len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) >= 24
        secret = hook["secret"]
        matches_the_document(server, "/api/v1/webhooks", made)
        # Listed for the shop without its secret; not for another shop.
        listed = httpx.get(server.http + "/api/v1/webhooks", headers=bearer(operator), timeout=10)
        matches_the_document(server, "/api/v1/webhooks", listed)
        assert listed.json() == {"webhooks": [{k: v for k, v in hook.items() if k != "secret"}]}
        other = operator_of(uid("shop"))
        assert httpx.get(
            server.http + "/api/v1/webhooks", headers=bearer(other), timeout=10
        ).json() == {"webhooks": []}

        async with (
            connect(server, token("buyer", uid("buyer"))) as first,
            connect(server, token("buyer", uid("buyer"))) as second,
        ):
            # The first two requests fail with 500.
            receiver.fail_next = 2
            one = await open_chat(first, shop)
            two = await open_chat(second, shop)
            await say(first, one, 3, "первый")
            await say(second, two, 2, "второй")
            await until(lambda: len({r.webhook_id for r in receiver.snapshot()}) == 7)

            # One request is held past chatd's 1 s timeout, then answered too late.
            receiver.hang_next, receiver.hang_for = 1, 2.5
            await say(first, one, 2, "после")
            await until(lambda: len({r.webhook_id for r in receiver.snapshot()}) == 9)

            # The receiver goes away while events keep coming, and comes back.
            receiver.stop()
            await say(second, two, 3, "пока нет")
            await say(first, one, 1, "пока нет")
            await asyncio.sleep(1.5)
            receiver.start()
            await until(lambda: len({r.webhook_id for r in receiver.snapshot()}) == 13)

        await asyncio.sleep(0.5)  # anything repeated late would arrive meanwhile
        received = receiver.snapshot()
        assert_once_each_in_order(received, secret, {one: 7, two: 6})
        assert len(received) > 13, "the failures made chatd try some events again"

        # The body is the event frame as the shop sees it, under `type` and `timestamp`.
        frames = {
            (e["chat"], e["seq"]): e for c in (one, two) for e in history(server, operator, c)
        }
        for request in received:
            payload = request.payload
            data = payload["data"]
            assert data == frames[(data["chat"], data["seq"])]
            assert payload["type"] == data["kind"] and payload["timestamp"] == data["at"]
            assert request.headers["webhook-id"].startswith(hook["id"])

        # The deliveries show each failure and what became of it.
        log = deliveries(server, operator, hook["id"])
        path = "/api/v1/webhooks/{webhook}/deliveries"
        answer = httpx.get(
            f"{server.http}/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(operator)
        )
        matches_the_document(server, path, answer)
        errors = {entry["error"] for entry in log if entry["status"] == "retrying"}
        assert "HTTP 500" in errors
        assert "no answer within 1 s" in errors
        assert any(e and e.startswith("ConnectError") for e in errors), errors
        delivered = [e for e in log if e["status"] == "delivered"]
        assert len(delivered) == 13
        assert {e["response_status"] for e in delivered} == {200}
        assert set(log[0]) == {
            "webhook_id",
            "event",
            "chat",
            "seq",
            "attempt",
            "status",
            "time",
            "response_status",
            "error",
        }
    finally:
        server.stop()


# ---- kill -9 ---------------------------------------------------------------------------------


async def test_a_kill_9_during_deliveries_loses_none(tmp_path: Path, receiver: Receiver) -> None:
    args = (*FAST, "--webhook-retries", RETRIES)
    server = start_server(tmp_path / "chatd.db", *args)
    shop = uid("shop")
    operator = operator_of(shop)
    try:
        hook = create_webhook(server, operator, receiver.url()).json()
        # A slow endpoint: deliveries are still under way when the server dies.
        receiver.delay = 0.15
        async with connect(server, token("buyer", uid("buyer"))) as buyer:
            chat = await open_chat(buyer, shop)
            await say(buyer, chat, 20, "до сбоя")
        await until(lambda: len(receiver.snapshot()) >= 3)
        server.kill()
        got = len({r.webhook_id for r in receiver.snapshot()})
        assert got < 21, "the kill came after every delivery: the test proves nothing"

        server = start_server(tmp_path / "chatd.db", *args)
        # The dead process's lease runs out (10 s), and the new one resumes from the cursor.
        await until(lambda: len({r.webhook_id for r in receiver.snapshot()}) == 21, timeout=60)
        await asyncio.sleep(0.5)
        assert_once_each_in_order(receiver.snapshot(), hook["secret"], {chat: 21})
    finally:
        server.stop()


# ---- giving up, choosing kinds, deleting -----------------------------------------------------


async def test_given_up_events_show_in_the_deliveries_and_delete_stops_deliveries(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = start_server(tmp_path / "chatd.db", *FAST, "--webhook-retries", "0.1s,0.2s")
    try:
        shop = uid("shop")
        operator = operator_of(shop)
        failing = create_webhook(server, operator, receiver.url("/fail"), ["message"]).json()
        working = create_webhook(server, operator, receiver.url("/ok")).json()
        assert failing["events"] == ["message"]

        async with connect(server, token("buyer", uid("buyer"))) as buyer:
            chat = await open_chat(buyer, shop)
            await say(buyer, chat, 2, "сообщение")
            await until(lambda: len(receiver.snapshot("/ok")) == 3)

            def settled() -> list[dict[str, Any]]:
                return [
                    e
                    for e in deliveries(server, operator, failing["id"])
                    if e["status"] == "failed"
                ]

            await until(lambda: len(settled()) == 2, what="both messages given up", every=POLL)
            log = deliveries(server, operator, failing["id"])
            # Newest first: per message, two failed tries and the last, given up.
            assert [(e["seq"], e["attempt"], e["status"]) for e in reversed(log)] == [
                (2, 1, "retrying"),
                (2, 2, "retrying"),
                (2, 3, "failed"),
                (3, 1, "retrying"),
                (3, 2, "retrying"),
                (3, 3, "failed"),
            ]
            assert {(e["event"], e["response_status"], e["error"]) for e in log} == {
                ("message", 500, "HTTP 500")
            }
            # Only the kinds asked for: chat.opened never went to the failing endpoint.
            fails = receiver.snapshot("/fail")
            assert {r.payload["type"] for r in fails} == {"message"}
            assert len(fails) == 6

            gone = httpx.delete(
                f"{server.http}/api/v1/webhooks/{working['id']}",
                headers=bearer(operator),
                timeout=10,
            )
            assert gone.status_code == 204, gone.text
            again = httpx.delete(
                f"{server.http}/api/v1/webhooks/{working['id']}",
                headers=bearer(operator),
                timeout=10,
            )
            assert again.status_code == 404
            listed = httpx.get(server.http + "/api/v1/webhooks", headers=bearer(operator))
            assert [h["id"] for h in listed.json()["webhooks"]] == [failing["id"]]

            await say(buyer, chat, 1, "после удаления")
            # The endpoint still there takes it up; the deleted one gets nothing more.
            await until(lambda: len(settled()) == 3, what="the third message given up", every=POLL)
            await asyncio.sleep(0.5)
            assert len(receiver.snapshot("/ok")) == 3
    finally:
        server.stop()


# ---- who may, and where to ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without --webhook-allow-private."""
    process = start_server(Path(tmp_path_factory.mktemp("strict")) / "chatd.db")
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://crm.example/hook",
        "file:///etc/passwd",
        "https://user:secret@93.184.215.14/hook",
        "not a url",
    ],
)
def test_private_and_malformed_destinations_are_refused_at_creation(
    strict: ServerProcess, url: str
) -> None:
    operator = operator_of(uid("shop"))
    made = create_webhook(strict, operator, url)
    assert made.status_code == 400, made.text
    assert made.json()["error"]["code"] == "bad_frame"
    listed = httpx.get(strict.http + "/api/v1/webhooks", headers=bearer(operator), timeout=10)
    assert listed.json() == {"webhooks": []}


def test_bad_event_lists_are_refused(strict: ServerProcess) -> None:
    operator = operator_of(uid("shop"))
    for events in ([], ["*", "message"], ["message", "no.such.kind"], ["order.registered"]):
        made = create_webhook(strict, operator, "https://93.184.215.14/hook", events)
        assert made.status_code == 400, (events, made.text)


def test_only_a_shop_with_chat_read_manages_webhooks(strict: ServerProcess) -> None:
    shop = uid("shop")
    operator = operator_of(shop)
    writer = create_key(strict, operator, "бот", ("chat:write",))["key"]
    reader = create_key(strict, operator, "CRM", ("chat:read",))["key"]
    public = "https://93.184.215.14/hook"
    for credential in (writer, token("buyer", uid("b")), token("manager", uid("m"))):
        refused = create_webhook(strict, credential, public)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    made = create_webhook(strict, reader, public)
    assert made.status_code == 201, made.text
    # The key acts as its shop: the operator sees the endpoint, another shop cannot touch it.
    listed = httpx.get(strict.http + "/api/v1/webhooks", headers=bearer(operator), timeout=10)
    assert [h["id"] for h in listed.json()["webhooks"]] == [made.json()["id"]]
    other = operator_of(uid("shop"))
    for method, path in (("DELETE", ""), ("GET", "/deliveries")):
        answer = httpx.request(
            method,
            f"{strict.http}/api/v1/webhooks/{made.json()['id']}{path}",
            headers=bearer(other),
            timeout=10,
        )
        assert answer.status_code == 404, answer.text
    gone = httpx.delete(
        f"{strict.http}/api/v1/webhooks/{made.json()['id']}", headers=bearer(operator), timeout=10
    )
    assert gone.status_code == 204


async def test_a_private_destination_is_refused_at_delivery_too(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An endpoint made while private destinations were allowed is not sent to once they are
    not: the check is made again at every attempt."""
    db = tmp_path / "chatd.db"
    shop = uid("shop")
    operator = operator_of(shop)
    allowed = start_server(db, *FAST)
    try:
        hook = create_webhook(allowed, operator, receiver.url()).json()
    finally:
        allowed.stop()
    server = start_server(db, "--webhook-timeout", "1s", "--webhook-retries", "0.1s")
    try:
        async with connect(server, token("buyer", uid("buyer"))) as buyer:
            await open_chat(buyer, shop)

        def given_up() -> list[dict[str, Any]]:
            return [e for e in deliveries(server, operator, hook["id"]) if e["status"] == "failed"]

        await until(lambda: len(given_up()) == 1, what="chat.opened given up", every=POLL)
        answer = httpx.get(
            f"{server.http}/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(operator)
        )
        matches_the_document(server, "/api/v1/webhooks/{webhook}/deliveries", answer)
        error = given_up()[0]["error"]
        assert error.startswith("destination refused: 127.0.0.1 resolves to 127.0.0.1"), error
        assert receiver.snapshot() == []
    finally:
        server.stop()
