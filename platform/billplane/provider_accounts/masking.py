"""What may be shown of a secret: a hint to recognise it, and messages scrubbed of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from billplane.plugins.contract import ProviderPlugin

_SHOWN = 4
# Showing the last 4 characters of a short secret would give away too much of it.
_MIN_LENGTH_TO_SHOW = 12
_MIN_REDACTED_LENGTH = 4
REDACTED = "[redacted]"
MAX_MESSAGE = 500


def mask(value: str) -> str:
    return "..." + value[-_SHOWN:] if len(value) >= _MIN_LENGTH_TO_SHOW else "..."


def credentials_hint(plugin: ProviderPlugin, credentials: msgspec.Struct) -> dict[str, str]:
    """``{field: "...4242"}`` for each of the plugin's secret fields that holds a value; nothing else."""
    hint = {}
    for name in sorted(plugin.secret_fields):
        value = getattr(credentials, name, None)
        if value is not None:
            hint[name] = mask(str(value))
    return hint


def secret_strings(*values: Any) -> list[str]:
    """Every string inside ``values`` (nested dicts and lists too) long enough to be worth scrubbing."""
    return sorted(set(_strings(values)), key=len, reverse=True)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if len(value) >= _MIN_REDACTED_LENGTH:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def redact(message: str, secrets: Iterable[str]) -> str:
    """``message`` without any of ``secrets`` (a provider or a validator may echo a value), shortened."""
    for secret in secrets:
        message = message.replace(secret, REDACTED)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
