"""Attachments: uploads typed by content, sent in a chat, read only by who may see them; the
product photos the marketplace uploads for its orders."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.harness import ServerProcess, connect, order_body, register_order, token, uid

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
PDF = b"%PDF-1.4\n" + b"%" * 100 + b"\n%%EOF\n"
GIF = b"GIF89a" + b"\x00" * 50

BUYER = token("buyer", "file-buyer", "Покупатель")
SHOP = token("seller", "file-op", "Оператор", seller="file-shop")
OTHER_OPERATOR = token("seller", "file-op2", "Второй", seller="file-shop")


@contextlib.contextmanager
def running(tmp_path: Path, *extra_args: str) -> Iterator[ServerProcess]:
    process = ServerProcess(db=tmp_path / "chatd.db", extra_args=extra_args)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def upload(server: ServerProcess, tok: str, data: bytes, name: str) -> httpx.Response:
    return httpx.post(
        server.http + "/api/v1/files",
        files={"file": (name, data, "application/octet-stream")},
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )


def download(server: ServerProcess, tok: str, file_id: str) -> httpx.Response:
    return httpx.get(
        f"{server.http}/api/v1/files/{file_id}",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )


async def test_a_photo_and_a_document_reach_both_sides(server: ServerProcess) -> None:
    photo = upload(server, BUYER, JPEG, "../../etc/фото брака.jpg")
    assert photo.status_code == 201, photo.text
    meta = photo.json()
    assert meta["mime"] == "image/jpeg" and meta["size"] == len(JPEG)
    assert meta["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert meta["name"] == "фото брака.jpg"
    document = upload(server, BUYER, PDF, "чек.png").json()  # the content decides: a PDF
    assert document["mime"] == "application/pdf"

    async with connect(server, BUYER) as buyer, connect(server, SHOP) as shop:
        chat = (await buyer.request({"type": "open", "seller": "file-shop"}))["chat"]
        ack = await buyer.request(
            {"type": "send", "chat": chat, "text": "", "attachments": [meta["id"], document["id"]]}
        )
        assert ack["type"] == "ack", ack
        events = await shop.wait_events(2)
        attachments = events[1]["data"]["attachments"]
        assert [a["id"] for a in attachments] == [meta["id"], document["id"]]
        assert attachments[0] == {
            "id": meta["id"],
            "name": "фото брака.jpg",
            "mime": "image/jpeg",
            "size": len(JPEG),
        }
        for client in (buyer, shop):
            tabs = await client.request({"type": "attachments", "chat": chat})
            assert [p["id"] for p in tabs["photos"]] == [meta["id"]]
            assert [f["id"] for f in tabs["files"]] == [document["id"]]
            assert tabs["photos"][0]["seq"] == 2
        # Both sides read it; the shop's other operator too.
        for tok in (BUYER, SHOP, OTHER_OPERATOR):
            response = download(server, tok, meta["id"])
            assert response.status_code == 200
            assert response.content == JPEG
            assert response.headers["content-type"] == "image/jpeg"
        # Attachment-only messages count as unread for the other side.
        page = await shop.request({"type": "chats"})
        assert page["chats"][0]["unread"] == 1


async def test_files_are_private_until_sent(server: ServerProcess) -> None:
    meta = upload(server, BUYER, PNG, "a.png").json()
    stranger = token("buyer", "file-stranger")
    assert download(server, SHOP, meta["id"]).status_code == 404
    assert download(server, stranger, meta["id"]).status_code == 404
    assert download(server, stranger, "f" + "0" * 24).status_code == 404
    assert download(server, BUYER, meta["id"]).status_code == 200
    # Someone else's upload cannot be attached.
    async with connect(server, stranger) as other:
        chat = (await other.request({"type": "open", "seller": "file-shop"}))["chat"]
        refused = await other.request(
            {"type": "send", "chat": chat, "text": "смотрите", "attachments": [meta["id"]]}
        )
        assert refused["type"] == "error" and refused["code"] == "not_found"
        history = await other.request({"type": "history", "chat": chat})
        assert len(history["events"]) == 1
    # Sent in a chat, it is visible to that chat's shop, still not to others.
    async with connect(server, BUYER) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "file-shop"}))["chat"]
        await buyer.request(
            {"type": "send", "chat": chat, "text": "фото", "attachments": [meta["id"]]}
        )
    assert download(server, SHOP, meta["id"]).status_code == 200
    assert download(server, stranger, meta["id"]).status_code == 404


def test_only_jpeg_png_and_pdf_under_5_mib(server: ServerProcess) -> None:
    refused = upload(server, BUYER, GIF, "cat.jpg")
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "bad_frame"
    too_big = upload(server, BUYER, JPEG + b"\x00" * (5 * 1024 * 1024), "big.jpg")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "too_large"
    exactly = upload(server, BUYER, JPEG + b"\x00" * (5 * 1024 * 1024 - len(JPEG)), "max.jpg")
    assert exactly.status_code == 201
    manager = token("manager", "file-manager")
    assert upload(server, manager, JPEG, "m.jpg").status_code == 403
    assert upload(server, "not-a-token", JPEG, "m.jpg").status_code == 401


async def test_a_message_carries_at_most_30_mib(server: ServerProcess) -> None:
    five = JPEG + b"\x00" * (5 * 1024 * 1024 - len(JPEG))
    ids = [upload(server, BUYER, five, f"{i}.jpg").json()["id"] for i in range(7)]
    async with connect(server, BUYER) as buyer:
        chat = (await buyer.request({"type": "open", "seller": "file-shop"}))["chat"]
        refused = await buyer.request({"type": "send", "chat": chat, "attachments": ids})
        assert refused["type"] == "error" and refused["code"] == "bad_frame"
        assert "30 MiB" in refused["message"]
        ok = await buyer.request({"type": "send", "chat": chat, "attachments": ids[:6]})
        assert ok["type"] == "ack"


# ---- issue 12: an outside attack on uploads and downloads --------------------------------

# A PDF that is also an HTML page: what a browser would run if it were served as HTML.
POLYGLOT = b"%PDF-1.4\n<html><script>alert(document.cookie)</script></html>\n%%EOF\n"
SYSTEM = token("system", "marketplace")


async def send_files(server: ServerProcess, tok: str, seller: str, ids: list[str]) -> None:
    async with connect(server, tok) as client:
        chat = (await client.request({"type": "open", "seller": seller}))["chat"]
        ack = await client.request({"type": "send", "chat": chat, "text": "", "attachments": ids})
        assert ack["type"] == "ack", ack


async def test_a_file_is_named_and_served_by_its_sniffed_type(server: ServerProcess) -> None:
    meta = upload(server, BUYER, POLYGLOT, "report.html").json()
    assert meta["mime"] == "application/pdf"
    assert meta["name"] == "report.pdf"
    photo = upload(server, BUYER, PNG, "photo.jpeg.exe").json()
    assert photo["name"] == "photo.jpeg.png"
    await send_files(server, BUYER, "file-shop", [meta["id"], photo["id"]])
    response = download(server, SHOP, meta["id"])
    assert response.status_code == 200 and response.content == POLYGLOT
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    assert response.headers["x-content-type-options"] == "nosniff"
    image = download(server, SHOP, photo["id"])
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"] == 'inline; filename="photo.jpeg.png"'


async def test_the_system_reads_no_file(server: ServerProcess) -> None:
    sent = upload(server, BUYER, JPEG, "sent.jpg").json()
    kept = upload(server, BUYER, PNG, "kept.png").json()
    await send_files(server, BUYER, "file-shop", [sent["id"]])
    assert download(server, SHOP, sent["id"]).status_code == 200
    # The system sees every chat, but files only go to a chat's participants and uploader:
    # it is answered as a stranger is, not with `forbidden`, which would say the id exists.
    for file_id in (sent["id"], kept["id"], "f" + "0" * 24):
        refused = download(server, SYSTEM, file_id)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == {"code": "not_found", "message": "no such file"}


def test_uploads_never_sent_have_a_quota(tmp_path: Path) -> None:
    # 40 000 bytes: two small files fit (each counts at least 16 KiB), a third does not.
    with running(tmp_path, "--upload-quota", "40000") as server:
        first = upload(server, BUYER, JPEG, "1.jpg")
        second = upload(server, BUYER, PNG, "2.png")
        assert first.status_code == 201 and second.status_code == 201
        refused = upload(server, BUYER, PDF, "3.pdf")
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "too_large"
        assert error["details"] == {"quota": 40000, "unsent": 2 * 16 * 1024}
        assert "sent in any chat" in error["message"]
        # Another user has room of their own; the shop's operators share the shop's.
        assert upload(server, token("buyer", "quota-other"), PDF, "3.pdf").status_code == 201
        # A file sent in a chat counts no more.
        asyncio.run(send_files(server, BUYER, "file-shop", [first.json()["id"]]))
        assert upload(server, BUYER, PDF, "3.pdf").status_code == 201
        assert upload(server, BUYER, PDF, "4.pdf").status_code == 413


def test_uploads_never_sent_are_removed_after_a_while(tmp_path: Path) -> None:
    with running(tmp_path, "--keep-unsent", "1", "--upload-quota", "40000") as server:
        sent = upload(server, BUYER, JPEG, "sent.jpg").json()
        unsent = upload(server, BUYER, PDF, "unsent.pdf").json()
        asyncio.run(send_files(server, BUYER, "file-shop", [sent["id"]]))
        blobs = tmp_path / "chatd.db.files" / "blobs"
        assert sorted(p.name for p in blobs.iterdir()) == sorted([sent["sha256"], unsent["sha256"]])
        # Hidden by the first sweep past a second, removed by the next (a quarter second on).
        deadline = time.monotonic() + 10
        while download(server, BUYER, unsent["id"]).status_code == 200:
            assert time.monotonic() < deadline, "the unsent upload was never removed"
            time.sleep(0.1)
        while unsent["sha256"] in {p.name for p in blobs.iterdir()}:
            assert time.monotonic() < deadline, "the unsent upload's content stayed on disk"
            time.sleep(0.1)
        assert download(server, BUYER, unsent["id"]).status_code == 404
        assert download(server, BUYER, sent["id"]).content == JPEG
        assert download(server, SHOP, sent["id"]).content == JPEG
        # Its room is free again: two more fit under the quota.
        assert upload(server, BUYER, PDF, "a.pdf").status_code == 201
        assert upload(server, BUYER, PNG, "b.png").status_code == 201


def test_the_quota_and_expiry_flags_refuse_nonsense(tmp_path: Path) -> None:
    for flag, value in (
        ("--upload-quota", "0"),
        ("--upload-quota", "1.5"),
        ("--keep-unsent", "nan"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "chatd", "serve", flag, value],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHATD_SECRET": "s" * 32},
        )
        assert result.returncode == 2
        assert flag in result.stderr


# ---- an order's product photo --------------------------------------------------------------


def test_the_marketplace_uploads_photos_and_a_manager_does_not(server: ServerProcess) -> None:
    photo = upload(server, SYSTEM, PNG, "юбка.png")
    assert photo.status_code == 201, photo.text
    assert photo.json()["mime"] == "image/png" and photo.json()["name"] == "юбка.png"
    refused = upload(server, token("manager", "file-manager"), PNG, "m.png")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "this needs the role buyer or seller or system"


async def test_an_orders_photo_reaches_its_buyer_and_shop_and_outlives_the_sweep(
    tmp_path: Path,
) -> None:
    # Unnamed uploads go 2 s after their upload, swept every half second.
    with running(tmp_path, "--keep-unsent", "2") as server:
        photo = upload(server, SYSTEM, PNG, "юбка.png").json()
        order = order_body(uid("order"), "file-buyer", "file-shop", photo=photo["id"])
        registered = register_order(server, order)
        assert registered.status_code == 201, registered.text
        assert registered.json()["photo"] == photo["id"]
        # The same body again is the same order; another photo is another body.
        assert register_order(server, order).status_code == 200
        other = upload(server, SYSTEM, JPEG, "другое.jpg").json()
        assert register_order(server, {**order, "photo": other["id"]}).status_code == 409
        # An order without one has no `photo` at all.
        plain = order_body(uid("order"), "file-buyer", "file-shop")
        assert "photo" not in register_order(server, plain).json()

        # What an order may not name: the marketplace's PDF, a buyer's photo, nothing.
        document = upload(server, SYSTEM, PDF, "накладная.pdf").json()
        buyers = upload(server, BUYER, JPEG, "моё.jpg").json()
        refused_order = order_body(uid("order"), "file-buyer", "file-shop")
        for bad, reason in (
            (document["id"], "not a JPEG or PNG image"),
            (buyers["id"], "names no file the marketplace uploaded"),
            ("f" + "0" * 24, "names no file the marketplace uploaded"),
        ):
            response = register_order(server, {**refused_order, "photo": bad})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "bad_frame"
            assert error["message"].startswith("not a valid order: photo"), error
            assert reason in error["message"], error
        # Nothing of them was kept: the id is free for a body without a photo.
        assert register_order(server, refused_order).status_code == 201

        async with connect(server, BUYER) as buyer, connect(server, SHOP) as shop:
            opened = await buyer.request(
                {"type": "open", "seller": "file-shop", "order": order["id"]}
            )
            chat = opened["chat"]
            (event,) = await shop.wait_events(1)
            assert event["data"]["order"]["photo"] == photo["id"]
            assert buyer.events[0]["data"]["order"]["photo"] == photo["id"]
            tabs = await shop.request({"type": "attachments", "chat": chat})
            cards = {entry["order"]["id"]: entry["order"] for entry in tabs["orders"]}
            assert cards[order["id"]]["photo"] == photo["id"]
            assert "photo" not in cards[plain["id"]]
            # The product's photo is the order's, not a file sent in the chat.
            assert tabs["photos"] == [] and tabs["files"] == []

            for tok in (BUYER, SHOP, OTHER_OPERATOR):
                response = download(server, tok, photo["id"])
                assert response.status_code == 200, response.text
                assert response.content == PNG
                assert response.headers["content-type"] == "image/png"
            # Anyone else is told what an id naming nothing tells: another buyer, another
            # shop, a manager while the chat is not disputed, the marketplace itself.
            manager = token("manager", "file-manager")
            strangers = (
                token("buyer", "file-stranger"),
                token("seller", "file-op3", seller="other-shop"),
                manager,
                SYSTEM,
            )
            for tok in strangers:
                refused = download(server, tok, photo["id"])
                assert refused.status_code == 404, refused.text
                assert refused.json()["error"] == {"code": "not_found", "message": "no such file"}

            # Refused and disputed, the chat is the managers' to see, with its orders' photos.
            asked = {"type": "return.request", "chat": chat, "order": order["id"]}
            claim = (await buyer.request(asked))["claim"]
            for client, step in ((shop, "return.reject"), (buyer, "return.dispute")):
                ack = await client.request({"type": step, "claim": claim})
                assert ack["type"] == "ack", ack
            assert download(server, manager, photo["id"]).content == PNG
            assert download(server, SYSTEM, photo["id"]).status_code == 404

        # The sweeps remove the unnamed uploads (the PDF, the unused JPEG), never the photo.
        blobs = tmp_path / "chatd.db.files" / "blobs"
        deadline = time.monotonic() + 15
        while {document["sha256"], other["sha256"]} & {p.name for p in blobs.iterdir()}:
            assert time.monotonic() < deadline, "the unnamed uploads were never removed"
            time.sleep(0.1)
        assert download(server, BUYER, photo["id"]).content == PNG
        assert download(server, SHOP, photo["id"]).content == PNG
        assert (blobs / photo["sha256"]).read_bytes() == PNG
