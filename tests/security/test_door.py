"""The door findings of the outside attack (issue 12), over real sockets of a real server:
orders the later rules cannot compute with, bodies past the limit, tokens that never expire
or cannot be read, a token accepted on one door and refused on the other, weak secrets, and
the browser's security headers; plus the group commit, where one bad write failed its batch."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from chatd.store.base import Appended
from chatd.store.rows import LedgerRow
from chatd.store.sqlite import SqliteStore
from protocol.frames import MAX_TOKEN
from tests.e2e.harness import SECRET, ServerProcess, module_server, order_body, token, uid
from tests.security.raw import raw_socket
from tests.store.contract import plain_request

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "door") as process:
        yield process


def post_order(srv: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        srv.http + "/api/v1/orders",
        json=body,
        headers={"Authorization": "Bearer " + token("system", "marketplace")},
        timeout=10,
    )


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


# ---- 1. orders at the door -------------------------------------------------------------------


def _money(value: int, currency: str = "RUB") -> dict[str, Any]:
    return {"value": value, "currency": currency}


def _soon(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


BAD_ORDERS: dict[str, dict[str, Any]] = {
    "price_2_63": {"price": _money(2**63)},
    "price_2_63_minus_1": {"price": _money(2**63 - 1)},
    "price_past_10_12": {"price": _money(10**12 + 1)},
    "price_negative": {"price": _money(-118600)},
    "price_zero": {"price": _money(0)},
    "currency_ZZZ": {"price": _money(118600, "ZZZ")},
    "currency_gold": {"price": _money(118600, "XAU")},
    "received_before_purchased": {
        "purchased_at": "2023-08-17T09:00:00Z",
        "received_at": "2023-08-10T09:00:00Z",
    },
    "received_in_9999": {"received_at": "9999-12-31T23:59:59Z"},
    "received_two_days_ahead": {"received_at": _soon(2)},
    "purchased_in_1999": {"purchased_at": "1999-12-31T23:59:59Z"},
    "purchased_without_a_zone": {"purchased_at": "2023-08-10T09:00:00"},
}


@pytest.mark.parametrize("change", BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
def test_an_order_the_rules_cannot_compute_with_is_400_and_writes_nothing(
    srv: ServerProcess, change: dict[str, Any]
) -> None:
    good = order_body(uid("order"), uid("buyer"), uid("shop"))
    message = assert_error(post_order(srv, {**good, **change}), 400, "bad_frame")
    assert "order" in message
    # Nothing was kept under the id: the good body is new (201), not a conflict (409).
    assert post_order(srv, good).status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"price": _money(1)},
        {"price": _money(10**12, "BYN")},
        {"price": _money(99000, "KZT")},
        {"purchased_at": "2000-01-01T00:00:00Z", "received_at": "2000-01-01T00:00:00Z"},
        {"received_at": _soon(0.5)},
        {"received_at": None},
    ],
    ids=["one_kopeck", "10_12_BYN", "KZT", "from_2000", "half_a_day_ahead", "not_received"],
)
def test_an_order_at_the_bounds_is_registered(srv: ServerProcess, change: dict[str, Any]) -> None:
    body = {**order_body(uid("order"), uid("buyer"), uid("shop")), **change}
    assert post_order(srv, body).status_code == 201


async def _http_exchange(srv: ServerProcess, head: bytes, body: bytes) -> bytes:
    """Sends `head` and `body` and stops writing; what the server answered within 10 s (a
    server waiting for the rest of the body answers nothing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(head + body)
        await writer.drain()
        answer = b""
        try:
            async with asyncio.timeout(10):
                while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    answer += chunk
        except TimeoutError:
            pass
        return answer
    finally:
        writer.close()


def _head(srv: ServerProcess, length: str) -> bytes:
    auth = token("system", "marketplace")
    return (
        f"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        f"Authorization: Bearer {auth}\r\nContent-Type: application/json\r\n{length}\r\n"
    ).encode()


def _assert_413(answer: bytes) -> None:
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "too_large", body


async def test_a_300_mb_order_is_413_before_its_body_is_read(srv: ServerProcess) -> None:
    # Only 1 MiB of the announced 300 MB is ever sent: the answer must not wait for the rest.
    head = _head(srv, f"Content-Length: {300 * 1024 * 1024}\r\n")
    _assert_413(await _http_exchange(srv, head, b'{"id": "' + b"x" * (1024 * 1024)))


async def test_a_chunked_order_is_413_once_its_body_passes_the_limit(srv: ServerProcess) -> None:
    # No Content-Length: the limit is counted as chunks arrive; 1 MiB is sent of an endless one.
    chunk = b"x" * 16384
    body = b'4\r\n{"a"\r\n' + b"".join(b"4000\r\n" + chunk + b"\r\n" for _ in range(64))
    _assert_413(await _http_exchange(srv, _head(srv, "Transfer-Encoding: chunked\r\n"), body))


# ---- 2. tokens -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(payload: bytes, secret: str = SECRET) -> str:
    """An HS256 token over `payload` exactly as given (PyJWT would re-encode `1e400` and
    lone surrogates its own way)."""
    signing = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(payload)
    mac = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + _b64(mac)


def _claims(exp: str, name: str = '"Люда"') -> bytes:
    return f'{{"sub":"{uid("b")}","role":"buyer","name":{name},"exp":{exp}}}'.encode()


def http_status(srv: ServerProcess, tok: str) -> int:
    response = httpx.get(
        srv.http + "/api/v1/balance", headers={"Authorization": f"Bearer {tok}"}, timeout=10
    )
    if response.status_code != 200:
        assert_error(response, 401, "unauthorized")
    return response.status_code


async def ws_outcome(srv: ServerProcess, tok: str) -> tuple[str, int | None]:
    """The first frame's type and the close code (None while the socket stays open)."""
    async with raw_socket(srv.url) as raw:
        await raw.send_json({"type": "hello", "id": "h1", "token": tok})
        got = await raw.read_until_closed(timeout=1.5)
    first = got.frames[0]["type"] if got.frames else "nothing"
    if first == "error":
        assert got.frames[0]["code"] == "unauthorized", got.frames
    return first, got.close_code


NEVER_GOOD = {
    "exp_1e308": str(1e308),
    "exp_10_400": "1" + "0" * 400,
    "exp_1e400": "1e400",
    "exp_31_days": str(int(time.time()) + 31 * 86400),
}


@pytest.mark.parametrize("exp", NEVER_GOOD.values(), ids=NEVER_GOOD.keys())
async def test_a_token_that_lives_too_long_or_beyond_numbers_is_refused_on_both_doors(
    srv: ServerProcess, exp: str
) -> None:
    tok = raw_jwt(_claims(exp))
    assert http_status(srv, tok) == 401
    assert await ws_outcome(srv, tok) == ("error", 4001)


async def test_a_token_of_29_days_is_accepted_on_both_doors(srv: ServerProcess) -> None:
    tok = raw_jwt(_claims(str(int(time.time()) + 29 * 86400)))
    assert http_status(srv, tok) == 200
    assert await ws_outcome(srv, tok) == ("welcome", None)


@pytest.mark.parametrize("claim", ["name", "sub", "seller", "shop_name"])
async def test_a_lone_surrogate_in_a_claim_is_unauthorized_and_4001(
    srv: ServerProcess, claim: str
) -> None:
    claims: dict[str, Any] = {
        "sub": uid("op"),
        "role": "seller",
        "name": "Анна",
        "seller": uid("shop"),
        "shop_name": "Лавка",
        "exp": int(time.time()) + 600,
    }
    claims[claim] = "ab\ud800cd"
    tok = raw_jwt(json.dumps(claims).encode())  # ensure_ascii writes "\ud800" as an escape
    assert http_status(srv, tok) == 401
    assert await ws_outcome(srv, tok) == ("error", 4001)


def _token_of_length(target: int) -> str:
    """A valid buyer token `target` characters long, or one character longer (base64 moves
    in steps of four characters per three bytes)."""
    for pad in range(0, 4 * MAX_TOKEN):
        tok = token("buyer", "b-long", name="я" * pad)
        if len(tok) >= target:
            return tok
    raise AssertionError("unreachable")


async def test_a_token_is_accepted_or_refused_alike_on_http_and_ws(srv: ServerProcess) -> None:
    # /ws bounds hello.token at MAX_TOKEN characters; the 4 161-character token of the report
    # passed over HTTP. Around the bound, each token must get the same answer from both.
    outcomes = []
    for target in (MAX_TOKEN - 40, MAX_TOKEN - 2, MAX_TOKEN + 1, MAX_TOKEN + 5, 4161, 6000):
        tok = _token_of_length(target)
        accepted_http = http_status(srv, tok) == 200
        first, code = await ws_outcome(srv, tok)
        accepted_ws = first == "welcome" and code is None
        assert accepted_http == accepted_ws, (len(tok), accepted_http, first, code)
        assert accepted_http == (len(tok) <= MAX_TOKEN), len(tok)
        outcomes.append(accepted_http)
    assert True in outcomes and False in outcomes


# ---- 3. the secret ---------------------------------------------------------------------------


def chatd(*args: str, secret: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "CHATD_SECRET": secret},
    )


