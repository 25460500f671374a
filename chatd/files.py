"""Uploaded files: content-addressed blobs on disk beside the database, with their metadata.

A file's id is random, not its hash, so an id reveals nothing about content someone else
uploaded. Blobs are named by SHA-256 and stored once however often they are uploaded. Every
write goes to a temporary name first and is renamed into place, so a crash never leaves a
half-written file under a real name.

An upload is written to disk as it arrives (`Incoming`), counted, hashed and sniffed on the
way: nothing past `MAX_FILE` bytes is ever written or kept in memory. What a user uploaded
and never sent in a chat counts against a quota (`quota`, bytes) and is removed
`keep_unsent` seconds after its upload by a periodic sweep; a file sent in a chat is kept,
and so is a photo the marketplace uploaded once a registered order names it.

The directory (several nodes may share it):

    blobs/<sha256>                 the content
    refs/<sha256>/<id>             the uploads that use a blob (`legacy`: one from before refs)
    meta/<id>.json                 an upload's metadata (`.expired`: hidden, about to go)
    pending/<owner>/<id>.<size>.<at>   an upload not known to be sent: what the quota counts
    pending/<owner>/<id>.offered   the upload was named in a `send` or an order: it may be kept
    incoming/<random>.part         uploads on their way in
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from chatd.domain.errors import Rejection, bad_frame, not_found
from chatd.keyed_lock import KeyedLocks
from protocol.events import Attachment

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_FILE = 5 * MiB
MAX_PER_MESSAGE = 30 * MiB
# The multipart envelope around a file of the largest size: boundaries, part headers, and a
# few small fields a client may add. A body past MAX_FILE plus this is refused.
MULTIPART_OVERHEAD = 64 * 1024
MAX_BODY = MAX_FILE + MULTIPART_OVERHEAD
DEFAULT_QUOTA = 50 * MiB
DEFAULT_KEEP_UNSENT = 24 * 3600.0
# Every upload counts at least this much against the quota: a quota of bytes alone would let
# a user store millions of 10-byte files (four inodes each); this way at most 3 200 a user.
MIN_CHARGE = 16 * 1024
# An upload still arriving after this long is taken for a leftover of a crash and removed.
STALE_INCOMING = 3600.0
# The parts and part headers a multipart upload may carry; more is not an upload chatd takes.
_MAX_PARTS = 8
_MAX_PART_HEADERS = 8 * 1024

# The type is decided by the content's first bytes, never by the name or the client's word.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
)
_HEAD = max(len(magic) for magic, _, _ in _MAGIC)
EXTENSIONS: dict[str, str] = {mime: extension for _, mime, extension in _MAGIC}
_ID = re.compile(r"^f[0-9a-f]{24}$")
_OFFERED = ".offered"
_EXPIRED = ".json.expired"


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    mime: str
    size: int
    sha256: str
    owner: str  # the routing key of who uploaded it: `b:{buyer}` or `s:{shop}`

    def attachment(self) -> Attachment:
        return Attachment(id=self.id, name=self.name, mime=self.mime, size=self.size)


@dataclass(frozen=True, slots=True)
class FileRefused:
    too_large: bool
    message: str
    details: dict[str, Any] | None = None


class TooLarge(Exception):
    """The upload went past its limit; what came before it is discarded."""


class BadUpload(Exception):
    """The body is not a multipart upload with one file in the field `file`."""


def sniff(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) of a JPEG, PNG or PDF; None for anything else."""
    for magic, mime, extension in _MAGIC:
        if data.startswith(magic):
            return mime, extension
    return None


