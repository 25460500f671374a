"""The command line: demo data, rebuild, tokens and the dev links."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chatd import auth
from chatd.launcher import free_port
from tests.e2e.harness import SECRET, ServerProcess, connect, token

OPERATOR = token("seller", "op-anna", "Анна", seller="shop-kunchenko")


def chatd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_demo_loads_the_portal_examples_once(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert "demo data loaded" in chatd("demo", "--db", str(db)).stdout
    assert "nothing loaded" in chatd("demo", "--db", str(db)).stdout
    server = ServerProcess(db=db)
    server.start()
    try:
        async with connect(server, OPERATOR) as shop:
            page = await shop.request({"type": "chats"})
            names = [c["buyer"]["name"] for c in page["chats"]]
            assert names == [
                "Тимур",
                "Марина",
                "Иванов Иван Иванович",
                "Люда",
                "Владислав",
                "Светлана",
            ]
            timur = page["chats"][0]
            assert timur["seller"]["name"] == "ИП Кунченко С.А."
            assert sorted(c["state"] for c in timur["claims"]) == ["rejected", "requested"]
            lyuda = page["chats"][3]
            assert lyuda["last"]["text"] == "Здравствуйте, товар не отправили."
            assert lyuda["unread"] == 1
            assert lyuda["last"]["at"] == "2023-03-04T07:01:00Z"  # 10:01 in Moscow
            history = await shop.request({"type": "history", "chat": timur["chat"]})
            texts = [e.get("text") for e in history["events"]]
            assert "Процедура возврата отменена продавцом." in texts
            assert (
                'Здравствуйте! Хочу вернуть товар "Юбка короткая плиссе со складками, бренд '
                'SK - Line, размер S, артикул 140158860, товар получен 17.08.2023"'
            ) in texts
            tabs = await shop.request({"type": "attachments", "chat": timur["chat"]})
            prices = {o["order"]["article"]: o["order"]["price"] for o in tabs["orders"]}
            assert prices == {
                "140158860": {"value": 118600, "currency": "RUB"},
                "170589710": {"value": 2753, "currency": "BYN"},
            }
            # The skirt has a product photo, uploaded beside the database where the server
            # looks for files; the film has none.
            photos = {o["order"]["article"]: o["order"].get("photo") for o in tabs["orders"]}
            assert photos["170589710"] is None
            picture = httpx.get(
                f"{server.http}/api/v1/files/{photos['140158860']}",
                headers={"Authorization": f"Bearer {OPERATOR}"},
                timeout=10,
            )
            assert picture.status_code == 200, picture.text
            assert picture.headers["content-type"] == "image/png"
            assert picture.content.startswith(b"\x89PNG\r\n\x1a\n")
        manager = token("manager", "mgr-1", "Менеджер")
        async with connect(server, manager) as mgr:
            disputed = await mgr.request({"type": "chats"})
            assert [c["buyer"]["name"] for c in disputed["chats"]] == ["Марина"]
            assert disputed["chats"][0]["claims"][0]["state"] == "disputed"
    finally:
        server.stop()


async def test_rebuild_gives_the_same_answers(tmp_path: Path) -> None:
    db = tmp_path / "rebuild.db"
    chatd("demo", "--db", str(db))
    server = ServerProcess(db=db)
    server.start()
    buyer = token("buyer", "buyer-timur", "Тимур")

    async def answers() -> dict[str, object]:
        async with connect(server, OPERATOR) as shop, connect(server, buyer) as timur:
            chats = await shop.request({"type": "chats"})
            result: dict[str, object] = {"shop chats": chats["chats"]}
            result["buyer chats"] = (await timur.request({"type": "chats"}))["chats"]
            result["search"] = (await shop.request({"type": "search", "q": "возврат"}))["events"]
            for chat in chats["chats"]:
                tabs = await shop.request({"type": "attachments", "chat": chat["chat"]})
                result[chat["chat"]] = {k: tabs[k] for k in ("orders", "photos", "files")}
            return result

    try:
        async with connect(server, OPERATOR) as shop:
            page = await shop.request({"type": "chats"})
            chat = page["chats"][0]["chat"]
            claim = next(
                c["claim"] for c in page["chats"][0]["claims"] if c["state"] == "requested"
            )
            ack = await shop.request(
                {
                    "type": "return.approve",
                    "claim": claim,
                    "mode": "no_return",
                    "amount": {"value": 118600, "currency": "RUB"},
                }
            )
            assert ack["type"] == "ack"
            await shop.request({"type": "send", "chat": chat, "text": "Деньги вернули, ёлки"})
            await shop.ws.send(json.dumps({"type": "read", "chat": chat, "seq": 3}))
            await shop.next_frame("read")  # a mark has no ack: its broadcast says it is kept
        before = await answers()
        balances = httpx.get(
            server.http + "/api/v1/balance", headers={"Authorization": f"Bearer {OPERATOR}"}
        ).json()
        assert balances == {"balances": [{"value": -118600, "currency": "RUB"}]}
        server.stop()
        result = chatd("rebuild", "--db", str(db))
        assert result.returncode == 0 and "rebuilt" in result.stdout, result.stderr
        server.start()
        assert await answers() == before
        assert (
            httpx.get(
                server.http + "/api/v1/balance", headers={"Authorization": f"Bearer {OPERATOR}"}
            ).json()
            == balances
        )
    finally:
        server.stop()


def test_token_is_signed_with_the_secret() -> None:
    result = chatd(
        "token",
        "--role",
        "seller",
        "--sub",
        "op1",
        "--name",
        "Анна",
        "--seller",
        "shop1",
        "--ttl",
        "60",
        env={"CHATD_SECRET": SECRET},
    )
    assert result.returncode == 0, result.stderr
    identity = auth.verify(SECRET, result.stdout.strip())
    assert identity.actor.role == "seller" and identity.actor.shop == "shop1"
    assert 50 < identity.expires_at - time.time() <= 60
    missing = chatd(
        "token", "--role", "seller", "--sub", "op1", "--name", "x", env={"CHATD_SECRET": SECRET}
    )
    assert missing.returncode == 2 and "--seller" in missing.stderr
    no_secret = chatd(
        "token", "--role", "buyer", "--sub", "b", "--name", "x", env={"CHATD_SECRET": ""}
    )
    assert no_secret.returncode == 2 and "CHATD_SECRET" in no_secret.stderr


def test_serve_needs_a_secret_unless_dev(tmp_path: Path) -> None:
    result = chatd("serve", "--db", str(tmp_path / "x.db"), env={"CHATD_SECRET": ""})
    assert result.returncode == 2 and "CHATD_SECRET" in result.stderr


def test_help_explains_every_option() -> None:
    for command in ("serve", "token", "demo", "rebuild"):
        result = chatd(command, "--help")
        assert result.returncode == 0
        options = re.findall(r"^\s+(--[a-z-]+)", result.stdout, re.MULTILINE)
        assert options, result.stdout
        # Every option has words after it (argparse puts help on the same or next line).
        assert "show this help message" in result.stdout


async def test_dev_mode_prints_links_that_log_in(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatd",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "dev.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CHATD_SECRET": ""},
    )
    try:
        assert process.stdout is not None
        links: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while len(links) < 4 and time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(
                r"(shop operator|buyer [^:]+|marketplace manager).*?(http://\S+)", line
            )
            if found:
                links[found.group(1)] = found.group(2)
        assert len(links) == 4, links
        shop_link = links["shop operator"]
        assert shop_link.startswith(f"http://localhost:{port}/#token=")
        while httpx.get(f"http://127.0.0.1:{port}/healthz").status_code != 200:
            time.sleep(0.05)
        server = ServerProcess(db=tmp_path / "dev.db", port=port)
        async with connect(server, shop_link.split("#token=")[1]) as shop:
            assert shop.welcome["user"]["role"] == "seller"
            page = await shop.request({"type": "chats"})
            assert len(page["chats"]) == 6
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_version_names_the_package_and_the_protocol() -> None:
    result = chatd("--version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"chatd \d+\.\d+\.\d+\S* \(protocol 1\.1\)\n", result.stdout), result.stdout
