"""Hostile uploads over raw sockets (issue 12): a chunked body that runs past the
Content-Length it declared, a file one byte over the limit, several such uploads at once.
Each is answered 413 `too_large` once the limit is passed, while the client is still
sending; the disk (the files directory and the server's temporary directory) and the
server's memory are watched throughout and the figures printed (`pytest -s`), as in README
"Reliability and security".

And the sweep of unsent uploads on the file store alone, with an injected clock: content
shared with a sent upload stays, whoever uploaded it, and so does a photo an order names."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatd.files import MAX_BODY, MIN_CHARGE, FileStore, Swept, TooLarge, Upload, read_multipart
from chatd.routing import MARKETPLACE
from tests.e2e.harness import ServerProcess, start_server, token

pytestmark = pytest.mark.timeout(180)

MiB = 1024 * 1024
LIMIT = 5 * MiB
BUYER = token("buyer", "hostile-buyer")
BOUNDARY = "hostileboundary"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = Path(tmp_path_factory.mktemp("uploads"))
    (root / "tmp").mkdir()
    return root, root / "tmp"


@pytest.fixture(scope="module")
def srv(dirs: tuple[Path, Path]) -> Iterator[ServerProcess]:
    root, tmp = dirs
    # The server's temporary directory is watched too: a body spooled anywhere counts.
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        process = start_server(root / "chatd.db")
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    try:
        yield process
    finally:
        process.stop()


def disk_bytes(*roots: Path) -> int:
    total = 0
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(directory, name)).st_size
    return total


def memory_kib(server: ServerProcess) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


class DiskWatch:
    """The most bytes under `roots` at any of its samples (every 2 ms) while it runs."""

    def __init__(self, *roots: Path) -> None:
        self.roots = roots
        self.base = disk_bytes(*roots)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, disk_bytes(*self.roots) - self.base)
            time.sleep(0.002)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def envelope(size: int) -> tuple[bytes, bytes]:
    """The multipart head and tail around a `file` part of `size` bytes (a JPEG's)."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


async def hostile_upload(server: ServerProcess, file_size: int) -> tuple[int, dict[str, Any]]:
    """A multipart upload of a `file` part of `file_size` bytes (a JPEG), its honest
    Content-Length declared, sent in blocks of 256 KiB; the status and the JSON answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head, tail = envelope(file_size)
    lines = [
        "POST /api/v1/files HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        f"Authorization: Bearer {BUYER}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {len(head) + file_size + len(tail)}",
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + head + JPEG_HEAD)
    remaining = file_size - len(JPEG_HEAD)
    block = b"\x00" * (256 * 1024)
    with contextlib.suppress(ConnectionError):
        while remaining > 0:
            writer.write(block[: min(remaining, len(block))])
            remaining -= min(remaining, len(block))
            await writer.drain()
        writer.write(tail)
        await writer.drain()
    headers = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode()
    status = int(headers.split(" ", 2)[1])
    length = next(
        int(line.split(":", 1)[1])
        for line in headers.split("\r\n")
        if line.lower().startswith("content-length:")
    )
    body = json.loads(await asyncio.wait_for(reader.readexactly(length), 30))
    writer.close()
    return status, body


async def chunked_past_its_length(server: ServerProcess, size: int) -> bytes:
    """`Content-Length: 1000` beside `Transfer-Encoding: chunked`, then `size` bytes in
    chunks; whatever the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head, _ = envelope(size)
    writer.write(
        (
            "POST /api/v1/files HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {BUYER}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Content-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    chunk = head + JPEG_HEAD + b"\x00" * (256 * 1024 - len(head) - len(JPEG_HEAD))
    with contextlib.suppress(ConnectionError):
        for _ in range(size // len(chunk)):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            chunk = b"\x00" * len(chunk)
    answer = b""
    with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
        answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    return answer


def test_a_chunked_body_under_a_content_length_never_reaches_the_disk(
    srv: ServerProcess, dirs: tuple[Path, Path]
) -> None:
    root, tmp = dirs
    files = root / "chatd.db.files"
    before = memory_kib(srv)
    with DiskWatch(files, tmp) as disk:
        answer = asyncio.run(chunked_past_its_length(srv, 64 * MiB))
    grew = memory_kib(srv)["VmHWM"] - before["VmHWM"]
    print(
        f"\nContent-Length: 1000 with 64 MiB chunked: {answer[:40]!r};"
        f" disk peak {disk.peak} B; server peak RSS +{grew / 1024:.1f} MiB"
    )
    # uvicorn's parser (llhttp) refuses the two headers together before the app sees the
    # request; had a body run past its length, chatd.files.read_multipart counts it anyway.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
    assert disk.peak == 0
    assert grew < 16 * 1024


def test_one_byte_over_the_limit_is_refused_and_the_limit_passes(
    srv: ServerProcess, dirs: tuple[Path, Path]
) -> None:
    root, tmp = dirs
    files = root / "chatd.db.files"
    with DiskWatch(files, tmp) as disk:
        status, body = asyncio.run(hostile_upload(srv, LIMIT + 1))
    assert (status, body["error"]["code"]) == (413, "too_large"), body
    assert disk.peak <= LIMIT
    assert disk_bytes(files, tmp) == disk.base
    status, body = asyncio.run(hostile_upload(srv, LIMIT))
    assert status == 201 and body["size"] == LIMIT, body


def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(
    srv: ServerProcess,
) -> None:
    async def ask() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            (
                "POST /api/v1/files HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{srv.port}\r\nAuthorization: Bearer {BUYER}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {400 * MiB}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        # Not one byte of the body is sent: the answer must come anyway.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        return head

    assert asyncio.run(ask()).startswith(b"HTTP/1.1 413 ")


def test_several_uploads_over_the_limit_at_once(
    srv: ServerProcess, dirs: tuple[Path, Path]
) -> None:
    root, tmp = dirs
    files = root / "chatd.db.files"
    before = memory_kib(srv)
    # As large as the declared length may be: the file part passes 5 MiB by 60 KiB.
    over = LIMIT + 60 * 1024

    async def many() -> list[tuple[int, dict[str, Any]]]:
        return await asyncio.gather(*(hostile_upload(srv, over) for _ in range(8)))

    with DiskWatch(files, tmp) as disk:
        answers = asyncio.run(many())
    grew = memory_kib(srv)["VmHWM"] - before["VmHWM"]
    print(
        f"\n8 at once, each 5 MiB + 60 KiB: disk peak {disk.peak / MiB:.2f} MiB,"
        f" server peak RSS +{grew / 1024:.1f} MiB"
    )
    assert [status for status, _ in answers] == [413] * 8
    # Each upload holds at most its 5 MiB on disk while it arrives, nothing in memory.
    assert disk.peak <= 8 * LIMIT
    assert disk_bytes(files, tmp) == disk.base
    assert grew < 16 * 1024


async def test_a_body_past_its_declared_length_is_counted_as_it_arrives(
    tmp_path: Path,
) -> None:
    """The counting itself, on a stream that keeps coming whatever was declared."""
    store = FileStore(tmp_path)
    store.open()
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        head, _ = envelope(0)
        first = head + JPEG_HEAD
        yield first
        pulled += len(first)
        while True:
            pulled += 64 * 1024
            yield b"\x00" * (64 * 1024)

    sink = store.incoming()
    with pytest.raises(TooLarge):
        await read_multipart(f"multipart/form-data; boundary={BOUNDARY}", endless(), sink)
    assert sink.size <= LIMIT
    assert pulled <= MAX_BODY + 64 * 1024
    sink.discard()
    assert list((tmp_path / "incoming").iterdir()) == []


# ---- the sweep, on the store alone ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_sweep_removes_unsent_uploads_and_keeps_shared_content(
    tmp_path: Path,
) -> None:
    sent_in: dict[str, list[str]] = {}

    async def chats_with_file(file_id: str) -> list[str]:
        return sent_in.get(file_id, [])

    clock = Clock()
    store = FileStore(
        tmp_path, quota=4 * MIN_CHARGE, keep_unsent=100, chats_with_file=chats_with_file,
        clock=clock,
    )  # fmt: skip
    store.open()
    jpeg = JPEG_HEAD + b"\x01" * 100
    pdf = b"%PDF-1.4\n" + b"\x02" * 100
    mine = await store.save(jpeg, "a.jpg", "b:one")
    theirs = await store.save(jpeg, "a.jpg", "b:two")  # the same content, another user
    alone = await store.save(pdf, "b.pdf", "b:one")
    assert isinstance(mine, Upload) and isinstance(theirs, Upload) and isinstance(alone, Upload)
    # `theirs` is sent in a chat; `mine` and `alone` never are.
    assert await store.describe([theirs.id], "b:two") != ()
    sent_in[theirs.id] = ["chat-1"]

    clock.now += 99
    assert (await store.sweep()).removed == 0
    assert await store.get(mine.id) is not None
    clock.now += 2
    # The first sweep past the deadline hides the unsent ones; the next removes them.
    await store.sweep()
    assert await store.sweep() == Swept(removed=2, kept=0)
    assert await store.get(mine.id) is None and await store.get(alone.id) is None
    assert await store.get(theirs.id) is not None
    assert store.blob_path(theirs).read_bytes() == jpeg
    assert not store.blob_path(alone).exists()
    # `b:one` has its whole quota back.
    for n in range(4):
        assert isinstance(await store.save(pdf + bytes([n]), "c.pdf", "b:one"), Upload)
    refused = await store.save(pdf + b"x", "c.pdf", "b:one")
    assert not isinstance(refused, Upload) and refused.too_large


async def test_a_send_that_read_an_upload_just_before_it_was_hidden_keeps_it(
    tmp_path: Path,
) -> None:
    sent_in: dict[str, list[str]] = {}

    async def chats_with_file(file_id: str) -> list[str]:
        return sent_in.get(file_id, [])

    clock = Clock()
    store = FileStore(tmp_path, keep_unsent=10, chats_with_file=chats_with_file, clock=clock)
    store.open()
    upload = await store.save(JPEG_HEAD + b"\x03" * 10, "late.jpg", "b:late")
    assert isinstance(upload, Upload)
    clock.now += 11
    await store.sweep()  # hidden
    assert await store.get(upload.id) is None
    sent_in[upload.id] = ["chat-2"]  # a send that had read it commits now
    swept = await store.sweep()
    assert swept.kept == 1 and swept.removed == 0
    assert await store.get(upload.id) == upload
    clock.now += 1000
    await store.sweep()
    await store.sweep()
    assert await store.get(upload.id) == upload


async def test_a_photo_an_order_names_is_kept_and_counts_no_more(tmp_path: Path) -> None:
    named: dict[str, list[str]] = {}

    async def orders_with_file(file_id: str) -> list[str]:
        return named.get(file_id, [])

    clock = Clock()
    store = FileStore(
        tmp_path, quota=2 * MIN_CHARGE, keep_unsent=10, orders_with_file=orders_with_file,
        clock=clock,
    )  # fmt: skip
    store.open()
    photo = await store.save(JPEG_HEAD + b"\x04" * 10, "skirt.jpg", MARKETPLACE)
    late = await store.save(JPEG_HEAD + b"\x05" * 10, "scarf.jpg", MARKETPLACE)
    assert isinstance(photo, Upload) and isinstance(late, Upload)
    assert not isinstance(await store.save(JPEG_HEAD, "full.jpg", MARKETPLACE), Upload)
    # An order names `photo` (the service flags it before the append, as a `send` does):
    # the quota then finds it kept, and room for one more upload.
    await store.offer(MARKETPLACE, [photo.id])
    named[photo.id] = ["o1"]
    spare = await store.save(JPEG_HEAD + b"\x06" * 10, "spare.jpg", MARKETPLACE)
    assert isinstance(spare, Upload)

    clock.now += 11
    await store.sweep()  # hides `late` and `spare`, which no order names yet
    assert await store.get(late.id) is None
    named[late.id] = ["o2"]  # an order that had read it before it was hidden commits now
    assert await store.sweep() == Swept(removed=1, kept=1)
    assert await store.get(spare.id) is None
    clock.now += 1000
    await store.sweep()
    await store.sweep()
    assert await store.get(photo.id) == photo
    assert await store.get(late.id) == late
    assert store.blob_path(photo).read_bytes() == JPEG_HEAD + b"\x04" * 10
