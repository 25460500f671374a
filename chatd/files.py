"""Uploaded files: content-addressed blobs on disk beside the database, with their metadata.

A file's id is random, not its hash, so an id reveals nothing about content someone else
uploaded. Blobs are named by SHA-256 and stored once however often they are uploaded. Every
write goes to a temporary name first and is renamed into place, so a crash never leaves a
half-written file under a real name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import msgspec

from chatd.domain.errors import Rejection, bad_frame, not_found
from protocol.events import Attachment

MAX_FILE = 5 * 1024 * 1024
MAX_PER_MESSAGE = 30 * 1024 * 1024

# The type is decided by the content's first bytes, never by the name or the client's word.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
)
_ID = re.compile(r"^f[0-9a-f]{24}$")


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


def sniff(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) of a JPEG, PNG or PDF; None for anything else."""
    for magic, mime, extension in _MAGIC:
        if data.startswith(magic):
            return mime, extension
    return None


def clean_name(name: str | None, extension: str) -> str:
    """A display name without paths or control characters, at most 200 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:200] or f"file{extension}"


_meta_encoder = msgspec.json.Encoder()
_meta_decoder = msgspec.json.Decoder(Upload)


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._meta = root / "meta"

    def open(self) -> None:
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._meta.mkdir(parents=True, exist_ok=True)

    async def save(self, data: bytes, name: str | None, owner: str) -> Upload | FileRefused:
        if len(data) > MAX_FILE:
            return FileRefused(True, f"a file may be at most {MAX_FILE // (1024 * 1024)} MiB")
        kind = sniff(data)
        if kind is None:
            return FileRefused(False, "only JPEG, PNG and PDF files are accepted")
        mime, extension = kind
        digest = hashlib.sha256(data).hexdigest()
        upload = Upload(
            id="f" + secrets.token_hex(12),
            name=clean_name(name, extension),
            mime=mime,
            size=len(data),
            sha256=digest,
            owner=owner,
        )
        await asyncio.to_thread(self._write, upload, data)
        return upload

    def _write(self, upload: Upload, data: bytes) -> None:
        blob = self._blobs / upload.sha256
        if not blob.exists():
            _atomic_write(blob, data)
        _atomic_write(self._meta / f"{upload.id}.json", _meta_encoder.encode(upload))

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
            return bad_frame(
                f"a message's attachments may be at most {MAX_PER_MESSAGE // (1024 * 1024)} MiB"
            )
        return tuple(found)


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
