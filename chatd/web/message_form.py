"""A message sent as `multipart/form-data` (`POST /api/v1/chats/{chat}/messages`): a `text`
part and up to `MAX_FILES` parts `file`, each taken as `POST /api/v1/files` takes one.
Another shape of form may name its text part otherwise and ask for a few short text fields
besides (`POST /api/v1/seller/message`: `message` and `replySign`).

Bytes are counted as they arrive, whatever the request's headers declared: past
`MAX_FORM_BODY` in all, or past `MAX_FILE` in one file (`chatd.files.Incoming`), it raises
`TooLarge` without reading further, and each file is written to the files directory as it
arrives, never held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from chatd.files import (
    MAX_PER_MESSAGE,
    MULTIPART_OVERHEAD,
    BadUpload,
    Incoming,
    MultipartParts,
    TooLarge,
    form_filename,
)

# A message carries at most this many files (as `send.attachments`), 30 MiB in all.
MAX_FILES = 10
MAX_FORM_BODY = MAX_PER_MESSAGE + MULTIPART_OVERHEAD
# The text part's bytes: the frame's bound on `text` (16 000 characters) in UTF-8.
MAX_TEXT_BYTES = 4 * 16_000
_MAX_PARTS = MAX_FILES + 2
# A short field beside the text (a reply's signature): far more than any it carries.
MAX_FIELD_BYTES = 1024


@dataclass
class MessageForm:
    text: str = ""
    # The short fields the caller asked for, by name, when the form had them.
    fields: dict[str, str] = field(default_factory=dict)
    # Each file's content as received, and the name it was uploaded under.
    files: list[tuple[Incoming, str | None]] = field(default_factory=list)

    def discard(self) -> None:
        for incoming, _ in self.files:
            incoming.discard()


async def read_message_form(
    content_type: str | None,
    stream: AsyncIterator[bytes],
    new_file: Callable[[], Incoming],
    text_part: str = "text",
    fields: tuple[str, ...] = (),
) -> MessageForm:
    """The text (the part `text_part`), the short `fields` and the files of a multipart
    message. `BadUpload` for a body that is not one; on any error every file received so far
    is discarded."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload(
            f"send the message as multipart/form-data with `{text_part}` and `file` parts"
        )
    parts = _Parts(new_file, text_part.encode(), {name.encode(): name for name in fields})
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": parts.on_part_begin,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
        },
    )
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > MAX_FORM_BODY:
                raise TooLarge(f"a message may carry at most {MAX_PER_MESSAGE >> 20} MiB")
            parser.write(chunk)
        parser.finalize()
        if parts.open_file:
            raise BadUpload("the body ended inside a file")
        try:
            parts.form.text = bytes(parts.text).decode("utf-8")
            for name, value in parts.values.items():
                parts.form.fields[name] = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadUpload("a text part is not UTF-8") from exc
    except FormParserError as exc:
        parts.form.discard()
        raise BadUpload(f"not a valid multipart body: {exc}") from exc
    except BaseException:
        parts.form.discard()
        raise
    return parts.form


class _Parts(MultipartParts):
    """python-multipart's callbacks: the text and the asked-for fields kept (bounded), each
    `file` into its own sink, any other part dropped."""

    def __init__(
        self, new_file: Callable[[], Incoming], text_part: bytes, fields: dict[bytes, str]
    ) -> None:
        super().__init__(_MAX_PARTS, "a message")
        self.new_file = new_file
        self.text_part = text_part
        self.field_names = fields
        self.values: dict[str, bytearray] = {}
        self.field: bytearray | None = None
        self.form = MessageForm()
        self.text = bytearray()
        self.text_seen = False
        self.into: str | None = None
        self.open_file = False

    def part_begun(self) -> None:
        self.into = None

    def on_part(self, options: dict[bytes, bytes]) -> None:
        name = options.get(b"name")
        if name == self.text_part:
            if self.text_seen:
                raise BadUpload(f"a message has one part `{self.text_part.decode()}`")
            self.text_seen = True
            self.into = "text"
        elif name is not None and name in self.field_names:
            field_name = self.field_names[name]
            if field_name in self.values:
                raise BadUpload(f"a message has one part `{field_name}`")
            self.field = self.values[field_name] = bytearray()
            self.into = "field"
        elif name == b"file":
            if len(self.form.files) >= MAX_FILES:
                raise BadUpload(f"a message carries at most {MAX_FILES} files")
            filename = options.get(b"filename")
            if filename is None:
                raise BadUpload("a part `file` needs a file name")
            self.form.files.append((self.new_file(), form_filename(filename)))
            self.into = "file"
            self.open_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.into == "text":
            if len(self.text) + end - start > MAX_TEXT_BYTES:
                raise BadUpload(f"the part `{self.text_part.decode()}` is too long")
            self.text += data[start:end]
        elif self.into == "field" and self.field is not None:
            if len(self.field) + end - start > MAX_FIELD_BYTES:
                raise BadUpload("a text field is too long")
            self.field += data[start:end]
        elif self.into == "file":
            self.form.files[-1][0].write(data[start:end])

    def on_part_end(self) -> None:
        if self.into == "file":
            self.open_file = False
        self.into = None
