"""A file's name as a browser uploads it: the HTML standard writes `"` in a multipart
filename as `%22` (and line breaks as `%0A`, `%0D`); chatd reads the name back as it was, in
`POST /api/v1/files` and in a multipart message alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from chatd.files import FileStore, clean_name, form_filename, read_multipart
from chatd.web.message_form import read_message_form

BOUNDARY = "----chatdNames"
PDF = b"%PDF-1.4\n%%EOF\n"


def body(filename: str, text: str | None = None) -> bytes:
    parts = []
    if text is not None:
        field = 'Content-Disposition: form-data; name="text"'
        parts.append(f"--{BOUNDARY}\r\n{field}\r\n\r\n{text}\r\n".encode())
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
    )
    parts.append(head.encode() + PDF + f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


async def stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_a_browsers_escapes_are_read_back() -> None:
    assert form_filename("Счёт %22Ромашка%22.pdf".encode()) == 'Счёт "Ромашка".pdf'
    assert form_filename(b"a%0Ab%0dc.pdf") == "a\nb\rc.pdf"
    # Other percent signs are the name's own.
    assert form_filename(b"100%25 %20 %2.pdf") == "100%25 %20 %2.pdf"
    # Line breaks go with the other control characters when the name is cleaned.
    assert clean_name(form_filename(b"a%0Ab.pdf"), ".pdf") == "ab.pdf"


async def test_an_upload_keeps_the_quotes_of_its_name(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.open()
    sink = store.incoming()
    kind = f"multipart/form-data; boundary={BOUNDARY}"
    name = await read_multipart(kind, stream(body("Счёт %22Ромашка%22.pdf")), sink)
    sink.discard()
    assert name == 'Счёт "Ромашка".pdf'


async def test_a_multipart_message_keeps_the_quotes_of_its_files_names(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.open()
    kind = f"multipart/form-data; boundary={BOUNDARY}"
    form = await read_message_form(
        kind, stream(body("Акт %22сверки%22.pdf", "Вот акт")), store.incoming
    )
    assert form.text == "Вот акт"
    assert [name for _, name in form.files] == ['Акт "сверки".pdf']
    form.discard()