def clean_name(name: str | None, extension: str) -> str:
    """A display name without paths or control characters, at most 200 characters, whose
    extension is `extension` (the sniffed type's) whatever the uploaded name said: a PDF
    uploaded as `report.html` is `report.pdf`, so that nothing downstream (a browser, a
    desktop opening the download) takes it for another type."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    stem, dot, _ = base.rpartition(".")
    if dot and stem.strip(" ."):
        base = stem
    base = base.rstrip(" .")[: 200 - len(extension)]
    return (base or "file") + extension


# How browsers write a file name into a multipart body (the HTML standard's multipart/form-data
# encoding): `"` as %22, and line breaks as %0A and %0D. Read back, a name keeps its quotes.
_FORM_ESCAPES = re.compile(r"%(22|0A|0D)", re.IGNORECASE)
_FORM_UNESCAPED = {"22": '"', "0a": "\n", "0d": "\r"}


def form_filename(raw: bytes) -> str:
    """A multipart part's `filename` as the uploader named the file: a browser's `%22` is
    `"` again (its line breaks go with the other control characters in `clean_name`)."""
    text = raw.decode("utf-8", "replace")
    return _FORM_ESCAPES.sub(lambda found: _FORM_UNESCAPED[found.group(1).lower()], text)


def download_name(upload: Upload) -> str:
    """The name a download is offered under: its extension follows the sniffed type, also
    for files stored before names were made to (their metadata kept the uploaded name)."""
    return clean_name(upload.name, EXTENSIONS.get(upload.mime, ""))


class Incoming:
    """One upload's content on its way in: written to a temporary file as it arrives,
    counted, hashed and sniffed. A write that would pass `limit` raises `TooLarge` and
    writes nothing of itself: the file never holds more than `limit` bytes."""

    def __init__(self, path: Path, limit: int = MAX_FILE) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.limit:
            raise TooLarge(f"a file may be at most {self.limit // MiB} MiB")
        assert self._file is not None, "written after close"
        # A plain write on the event loop: chunks are at most uvicorn's read size (~64 KiB)
        # and land in the page cache; the one slow step, fsync, runs in a thread (`sync`).
        self._file.write(chunk)
        self._hash.update(chunk)
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def sync(self) -> None:
        """Flushes the content to the disk and closes the file (blocking)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


async def read_multipart(
    content_type: str | None,
    stream: AsyncIterator[bytes],
    sink: Incoming,
    body_limit: int = MAX_BODY,
) -> str | None:
    """Reads a multipart body from `stream` into `sink` (the part `file`); its file name.

    Bytes are counted as they arrive, whatever the request's headers declared: past
    `body_limit` in all, or past the sink's limit in the file, it raises `TooLarge` without
    reading further. `BadUpload` for a body that is not one file in the field `file`."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload("send the file as multipart/form-data in the field `file`")
    reader = _PartReader(sink)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": reader.on_part_begin,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
        },
    )
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > body_limit:
                raise TooLarge(f"a file may be at most {MAX_FILE // MiB} MiB")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise BadUpload(f"not a valid multipart body: {exc}") from exc
    if not reader.file_done:
        raise BadUpload("send the file in the multipart field `file`")
    return reader.filename


class MultipartParts(abc.ABC):
    """The part of python-multipart's callbacks every multipart reader shares: parts counted
    (at most `max_parts`, else `BadUpload` naming `what` the body is), each part's headers
    bounded, and its Content-Disposition options handed to `on_part` once they end."""

    def __init__(self, max_parts: int, what: str) -> None:
        self.max_parts = max_parts
        self.what = what
        self.parts = 0
        self.header_bytes = 0
        self.disposition = b""
        self._field = b""
        self._value = b""

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise BadUpload(f"{self.what} has at most {self.max_parts} parts")
        self.header_bytes = 0
        self.disposition = b""
        self.part_begun()

    def part_begun(self) -> None:  # noqa: B027 - an optional hook: most readers need none
        """A new part starts: the reader forgets where the last one went."""

    def _count(self, size: int) -> None:
        # A part's headers are kept until they end: bounded, as the body is.
        self.header_bytes += size
        if self.header_bytes > _MAX_PART_HEADERS:
            raise BadUpload("a part's headers are too long")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._field.strip().lower() == b"content-disposition":
            self.disposition = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.on_part(options)

    @abc.abstractmethod
    def on_part(self, options: dict[bytes, bytes]) -> None:
        """A part's headers ended; `options` are its Content-Disposition's (name, filename)."""


class _PartReader(MultipartParts):
    """python-multipart's callbacks: the part `file` into the sink, other parts dropped."""

    def __init__(self, sink: Incoming) -> None:
        super().__init__(_MAX_PARTS, "an upload")
        self.sink = sink
        self.in_file = False
        self.file_seen = False
        self.file_done = False
        self.filename: str | None = None

    def part_begun(self) -> None:
        self.in_file = False

    def on_part(self, options: dict[bytes, bytes]) -> None:
        if options.get(b"name") != b"file":
            return
        if self.file_seen:
            raise BadUpload("an upload carries one file")
        if b"filename" not in options:
            raise BadUpload("send the file in the multipart field `file`")
        self.file_seen = self.in_file = True
        self.filename = form_filename(options[b"filename"])

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.file_done = True
            self.in_file = False


