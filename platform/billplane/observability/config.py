"""Parsing the observability environment variables (listed in billplane.settings.ENVIRONMENT)."""

from __future__ import annotations

from collections.abc import Callable

MIN_TOKEN_LENGTH = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"json", "text"}:
        raise ValueError("must be json or text")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in _BOOLEANS:
        raise ValueError("must be true or false")
    return _BOOLEANS[value]


def _token(raw: str) -> str:
    if len(raw.strip()) < MIN_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")  # never echo the value
    return raw.strip()


def _label_count(raw: str) -> int:
    count = int(raw)
    if count < 0:
        raise ValueError("must be 0 or more")
    return count


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 < port < 65536:  # noqa: PLR2004 - the TCP port range
        raise ValueError("must be between 1 and 65535")
    return port


OBSERVABILITY_CONVERTERS: dict[str, Callable[[str], object]] = {
    "log_format": _log_format,
    "log_level": _log_level,
    "metrics_enabled": _boolean,
    "metrics_token": _token,
    "metrics_tenant_labels": _label_count,
    "metrics_dir": str.strip,
    "worker_metrics_port": _port,
    "tracing": _boolean,
}
