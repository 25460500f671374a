"""Tokens signed by the marketplace against real servers (`chatd serve --jwt-public-key`):
RS256, ES256 and EdDSA accepted on HTTP and `/ws` given a PEM file and given a JWKS document
(through CHATD_JWT_PUBLIC_KEY); forged tokens, `alg: none` and HS256 keyed with the public
key refused on both doors; a key file chatd cannot use stops it at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.api_keys import bearer, closed_within, raw_socket
from tests.e2e.harness import SECRET, ServerProcess, connect, token, uid
from tests.marketplace_keys import (
    ALGORITHMS,
    Signer,
    hs256_keyed_with,
    jwks,
    private_pem,
    unsigned_token,
)

pytestmark = pytest.mark.timeout(60)

SIGNERS = {algorithm: Signer.new(algorithm) for algorithm in ALGORITHMS}
# The JWKS names its keys; the marketplace's tokens then name theirs.
NAMED = {
    algorithm: Signer(algorithm, s.key, kid=f"mp-{algorithm}") for algorithm, s in SIGNERS.items()
}


@pytest.fixture(scope="module")
def pem_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("pem")
    keys = root / "marketplace.pem"
    keys.write_text("".join(s.pem() for s in SIGNERS.values()))
    server = ServerProcess(db=root / "chatd.db", extra_args=("--jwt-public-key", str(keys)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jwks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("jwks")
    keys = root / "marketplace.jwks.json"
    keys.write_text(jwks(*NAMED.values()))
    server = ServerProcess(db=root / "chatd.db")
    # Through the environment, as a container would set it.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHATD_JWT_PUBLIC_KEY", str(keys))
        server.start()
    try:
        yield server
    finally:
        server.stop()


def balance(server: ServerProcess, credential: str) -> httpx.Response:
    return httpx.get(server.http + "/api/v1/balance", headers=bearer(credential), timeout=10)


async def accepted(server: ServerProcess, signer: Signer) -> None:
    buyer = uid("buyer")
    signed = signer.token(role="buyer", sub=buyer, name="Люда")
    response = balance(server, signed)
    assert response.status_code == 200, response.text
    async with connect(server, signed) as client:
        assert client.welcome["user"]["id"] == buyer
        assert client.welcome["user"]["name"] == "Люда"
        # The same user as with a token signed by the secret: one chat list, one feed.
        shop = uid("shop")
        opened = await client.request({"type": "open", "seller": shop})
        assert opened["type"] == "ack", opened
    async with connect(server, token("buyer", buyer)) as same:
        chats = await same.request({"type": "chats"})
        assert [c["chat"] for c in chats["chats"]] == [opened["chat"]]
    # A seller's token names its shop as today's do.
    seller = signer.token(role="seller", sub=uid("op"), name="Анна", seller=shop)
    async with connect(server, seller) as operator:
        assert operator.welcome["user"]["seller"] == shop


async def refused(server: ServerProcess, credential: str) -> None:
    response = balance(server, credential)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    async with raw_socket(server, credential) as (ws, answer):
        assert answer["type"] == "error" and answer["code"] == "unauthorized", answer
        assert (await closed_within(ws, 5))[0] == 4001


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_marketplace_token_is_accepted_with_a_pem_file(
    pem_server: ServerProcess, algorithm: str
) -> None:
    await accepted(pem_server, SIGNERS[algorithm])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_marketplace_token_is_accepted_with_a_jwks_document(
    jwks_server: ServerProcess, algorithm: str
) -> None:
    await accepted(jwks_server, NAMED[algorithm])


def forgeries() -> dict[str, str]:
    rsa = SIGNERS["RS256"]
    return {
        "alg_none": unsigned_token(role="manager", sub="intruder"),
        "hs256_keyed_with_the_pem": hs256_keyed_with(rsa.pem().encode(), role="manager"),
        "hs256_keyed_with_the_jwks": hs256_keyed_with(jwks(*NAMED.values()).encode()),
        **{
            f"{algorithm}_of_another_key": Signer.new(algorithm).token() for algorithm in ALGORITHMS
        },
        "expired": SIGNERS["ES256"].token(exp=1),
        "unknown_role": SIGNERS["EdDSA"].token(role="admin"),
        "unknown_kid": Signer("ES256", SIGNERS["ES256"].key, kid="nobody").token(),
    }


@pytest.mark.parametrize("name", list(forgeries()))
async def test_forged_tokens_are_refused_on_both_doors(
    pem_server: ServerProcess, jwks_server: ServerProcess, name: str
) -> None:
    forged = forgeries()[name]
    for server in (pem_server, jwks_server):
        if name == "unknown_kid" and server is pem_server:
            continue  # a PEM names no kid: every key of the algorithm is tried, and one fits
        await refused(server, forged)


async def test_the_secret_still_signs_tokens(pem_server: ServerProcess) -> None:
    assert balance(pem_server, token("buyer", uid("buyer"))).status_code == 200


async def test_without_the_option_a_marketplace_token_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(db=tmp_path / "chatd.db")
    server.start()
    try:
        await refused(server, SIGNERS["RS256"].token())
    finally:
        server.stop()


def test_a_key_file_chatd_cannot_use_stops_it_with_status_2(tmp_path: Path) -> None:
    cases = {
        "absent.pem": None,
        "private.pem": private_pem(SIGNERS["ES256"].key),
        "empty.json": json.dumps({"keys": []}),
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        result = subprocess.run(
            [sys.executable, "-m", "chatd", "serve", "--db", str(tmp_path / "x.db"),
             "--jwt-public-key", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHATD_SECRET": SECRET},
        )  # fmt: skip
        assert result.returncode == 2, (name, result.stderr)
        assert f"--jwt-public-key {path}" in result.stderr, result.stderr
