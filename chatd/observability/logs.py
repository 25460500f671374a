"""Log lines as text or as JSON, with structured fields.

`chatd serve --log-format json` writes one JSON object per line: `ts` (RFC 3339, UTC, to the
millisecond), `level`, `logger`, `msg`, then the record's structured fields, and `exc` with
the traceback when there is one. `text` (the default) writes the same line for people:
`2024-05-01 12:00:00,123 INFO chatd.web.ws: ws closed session=... code=1000`.

Structured fields travel in one attribute of the record, given by `fields`:

    log.info("ws closed", extra=fields(session=session, code=1000))

so that a field can never collide with an attribute of `logging.LogRecord` itself, and other
libraries' `extra` attributes (uvicorn's `color_message`, say) stay out of the line.

What goes into a field is the caller's choice, and chatd's callers keep two things out of
every line: tokens and API keys (a credential in a log is a credential leaked to whoever
reads the logs) and the texts of messages (the users' words are not the operator's to
read). `tests/e2e/test_operations.py` runs a session with a distinctive token and text and
looks for both in the log.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")

# The record attribute that carries the structured fields.
_FIELDS: Final = "chatd_fields"
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: the structured fields of its line (None values are left
    out)."""
    return {_FIELDS: {k: v for k, v in values.items() if v is not None}}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    found = getattr(record, _FIELDS, None)
    return found if isinstance(found, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is escaped into `exc`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            # `Z` rather than `+00:00`: what most log pipelines parse without being told.
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            line.setdefault(key, value)  # the four above always mean what they say
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """chatd's text lines, with the structured fields after the message as `key=value`."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = super().formatMessage(record)
        extra = fields_of(record)
        if not extra:
            return message
        return message + " " + " ".join(f"{k}={_text_value(v)}" for k, v in extra.items())


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        # Quoted only when it would not read as one word.
        return (
            value
            if value and not any(c.isspace() or c in '"=' for c in value)
            else (json.dumps(value, ensure_ascii=False))
        )
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list | tuple | bool) or value is None:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return str(value)


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written, not when the handler was
    made: a command run in-process (tests, embedding) may outlive the stream it started with,
    and a handler holding that stream would fail on every line after it was closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def configure_logging(level: str = "info", log_format: LogFormat = "text") -> None:
    """Every line of the process (chatd's, uvicorn's, asyncio's) through one handler on
    stderr in `log_format`. uvicorn must then be run with `log_config=None`, so that it adds
    no handlers of its own and its lines come here too."""
    handler = StderrHandler()
    handler.setFormatter(formatter(log_format))
    # `force`: a second call (tests, or a command run in-process after another) replaces the
    # handler rather than adding one more.
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
