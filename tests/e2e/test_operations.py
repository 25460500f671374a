"""What an operator reads of a running server, over real sockets: the JSON log (a line per
connection with its close code, a session id that error frames carry too, no token and no
message text in it), /metrics (the new families move under a small scenario, and answer only
the addresses allowed), /livez and /readyz."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.api_keys import bearer, create_key
from tests.e2e.harness import ServerProcess, connect, token, uid

# Distinctive enough that finding them anywhere in the log can only mean they were logged.
TEXT = "Сообщение-кенгуру-ксилофон для проверки журнала"


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ops")
    # --metrics-allow as a flag here; the environment's CHATD_METRICS_ALLOW is tested below.
    server = ServerProcess(
        db=root / "chatd.db",
        extra_args=(
            "--log-level", "info", "--log-format", "json", "--metrics-allow", "127.0.0.0/8",
        ),
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the server's log, each of which must be one JSON object."""
    lines = []
    for raw in server.log_path.read_text().splitlines():
        line = json.loads(raw)
        assert {"ts", "level", "logger", "msg"} <= set(line), raw
        lines.append(line)
    return lines


def lines_of(server: ServerProcess, session: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(server) if line.get("session") == session]


async def wait_for_line(
    server: ServerProcess, session: str, event: str, timeout: float = 5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in lines_of(server, session) if line.get("event") == event]
        if found:
            assert len(found) == 1, found
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event} line for {session}: {lines_of(server, session)}")
        await asyncio.sleep(0.02)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: ServerProcess, host: str = "127.0.0.1") -> Samples:
    answer = httpx.get(f"http://{host}:{server.port}/metrics", timeout=5)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# ---- logs ---------------------------------------------------------------------------------------


async def test_each_connection_logs_one_json_line_open_and_one_closed_with_its_code(
    ops: ServerProcess,
) -> None:
    buyer_id, shop = uid("buyer"), uid("shop")
    async with connect(ops, token("buyer", buyer_id)) as buyer:
        session = buyer.welcome["session"]
        opened = await buyer.request({"type": "open", "seller": shop})
        sent = await buyer.request({"type": "send", "chat": opened["chat"], "text": TEXT})
        assert sent["type"] == "ack", sent
        missing = await buyer.request({"type": "history", "chat": "no-such-chat"})
        assert missing["code"] == "not_found"
        await buyer.send_raw("{not json")
        bad = await buyer.next_frame("error")
        assert bad["code"] == "bad_frame"
        # The session of the welcome is in the details of every error frame it is sent.
        assert missing["details"]["session"] == bad["details"]["session"] == session
    closed = await wait_for_line(ops, session, "ws_close")
    assert closed["msg"] == f"ws closed {session}: 1000 by peer" and closed["level"] == "info"
    assert (closed["code"], closed["by"]) == (1000, "peer")
    assert (closed["user"], closed["role"], closed["subprotocol"]) == (
        buyer_id,
        "buyer",
        "chatd.v1.json",
    )
    # hello, open, send, history and the bad frame; welcome, two acks, the event, two errors.
    assert closed["frames_in"] == 5
    assert closed["frames_out"] >= 5
    assert closed["errors"] == {"not_found": 1, "bad_frame": 1}
    assert 0 < closed["duration"] < 10
    opened_line = await wait_for_line(ops, session, "ws_open")
    assert (opened_line["user"], opened_line["role"], opened_line["resumed"]) == (
        buyer_id,
        "buyer",
        False,
    )
    # The first bad frame of a connection has a line of its own, with the same session.
    assert [line["event"] for line in lines_of(ops, session)] == [
        "ws_open",
        "ws_bad_frame",
        "ws_close",
    ]


async def test_a_close_by_the_server_and_a_refused_hello_name_their_codes(
    ops: ServerProcess,
) -> None:
    # A token that expires while the socket is open: the server closes it with 4001.
    async with connect(ops, token("buyer", uid("buyer"), ttl=2.0)) as buyer:
        session = buyer.welcome["session"]
        await asyncio.wait_for(buyer.closed.wait(), 5)
    closed = await wait_for_line(ops, session, "ws_close")
    assert (closed["code"], closed["by"], closed["reason"]) == (4001, "server", "token expired")

    bad_token = token("buyer", uid("buyer"), secret="another-secret-" + "y" * 24)
    async with websockets.connect(ops.url, subprotocols=["chatd.v1.msgpack"]) as ws:  # type: ignore[list-item]
        await ws.send(msgspec.msgpack.encode({"type": "hello", "token": bad_token, "id": "h"}))
        refusal = msgspec.msgpack.decode(await ws.recv(decode=False))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4001
    assert refusal["code"] == "unauthorized"
    refused = await wait_for_line(ops, refusal["details"]["session"], "ws_refused")
    assert (refused["code"], refused["by"], refused["subprotocol"]) == (
        4001,
        "server",
        "chatd.v1.msgpack",
    )
    assert refused["refused"] == refusal["message"]
    assert refused["errors"] == {"unauthorized": 1}
    assert "user" not in refused