_meta_encoder = msgspec.json.Encoder()
_meta_decoder = msgspec.json.Decoder(Upload)

# What the log says of a file: the chats it was sent in, or the orders naming it as a photo.
ChatsWithFile = Callable[[str], Awaitable[list[str]]]
OrdersWithFile = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class Swept:
    """One sweep: uploads removed, and uploads found sent (kept for good)."""

    removed: int
    kept: int


class FileStore:
    def __init__(
        self,
        root: Path,
        *,
        quota: int = DEFAULT_QUOTA,
        keep_unsent: float = DEFAULT_KEEP_UNSENT,
        chats_with_file: ChatsWithFile | None = None,
        orders_with_file: OrdersWithFile | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.quota = quota
        self.keep_unsent = keep_unsent
        # The sweep's period; an upload hidden by one sweep is removed by the next, so that a
        # `send` that read its metadata just before has long committed when it is looked for.
        self.sweep_every = min(60.0, max(keep_unsent / 4, 0.05))
        self._chats_with_file = chats_with_file
        self._orders_with_file = orders_with_file
        self._clock = clock
        self._blobs = root / "blobs"
        self._meta = root / "meta"
        self._refs = root / "refs"
        self._pending = root / "pending"
        self._incoming = root / "incoming"
        self._owners = KeyedLocks()

    def open(self) -> None:
        for directory in (self._blobs, self._meta, self._refs, self._pending, self._incoming):
            directory.mkdir(parents=True, exist_ok=True)
        self._drop_stale_incoming()

    # ---- uploads -----------------------------------------------------------------------------

    def incoming(self) -> Incoming:
        """A sink for one upload's content, on the store's file system (renamed into place)."""
        return Incoming(self._incoming / f"{secrets.token_hex(12)}.part")

    async def admit(self, owner: str) -> FileRefused | None:
        """Before an upload's body is read: refused when `owner` has no room left even for
        the smallest file."""
        return await self._over_quota(owner, 0)

    async def save(self, data: bytes, name: str | None, owner: str) -> Upload | FileRefused:
        if len(data) > MAX_FILE:
            return FileRefused(True, f"a file may be at most {MAX_FILE // MiB} MiB")
        incoming = self.incoming()
        try:
            incoming.write(data)
        except BaseException:
            incoming.discard()
            raise
        return await self.store(incoming, name, owner)

    async def store(self, incoming: Incoming, name: str | None, owner: str) -> Upload | FileRefused:
        """Keeps what `incoming` received as `owner`'s upload; the sink is used up either way."""
        try:
            if incoming.size == 0:
                # Not "only JPEG, PNG and PDF": the uploader chose one, and nothing came.
                return FileRefused(False, "the file is empty")
            kind = sniff(incoming.head)
            if kind is None:
                return FileRefused(False, "only JPEG, PNG and PDF files are accepted")
            mime, extension = kind
            upload = Upload(
                id="f" + secrets.token_hex(12),
                name=clean_name(name, extension),
                mime=mime,
                size=incoming.size,
                sha256=incoming.sha256,
                owner=owner,
            )

            async def keep() -> Upload | FileRefused:
                # One upload of a user at a time on this node: two at once cannot both fit
                # in the last of the room.
                refused = await self._over_quota(owner, upload.size)
                if refused is not None:
                    return refused
                await asyncio.to_thread(self._write, upload, incoming)
                return upload

            return await self._owners.run(owner, keep)
        finally:
            incoming.discard()

    def _write(self, upload: Upload, incoming: Incoming) -> None:
        incoming.sync()
        refs = self._refs / upload.sha256
        blob = self._blobs / upload.sha256
        known = refs.is_dir()
        refs.mkdir(exist_ok=True)
        if not known and blob.exists():
            # A blob from before uploads were counted: whoever uses it is unknown, keep it.
            (refs / "legacy").touch()
        # The reference comes before the look at the blob: a sweep removing the blob's last
        # other upload looks again for references after moving the blob aside (`_release`).
        (refs / upload.id).touch()
        if not blob.exists():
            os.replace(incoming.path, blob)
        at = int(self._clock())
        pending = self._owner_dir(upload.owner)
        pending.mkdir(exist_ok=True)
        (pending / f"{upload.id}.{upload.size}.{at}").touch()
        # Last: the id exists for everyone once all the rest is in place.
        _atomic_write(self._meta / f"{upload.id}.json", _meta_encoder.encode(upload))

    # ---- the quota ---------------------------------------------------------------------------

    def _owner_dir(self, owner: str) -> Path:
        # Owners are routing keys made of token claims: hashed, never a path of their own.
        return self._pending / hashlib.sha256(owner.encode()).hexdigest()[:32]

    def _usage(self, owner: str) -> tuple[int, list[str]]:
        """The bytes `owner`'s unsent uploads count, and those of them named in a `send`."""
        used = 0
        offered: list[str] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self._owner_dir(owner)) as it:
            for entry in it:
                file_id, _, rest = entry.name.partition(".")
                if rest == _OFFERED[1:]:
                    offered.append(file_id)
                    continue
                size = rest.partition(".")[0]
                if size.isdigit():
                    used += max(int(size), MIN_CHARGE)
        return used, offered

    async def _over_quota(self, owner: str, size: int) -> FileRefused | None:
        charge = max(size, MIN_CHARGE)
        used, offered = await asyncio.to_thread(self._usage, owner)
        if used + charge > self.quota and offered:
            # Some of them may have been sent since: those count no more.
            for file_id in offered:
                await self._settle(owner, file_id)
            used, _ = await asyncio.to_thread(self._usage, owner)
        if used + charge <= self.quota:
            return None
        quota_mib = self.quota / MiB
        message = (
            f"files not sent in any chat may take {quota_mib:g} MiB per user and "
            f"{used / MiB:.1f} MiB are taken: send them in a chat, or wait until unsent "
            f"files are removed ({self.keep_unsent / 3600:g} h after their upload)"
        )
        return FileRefused(True, message, {"quota": self.quota, "unsent": used})

    async def _kept(self, file_id: str) -> bool:
        """Whether the log keeps the file: sent in a chat, or named by an order as its photo."""
        if self._chats_with_file is not None and await self._chats_with_file(file_id):
            return True
        return self._orders_with_file is not None and bool(await self._orders_with_file(file_id))

    async def _settle(self, owner: str, file_id: str) -> None:
        """An upload named in a `send` or an order: counted no more once the log keeps it;
        else no longer flagged."""
        directory = self._owner_dir(owner)
        kept = await self._kept(file_id)
        await asyncio.to_thread(self._unflag, directory, file_id, kept)

    @staticmethod
    def _unflag(directory: Path, file_id: str, sent: bool) -> None:
        with contextlib.suppress(FileNotFoundError):
            for path in directory.glob(f"{file_id}.*"):
                if sent or path.name.endswith(_OFFERED):
                    path.unlink(missing_ok=True)

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, file_id: str) -> Upload | None:
        if not _ID.match(file_id):
            return None
        path = self._meta / f"{file_id}.json"
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return _meta_decoder.decode(raw)

    def blob_path(self, upload: Upload) -> Path:
        return self._blobs / upload.sha256

    async def describe(self, ids: list[str], owner: str) -> tuple[Attachment, ...] | Rejection:
        """The attachments of a message: every id must be a file `owner` uploaded."""
        found: list[Attachment] = []
        for file_id in dict.fromkeys(ids):
            upload = await self.get(file_id)
            if upload is None or upload.owner != owner:
                return not_found("file")
            found.append(upload.attachment())
        if sum(a.size for a in found) > MAX_PER_MESSAGE:
            return bad_frame(f"a message's attachments may be at most {MAX_PER_MESSAGE // MiB} MiB")
        await self.offer(owner, [a.id for a in found])
        return tuple(found)

    async def offer(self, owner: str, ids: list[str]) -> None:
        """Flags `owner`'s uploads under `ids` as maybe kept (named in a `send` or an order):
        the quota asks the log about these only (`_over_quota`)."""
        directory = self._owner_dir(owner)
        await asyncio.to_thread(_touch_all, [directory / f"{i}{_OFFERED}" for i in ids])

    # ---- the sweep ---------------------------------------------------------------------------

    async def run_sweeper(self, running: Callable[[], bool]) -> None:
        """Every `sweep_every` seconds, while `running()`: `sweep()`. Runs until cancelled."""
        while True:
            await asyncio.sleep(self.sweep_every)
            if not running():
                continue
            try:
                await self.sweep()
            except Exception:
                log.exception("sweeping unsent uploads failed; trying again later")

    async def sweep(self) -> Swept:
        """Removes uploads never sent in a chat `keep_unsent` seconds after their upload;
        a photo a registered order names counts as sent.

        In two steps, one sweep apart: an expired upload's metadata is first hidden (no
        `send` or order can name it any more, no download finds it), and the next sweep
        removes it unless the log shows it kept meanwhile (a `send` or an order that read it
        just before it was hidden), in which case it comes back. A kept upload is never
        counted again."""
        removed = kept = 0
        for file_id in await asyncio.to_thread(self._hidden):
            upload = await asyncio.to_thread(self._read_hidden, file_id)
            if upload is None:
                continue
            if await self._kept(file_id):
                await asyncio.to_thread(self._restore, upload)
                kept += 1
            else:
                await asyncio.to_thread(self._remove, upload)
                removed += 1
        deadline = self._clock() - self.keep_unsent
        for directory, file_id in await asyncio.to_thread(self._expired, deadline):
            if await self._kept(file_id):
                await asyncio.to_thread(self._unflag, directory, file_id, True)
                kept += 1
            else:
                await asyncio.to_thread(self._hide, directory, file_id)
        await asyncio.to_thread(self._drop_stale_incoming)
        return Swept(removed=removed, kept=kept)

    def _expired(self, deadline: float) -> list[tuple[Path, str]]:
        found: list[tuple[Path, str]] = []
        for directory in self._pending.iterdir():
            with contextlib.suppress(FileNotFoundError), os.scandir(directory) as it:
                for entry in it:
                    parts = entry.name.split(".")
                    if len(parts) == 3 and parts[2].isdigit() and int(parts[2]) <= deadline:
                        found.append((directory, parts[0]))
        return found

    def _hide(self, directory: Path, file_id: str) -> None:
        try:
            os.rename(self._meta / f"{file_id}.json", self._meta / f"{file_id}{_EXPIRED}")
        except FileNotFoundError:
            # Hidden by another node already, or its metadata is gone: nothing to count.
            if not (self._meta / f"{file_id}{_EXPIRED}").exists():
                self._unflag(directory, file_id, True)

    def _hidden(self) -> list[str]:
        return [p.name[: -len(_EXPIRED)] for p in self._meta.glob(f"*{_EXPIRED}")]

    def _read_hidden(self, file_id: str) -> Upload | None:
        try:
            return _meta_decoder.decode((self._meta / f"{file_id}{_EXPIRED}").read_bytes())
        except FileNotFoundError:
            return None

    def _restore(self, upload: Upload) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(self._meta / f"{upload.id}{_EXPIRED}", self._meta / f"{upload.id}.json")
        self._unflag(self._owner_dir(upload.owner), upload.id, True)

    def _remove(self, upload: Upload) -> None:
        self._unflag(self._owner_dir(upload.owner), upload.id, True)
        self._release(upload.sha256, upload.id)
        (self._meta / f"{upload.id}{_EXPIRED}").unlink(missing_ok=True)

    def _release(self, sha256: str, file_id: str) -> None:
        """Drops one upload's reference to a blob, and the blob with its last reference."""
        refs = self._refs / sha256
        (refs / file_id).unlink(missing_ok=True)
        try:
            refs.rmdir()
        except OSError:
            return  # other uploads use it (or it is from before references were kept)
        blob = self._blobs / sha256
        aside = self._blobs / f".{sha256}.{secrets.token_hex(4)}.gone"
        try:
            os.rename(blob, aside)
        except FileNotFoundError:
            return
        # An upload of the same content may have come between the rmdir and the rename: it
        # made its reference before looking for the blob, so it is visible now.
        with contextlib.suppress(FileNotFoundError):
            if any(refs.iterdir()):
                os.replace(aside, blob)
                return
        aside.unlink(missing_ok=True)

    def _drop_stale_incoming(self) -> None:
        deadline = time.time() - STALE_INCOMING
        with contextlib.suppress(FileNotFoundError), os.scandir(self._incoming) as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < deadline:
                        os.unlink(entry.path)


def _touch_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.touch()


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