@pytest.mark.parametrize("secret", ["x", "s" * 31, "я" * 15], ids=["1_byte", "31", "30_utf8"])
def test_a_short_secret_is_refused_by_serve_and_token(tmp_path: Path, secret: str) -> None:
    with socket.socket() as probe:  # a free port, in case serve did start
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    served = chatd("serve", "--db", str(tmp_path / "x.db"), "--port", port, secret=secret)
    minted = chatd("token", "--role", "buyer", "--sub", "b1", "--name", "x", secret=secret)
    for result in (served, minted):
        assert result.returncode == 2, result.stderr
        assert "CHATD_SECRET" in result.stderr and "32 bytes" in result.stderr, result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "x.db").exists()


def test_a_secret_of_32_bytes_signs_tokens() -> None:
    secret = "s" * 32
    minted = chatd("token", "--role", "buyer", "--sub", "b1", "--name", "x", secret=secret)
    assert minted.returncode == 0, minted.stderr
    assert jwt.decode(minted.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "b1"


# ---- 4. headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/app.js", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/balance", 401),
        ("POST", "/api/v1/orders", 401),
        ("GET", "/no/such/page", 404),
    ],
)
def test_every_http_answer_carries_the_security_headers(
    srv: ServerProcess, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, srv.http + path, timeout=10)
    assert response.status_code == status, response.text
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


