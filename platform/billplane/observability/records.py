"""Every log record, whoever logs it, carries the request or job it belongs to, with secrets scrubbed.

Done in the LogRecord factory rather than in a handler or formatter: the factory runs once per
record that passed its logger's level check (so a disabled level costs nothing here), before any
handler sees the record, so every handler (our JSON or text output, pytest's caplog, a library's
own handler) gets the same enriched and scrubbed record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billplane.observability.context import current_job, current_request
from billplane.observability.redaction import redact

_formatter = logging.Formatter()
_MARK = "_billplane_observability"


def _enrich(record: logging.LogRecord) -> None:
    request = current_request.get()
    if request is not None:
        record.request_id = request.request_id
        record.method = request.method
        route = request.route
        if route is not None:
            record.route = route
        tenant = request.tenant
        if tenant is not None:
            record.tenant = tenant
    job = current_job.get()
    if job is not None:
        record.__dict__.update(job)


# Loggers whose lines billplane builds only from values that cannot hold a secret (the access
# line: method, route template, status), so the hot path skips the scan.
TRUSTED_LOGGERS = frozenset({"billplane.access"})
SCRUBBED = "_billplane_scrubbed"


def _scrub(record: logging.LogRecord) -> None:
    record.__dict__[SCRUBBED] = True
    if record.name in TRUSTED_LOGGERS and not record.exc_info:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it for logging's own error report
        return
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        # Cached on the record: formatters (caplog's too) reuse exc_text instead of formatting anew.
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_record_factory() -> None:
    """Wrap the current LogRecord factory once per process (idempotent)."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _enrich(record)
        _scrub(record)
        return record

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)
