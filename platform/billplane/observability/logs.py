"""Process-wide logging set-up for the long-running commands (`run`, `worker`, `dev`)."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from billplane.observability.formatters import JsonFormatter, TextFormatter
from billplane.observability.records import install_record_factory

LogFormat = Literal["json", "text"]
_HANDLER_MARK = "_billplane_handler"


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger in the chosen format; replaces the one an earlier call added.

    Libraries' loggers (uvicorn, procrastinate, SQLAlchemy) propagate to it, so their lines come
    out in the same format, enriched and scrubbed like billplane's own.
    """
    install_record_factory()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
