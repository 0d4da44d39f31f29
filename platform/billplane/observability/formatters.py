"""The two log formats: one JSON object per line (production), or readable text (development)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec

from billplane.observability.records import SCRUBBED
from billplane.observability.redaction import redact

# Attributes every LogRecord has: anything else on a record is context or `extra` and is output.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# Context fields, in the order the text format appends them.
_CONTEXT = (
    "request_id",
    "tenant",
    "method",
    "route",
    "status",
    "duration_ms",
    "task",
    "job_id",
    "tenant_id",
    "tenant_schema",
)
_encoder = msgspec.json.Encoder(enc_hook=str)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message(record: logging.LogRecord) -> str:
    # The record factory scrubbed it already (records.py); a record made before the factory was
    # installed, or by a factory someone put over ours, is scrubbed here instead.
    message = record.getMessage()
    return message if record.__dict__.get(SCRUBBED) else redact(message)


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    # Redacted again: a record made before the factory was installed was never scrubbed.
    return redact(text) if text else None


class JsonFormatter(logging.Formatter):
    """``{"timestamp", "level", "logger", "message", ...context, "exception"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                # Context fields are billplane's own (a checked request id, a template, a slug);
                # anything else came in through `extra` and is scanned.
                entry[key] = redact(value) if isinstance(value, str) and key not in _CONTEXT else value
        exception = _exception(self, record)
        if exception:
            entry["exception"] = exception
        return _encoder.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request_id=... tenant=... route=...]`` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {_message(record)}"
        context = [f"{key}={record.__dict__[key]}" for key in _CONTEXT if key in record.__dict__]
        if context:
            line += " [" + " ".join(context) + "]"
        exception = _exception(self, record)
        return f"{line}\n{exception}" if exception else line
