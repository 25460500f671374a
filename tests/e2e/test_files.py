"""Attachments: uploads typed by content, sent in a chat, read only by who may see them."""

from __future__ import annotations

import hashlib

import httpx

from tests.e2e.harness import ServerProcess, connect, token

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
PDF = b"%PDF-1.4\n" + b"%" * 100 + b"\n%%EOF\n"
GIF = b"GIF89a" + b"\x00" * 50

BUYER = token("buyer", "file-buyer", "Покупатель")
SHOP = token("seller", "file-op", "Оператор", seller="file-shop")
OTHER_OPERATOR = token("seller", "file-op2", "Второй", seller="file-shop")


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