async def test_no_token_key_or_message_text_reaches_the_log(ops: ServerProcess) -> None:
    buyer_id, shop, operator = uid("buyer"), uid("shop"), uid("op")
    buyer_token = token("buyer", buyer_id)
    seller_token = token("seller", operator, seller=shop)
    key = create_key(ops, seller_token, scopes=("chat:read", "chat:write"))["key"]
    async with connect(ops, buyer_token) as buyer, connect(ops, key) as by_key:
        opened = await buyer.request({"type": "open", "seller": shop})
        await buyer.request({"type": "send", "chat": opened["chat"], "text": TEXT})
        # Refused, with the text in the frame: the error's line must not carry it either.
        await buyer.request({"type": "send", "chat": "no-such-chat", "text": TEXT})
        await by_key.wait_events(2)
    # HTTP: the same credentials in good and bad requests, and the text in a body.
    async with httpx.AsyncClient(base_url=ops.http, timeout=10) as http:
        assert (await http.get("/api/v1/chats", headers=bearer(key))).status_code == 200
        for bad in (buyer_token + "x", key + "x"):
            assert (await http.get("/api/v1/chats", headers=bearer(bad))).status_code == 401
        answer = await http.post(
            "/api/v1/chats/no-such-chat/messages",
            headers=bearer(buyer_token),
            json={"text": TEXT},
        )
        assert answer.status_code == 404, answer.text
    await asyncio.sleep(0.2)
    text = ops.log_path.read_text()
    bad_requests = [line for line in log_lines(ops) if line.get("event") == "http_bad_request"]
    assert {(line["status"], line["route"]) for line in bad_requests} >= {
        (401, "/api/v1/chats"),
        (404, "/api/v1/chats/{chat}/messages"),
    }
    for secret in (buyer_token, seller_token, key, TEXT):
        for part in {secret, *secret.split("."), *secret.split()}:
            if len(part) >= 8:  # a JWT's parts, the key, the text's words
                assert part not in text, f"{part[:12]}... is in the log"


# ---- metrics ------------------------------------------------------------------------------------


async def test_the_metrics_move_under_a_scenario(ops: ServerProcess) -> None:
    before = scrape(ops)
    buyer_token = token("buyer", uid("buyer"))
    async with connect(ops, buyer_token) as buyer:
        opened = await buyer.request({"type": "open", "seller": uid("shop")})
        for n in range(3):
            await buyer.request({"type": "send", "chat": opened["chat"], "text": f"привет {n}"})
        await buyer.send_raw("[]")
        await buyer.next_frame("error")
    async with httpx.AsyncClient(base_url=ops.http, timeout=10) as http:
        assert (await http.get("/api/v1/chats", headers=bearer(buyer_token))).status_code == 200
        assert (await http.get("/api/v1/chats")).status_code == 401
        assert (await http.get("/no/such/page")).status_code == 404
    await asyncio.sleep(1.5)  # the background checkpoint runs a second after commits
    after = scrape(ops)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chatd_frames_in_total", type="send") == 3
    assert moved("chatd_errors_total", transport="ws", code="bad_frame") == 1
    assert moved("chatd_errors_total", transport="http", code="unauthorized") == 1
    assert moved("chatd_ws_closes_total", code="1000", by="peer") == 1
    assert moved("chatd_ws_accepted_total") == 1
    ok = {"method": "GET", "route": "/api/v1/chats", "status": "200"}
    assert moved("chatd_http_requests_total", **ok) == 1
    assert moved("chatd_http_requests_total", **{**ok, "status": "401"}) == 1
    assert moved("chatd_http_request_seconds_count", route="/api/v1/chats") == 2
    # A path no route takes is one label, whatever the path.
    assert moved("chatd_http_requests_total", method="GET", route="/*", status="404") == 1
    assert moved("chatd_append_batch_size_count") >= 1
    assert moved("chatd_append_batch_size_sum") >= 4  # the open and three sends
    assert moved("chatd_sqlite_checkpoint_seconds_count") >= 1
    # The loop's lateness is sampled every half second, so the 1.5 s above hold samples.
    assert moved("chatd_event_loop_lag_seconds_count") >= 2
    assert value(after, "chatd_sqlite_wal_bytes") >= 0
    assert ("chatd_sqlite_wal_bytes", frozenset()) in after
    assert value(after, "chatd_hub_up") == 1
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "python_gc_collections_total", generation="0") >= 0
    assert any(name == "python_info" for name, _ in after)


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only a route is chosen
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _metrics_status(server: ServerProcess, host: str) -> int:
    return httpx.get(f"http://{host}:{server.port}/metrics", timeout=5).status_code


def test_metrics_answer_loopback_only_by_default_and_what_metrics_allow_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = _outside_address()
    default = ServerProcess(db=tmp_path / "a.db", extra_args=("--host", "0.0.0.0"))
    with default:
        assert _metrics_status(default, "127.0.0.1") == 200
        if outside is not None:
            refused = httpx.get(f"http://{outside}:{default.port}/metrics", timeout=5)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "forbidden"
    # From the environment, as a container is configured; loopback is then refused.
    allowed = f"{outside}/32" if outside is not None else "10.255.255.0/24"
    monkeypatch.setenv("CHATD_METRICS_ALLOW", allowed)
    told = ServerProcess(db=tmp_path / "b.db", extra_args=("--host", "0.0.0.0"))
    with told:
        assert _metrics_status(told, "127.0.0.1") == 403
        if outside is not None:
            assert _metrics_status(told, outside) == 200


def test_a_bad_metrics_allow_is_refused_naming_the_option(tmp_path: Path) -> None:
    server = ServerProcess(db=tmp_path / "d.db", extra_args=("--metrics-allow", "10.0.0.300/8"))
    with pytest.raises(RuntimeError, match="--metrics-allow"):
        server.start(timeout=10)


# ---- health -------------------------------------------------------------------------------------


def test_livez_and_readyz_answer_when_the_store_and_hub_do(ops: ServerProcess) -> None:
    http = httpx.Client(base_url=ops.http, timeout=5)
    live = http.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"store": "ok", "hub": "ok"}}
    assert http.get("/healthz").json() == {"status": "ok"}