# ---- 1b. one bad write fails alone, never its batch ------------------------------------------


async def test_a_write_that_fails_for_its_own_data_fails_alone(tmp_path: Path) -> None:
    # The attack's 2^63 price reached the ledger and SQLite refused the integer inside the
    # group commit: the whole batch rolled back and every send in it was answered `internal`.
    store = SqliteStore(tmp_path / "chat.db")
    await store.open()
    try:
        at = datetime(2023, 3, 4, tzinfo=UTC)
        huge = LedgerRow("r1", "o1", "u1", "s1", 2**63, "RUB", at, "A-1", "Шарф", "Возврат")
        culprit = plain_request("c-bad", 0, rows=[huge])
        others = [plain_request(f"c{n}", 0, nonce=(f"u{n}", "n1")) for n in range(5)]
        marks = [store.set_read_mark("c0", "buyer", 1)]
        results = await asyncio.wait_for(
            asyncio.gather(
                *(store.append(r) for r in others[:2]),
                store.append(culprit),
                *(store.append(r) for r in others[2:]),
                *marks,
                return_exceptions=True,
            ),
            10,
        )
        appended = [*results[:2], *results[3:6]]
        assert isinstance(results[2], OverflowError), results[2]
        assert all(isinstance(r, Appended) and not r.duplicate for r in appended), results
        assert results[6] == 1
        for n in range(5):
            assert len(await store.read_stream(f"c{n}")) == 1
        assert await store.read_stream("c-bad") == []
        assert await store.balances("b:u1") == {}
        # The writer carries on.
        after = await asyncio.wait_for(store.append(plain_request("c-after", 0)), 5)
        assert isinstance(after, Appended)
    finally:
        await store.close()
