"""The message log as JSON Lines: what `chatd export` writes, `chatd gen-log` makes and
`chatd replay` reads.

One line is one event of the log, in position order:

    {"pos": 7, "stream": "c1f...", "seq": 3, "at": "2024-05-01T10:00:03Z", "kind": "message",
     "author": {"role": "buyer", "id": "b-1", "name": "Люда"}, "data": {"attachments": []},
     "text": "Здравствуйте!"}

`stream` is a chat, or `order:{id}` for an order the marketplace registered; `kind`, `author`,
`data`, `text` and `text_buyer` are those of `protocol.events.Event`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgspec

from protocol.events import Author, Event, parse_data


class LogRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    pos: int
    stream: str
    seq: int
    at: datetime
    kind: str
    author: Author
    data: Any
    text: str | None = None
    text_buyer: str | None = None


class LogError(Exception):
    """A line of a log that is not a record."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LogRecord)


def record_of(pos: int, event: Event) -> LogRecord:
    return LogRecord(
        pos=pos,
        stream=event.stream,
        seq=event.seq,
        at=event.at,
        kind=event.kind,
        author=event.author,
        data=event.data,
        text=event.text,
        text_buyer=event.text_buyer,
    )


def event_of(record: LogRecord) -> Event:
    """The record as a `protocol.events.Event` with typed `data` (raises for a bad `data`)."""
    data = record.data if isinstance(record.data, msgspec.Struct) else typed(record)
    return Event(
        stream=record.stream,
        seq=record.seq,
        at=record.at,
        kind=record.kind,
        author=record.author,
        data=data,
        text=record.text,
        text_buyer=record.text_buyer,
    )


def typed(record: LogRecord) -> msgspec.Struct:
    """The record's `data` as its kind's Struct; KeyError for an unknown kind."""
    if isinstance(record.data, msgspec.Struct):
        return record.data
    return parse_data(record.kind, record.data)


def encode(record: LogRecord) -> bytes:
    return _encoder.encode(record) + b"\n"


def decode(line: bytes | str) -> LogRecord:
    return _decoder.decode(line)


class LogWriter:
    """Writes records to a file, or to standard output for `-`."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._file: IO[bytes] | None = None
        self.count = 0

    def __enter__(self) -> LogWriter:
        if self._path == "-":
            self._file = sys.stdout.buffer
        else:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "wb")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is None:
            return
        if self._path == "-":
            self._file.flush()
        else:
            self._file.close()
        self._file = None

    def write(self, record: LogRecord) -> None:
        assert self._file is not None, "use LogWriter as a context manager"
        self._file.write(encode(record))
        self.count += 1

    def write_all(self, records: Iterable[LogRecord]) -> int:
        for record in records:
            self.write(record)
        return self.count


def read_log(path: str | Path) -> Iterator[LogRecord]:
    """The records of a log file (`-`: standard input); LogError names a bad line."""
    with contextlib.ExitStack() as stack:
        source: IO[bytes] = (
            sys.stdin.buffer if str(path) == "-" else stack.enter_context(open(path, "rb"))
        )
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                yield decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise LogError(f"{path}:{number}: not a log record: {exc}") from None


def write_log(path: str | Path, records: Iterable[LogRecord]) -> int:
    with LogWriter(path) as writer:
        return writer.write_all(records)
