"""Uploads that pretend, over real HTTP: polyglots (a JPEG that is also HTML and script, a PDF
holding HTML, a PNG with a script after its end), SVG with script, HTML named `.jpg`, a
Content-Type that lies, double extensions, names with path traversal, control characters,
quotes and a right-to-left override, an empty file, and files of exactly the limit and one
byte over it; by `POST /api/v1/files`, in a message's multipart body and in a reply on the
WB-compatible route.

Each is refused with an error that says why, or kept and served back so that no browser
runs it: the type sniffed from the content (never the name's nor the client's), `nosniff`,
`attachment` for anything but an image, a file name whose extension is the sniffed type's,
one `filename` in `Content-Disposition` and nothing a header could be split with, and a
Content-Security-Policy under which nothing runs even if the answer were shown as a page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from chatd.files import MAX_FILE
from tests.e2e.api_keys import create_key
from tests.e2e.harness import (
    ServerProcess,
    connect,
    module_server,
    order_body,
    register_order,
    token,
)

pytestmark = pytest.mark.timeout(120)

BUYER = token("buyer", "trick-buyer", "Покупатель")
OPERATOR = token("seller", "trick-op", "Оператор", seller="trick-shop")
BOUNDARY = "trickboundary7f3a"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<script>alert(document.domain)</script></svg>"
)
# A JPEG whose comment segment (FF FE) is an HTML page with a script: a valid image that a
# browser sniffing for HTML would render as a page.
JPEG_HTML = JPEG_HEAD + b"\xff\xfe" + len(HTML).to_bytes(2, "big") + HTML + b"\xff\xd9"
PDF_HTML = b"%PDF-1.4\n%" + HTML + b"\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_SCRIPT = (
    b"\x89PNG\r\n\x1a\n"
    + b"\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    + b"<script>fetch('/api/v1/balance')</script>"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(
        tmp_path_factory, "tricks", "--http-rate", "100000", "--http-burst", "100000"
    ) as process:
        yield process


def multipart(
    parts: list[tuple[bytes, bytes | None, bytes | None, bytes]],
) -> tuple[bytes, dict[str, str]]:
    """A multipart body written byte by byte, so that a name may carry what an HTTP client
    would escape: each part is (field, filename or None, Content-Type or None, data)."""
    body = b""
    for field, filename, content_type, data in parts:
        body += b"--" + BOUNDARY.encode() + b"\r\n"
        disposition = b'Content-Disposition: form-data; name="' + field + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += disposition + b"\r\n"
        if content_type is not None:
            body += b"Content-Type: " + content_type + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += b"--" + BOUNDARY.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def upload(
    server: ServerProcess,
    data: bytes,
    filename: bytes,
    content_type: bytes | None = b"image/jpeg",
    tok: str = BUYER,
) -> httpx.Response:
    body, headers = multipart([(b"file", filename, content_type, data)])
    return httpx.post(
        server.http + "/api/v1/files",
        content=body,
        headers={**headers, "Authorization": f"Bearer {tok}"},
        timeout=30,
    )


def download(server: ServerProcess, file_id: str, tok: str = BUYER) -> httpx.Response:
    return httpx.get(
        f"{server.http}/api/v1/files/{file_id}",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )


def disposition_name(header: str) -> str:
    """The one file name a Content-Disposition gives (RFC 6266: `filename*` wins)."""
    extended = re.findall(r"filename\*=utf-8''([^;\s]+)", header, re.IGNORECASE)
    plain = re.findall(r'filename="([^"]*)"', header)
    assert len(extended) + len(plain) == 1, header
    return unquote(extended[0]) if extended else plain[0]


def assert_served_inert(response: httpx.Response, mime: str, extension: str) -> str:
    """The headers under which no browser runs the file; the name it is offered under."""
    assert response.status_code == 200, response.text
    headers = response.headers
    assert headers["content-type"] == mime
    assert headers["x-content-type-options"] == "nosniff"
    disposition = headers["content-disposition"]
    assert disposition.startswith("inline;" if mime.startswith("image/") else "attachment;")
    assert not re.search(r"[\x00-\x1f\x7f]", disposition), disposition
    name = disposition_name(disposition)
    assert name.endswith(extension), name
    assert "/" not in name and "\\" not in name and ".." not in name.rsplit(".", 1)[0][-2:]
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in headers["content-security-policy"].split(";")
        if directive.strip()
    }
    # Nothing in a file may run, whatever a browser took it for: no script of any origin
    # (a sandbox also gives the answer an origin of its own), no plugin, no framing.
    assert "sandbox" in csp, csp
    assert csp["default-src"] == ["'none'"], csp
    assert "script-src" not in csp or csp["script-src"] == ["'none'"], csp
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"], csp
    return name


# ---- kept, and served inert -----------------------------------------------------------------


JPG, PDF = "image/jpeg", "application/pdf"


@pytest.mark.parametrize(
    ("case", "data", "filename", "sent_type", "mime", "name"),
    [
        ("jpeg that is html", JPEG_HTML, b"page.html", b"text/html", JPG, "page.jpg"),
        ("pdf with html", PDF_HTML, b"invoice.html", b"text/html", PDF, "invoice.pdf"),
        ("png with a script", PNG_SCRIPT, b"x.png", b"image/png", "image/png", "x.png"),
        ("double extension", JPEG_HTML, b"photo.jpg.html", b"image/jpeg", JPG, "photo.jpg.jpg"),
        ("executable after", PDF_HTML, b"act.pdf.exe", None, PDF, "act.pdf.pdf"),
        ("a lying type", JPEG_HTML, b"x.jpg", b"application/javascript", JPG, "x.jpg"),
        ("svg named jpg", JPEG_HTML, b"x.svg", b"image/svg+xml", JPG, "x.jpg"),
        ("traversal", JPEG_HTML, b"../../../etc/passwd", None, JPG, "passwd.jpg"),
        ("windows traversal", JPEG_HTML, b"..\\..\\boot.ini", None, JPG, "boot.jpg"),
        ("dots only", JPEG_HTML, b"...", None, JPG, "file.jpg"),
        ("empty name", JPEG_HTML, b"", None, JPG, "file.jpg"),
        ("control chars", JPEG_HTML, b"a\x01b\x1bc\x7f.jpg", None, JPG, "abc.jpg"),
        ("nul", JPEG_HTML, b"evil.html\x00.jpg", None, JPG, "evil.html.jpg"),
        ("right to left", JPEG_HTML, "фото\u202egpj.exe".encode(), None, JPG, "фотоgpj.jpg"),
        ("quotes", JPEG_HTML, b"a%22; filename=%22b.html", None, JPG, 'a"; filename="b.jpg'),
        ("header split", JPEG_HTML, b"x%0D%0AContent-Type: a%2Fb.jpg", None, JPG,
         "xContent-Type: a%2Fb.jpg"),
        ("split, a path", JPEG_HTML, b"x%0D%0AContent-Type: text/html.jpg", None, JPG,
         "html.jpg"),
    ],
)  # fmt: skip
def test_a_trick_that_is_a_real_file_is_served_as_what_it_is(
    server: ServerProcess,
    case: str,
    data: bytes,
    filename: bytes,
    sent_type: bytes | None,
    mime: str,
    name: str,
) -> None:
    stored = upload(server, data, filename, sent_type)
    assert stored.status_code == 201, stored.text
    meta = stored.json()
    assert meta["mime"] == mime and meta["size"] == len(data)
    assert meta["name"] == name, case
    response = download(server, meta["id"])
    assert response.content == data
    assert assert_served_inert(response, mime, name[-4:]) == name


# ---- refused, saying why -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "data", "filename", "sent_type"),
    [
        ("svg with script", SVG, b"logo.svg", b"image/svg+xml"),
        ("svg named png", SVG, b"logo.png", b"image/png"),
        ("html named jpg", HTML, b"photo.jpg", b"image/jpeg"),
        ("html named pdf", HTML, b"act.pdf", b"application/pdf"),
        ("script", b"alert(1)//\xff\xd8\xff", b"x.jpg", b"image/jpeg"),
        ("a bom before html", b"\xef\xbb\xbf" + HTML, b"x.jpg", b"image/jpeg"),
        ("gif", b"GIF89a" + b"\x00" * 40, b"x.gif", b"image/gif"),
        ("jpeg magic cut short", b"\xff\xd8", b"x.jpg", b"image/jpeg"),
    ],
)
def test_what_is_no_jpeg_png_or_pdf_is_refused_with_415(
    server: ServerProcess, case: str, data: bytes, filename: bytes, sent_type: bytes
) -> None:
    refused = upload(server, data, filename, sent_type)
    assert refused.status_code == 415, (case, refused.text)
    assert refused.json()["error"] == {
        "code": "bad_frame",
        "message": "only JPEG, PNG and PDF files are accepted",
    }


def test_a_raw_line_break_in_a_name_splits_no_header(server: ServerProcess) -> None:
    """A name with a bare CR LF ends the part's header line: the body is no upload chatd
    takes, or the name is kept without the break. Either way no answer carries it."""
    answer = upload(server, JPEG_HTML, b"x.jpg\r\nContent-Type: text/html\r\nX-Evil: 1")
    if answer.status_code == 201:
        name = answer.json()["name"]
        assert not re.search(r"[\x00-\x1f]", name), name
        served = download(server, answer.json()["id"])
        assert "x-evil" not in served.headers
        assert_served_inert(served, "image/jpeg", ".jpg")
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_frame"
    assert "x-evil" not in answer.headers


def test_an_empty_file_is_refused_as_empty(server: ServerProcess) -> None:
    refused = upload(server, b"", b"photo.jpg")
    assert refused.status_code == 415, refused.text
    assert refused.json()["error"] == {"code": "bad_frame", "message": "the file is empty"}


def test_a_file_of_the_limit_is_kept_and_one_byte_more_is_413(server: ServerProcess) -> None:
    at_limit = JPEG_HTML + b"\x00" * (MAX_FILE - len(JPEG_HTML))
    kept = upload(server, at_limit, b"big.jpg", tok=OPERATOR)
    assert kept.status_code == 201, kept.text
    assert kept.json()["size"] == MAX_FILE == 5 * 1024 * 1024
    over = upload(server, at_limit + b"\x00", b"big.jpg", tok=OPERATOR)
    assert over.status_code == 413, over.text
    assert over.json()["error"]["code"] == "too_large"
    assert over.json()["error"]["message"] == "a file may be at most 5 MiB"


# ---- the same through the other doors -------------------------------------------------------


async def test_a_message_and_a_wb_reply_sniff_their_files_alike(server: ServerProcess) -> None:
    """A message's files and a WB reply's are uploads like any other: the same refusals, and
    the other side downloads a polyglot as inert as the uploader does."""
    order = "trick-order"
    assert register_order(server, order_body(order, "trick-buyer", "trick-shop")).status_code == 201
    async with connect(server, BUYER) as buyer:
        opened = await buyer.request({"type": "open", "seller": "trick-shop", "order": order})
    chat = opened["chat"]
    url = f"{server.http}/api/v1/chats/{chat}/messages"
    auth = {"Authorization": f"Bearer {BUYER}"}
    body, headers = multipart(
        [(b"text", None, None, "Фото брака".encode()), (b"file", b"x.jpg", b"image/jpeg", SVG)]
    )
    refused = httpx.post(url, content=body, headers={**headers, **auth}, timeout=30)
    assert refused.status_code == 415, refused.text
    body, headers = multipart(
        [
            (b"text", None, None, "Фото брака".encode()),
            (b"file", b"p.html", b"text/html", JPEG_HTML),
        ]
    )
    sent = httpx.post(url, content=body, headers={**headers, **auth}, timeout=30)
    assert sent.status_code == 201, sent.text
    history = httpx.get(
        f"{server.http}/api/v1/chats/{chat}/history",
        headers={"Authorization": f"Bearer {OPERATOR}"},
        timeout=30,
    ).json()
    [attachment] = [a for e in history["events"] for a in e["data"].get("attachments", [])]
    assert attachment["mime"] == "image/jpeg" and attachment["name"] == "p.jpg"
    assert_served_inert(download(server, attachment["id"], OPERATOR), "image/jpeg", ".jpg")

    key = await asyncio.to_thread(create_key, server, OPERATOR, "bot", ("chat:read", "chat:write"))
    chats = httpx.get(
        f"{server.http}/api/v1/seller/chats", headers={"Authorization": key["key"]}, timeout=30
    ).json()["result"]
    [sign] = [c["replySign"] for c in chats]
    wb: dict[str, Any] = {"Authorization": key["key"]}
    for data, expected in ((SVG, 415), (PDF_HTML, 200)):
        body, headers = multipart(
            [
                (b"replySign", None, None, sign.encode()),
                (b"message", None, None, "Ответ".encode()),
                (b"file", b"reply.html", b"text/html", data),
            ]
        )
        reply = httpx.post(
            f"{server.http}/api/v1/seller/message",
            content=body,
            headers={**headers, **wb},
            timeout=30,
        )
        assert reply.status_code == expected, reply.text
    feed = httpx.get(f"{server.http}/api/v1/seller/events", headers=wb, timeout=30).json()
    messages = [e["message"] for e in feed["result"]["events"] if e.get("message")]
    files = [f for m in messages for f in m.get("attachments", {}).get("files", [])]
    [pdf] = [f for f in files if f["contentType"] == "application/pdf"]
    assert pdf["name"] == "reply.pdf"
    fetched = httpx.get(httpx.URL(server.http).join(pdf["url"]), headers=wb, timeout=30)
    assert fetched.content == PDF_HTML
    assert_served_inert(fetched, "application/pdf", ".pdf")


def test_the_document_names_every_type_a_file_is_served_as(server: ServerProcess) -> None:
    """A download is answered with the sniffed type, and `/openapi.json` says so: it said
    `application/octet-stream`, which no download ever was (a stateful schemathesis run
    found it)."""
    document = httpx.get(server.http + "/openapi.json", timeout=10).json()
    served = set()
    for data in (JPEG_HTML, PNG_SCRIPT, PDF_HTML):
        meta = upload(server, data, b"f").json()
        served.add(download(server, meta["id"]).headers["content-type"])
    assert served == {"image/jpeg", "image/png", "application/pdf"}
    for path in ("/api/v1/files/{file}", "/api/v1/seller/download/{id}"):
        assert set(document["paths"][path]["get"]["responses"]["200"]["content"]) == served
