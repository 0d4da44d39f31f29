"""Scrubbing secrets out of log text: every configured secret, every secret billplane opened, and
the shapes of keys and credentials wherever they come from.

Two nets, because either alone has holes: known values catch a secret of any shape once billplane
has seen it (the settings' keys, provider credentials when sealed or opened, webhook secrets);
patterns catch the shapes of secrets billplane never held (an API key someone pasted into a URL,
an Authorization header a library logged). Logging code should still never hand a secret to a
logger; this is the net below it (``records.py`` applies it to every record).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# Secrets shorter than this are not remembered as values: a short credential field (a region, a
# mode) would otherwise blank out ordinary words everywhere. Real secrets are far longer.
MIN_SECRET_LENGTH = 12
_MAX_REMEMBERED = 10_000

_SOURCES = (
    # A tenant API key (bpk_ + 43 characters); the 12-character display prefix stays readable.
    r"(?P<bpk>bpk_[A-Za-z0-9_-]{8})[A-Za-z0-9_-]{20,}",
    # Standard Webhooks / Stripe signing secrets and Stripe-style secret keys.
    r"\bwhsec_[A-Za-z0-9+/=_-]{6,}",
    r"\b(?:sk|rk)_[A-Za-z0-9]+_[A-Za-z0-9_]{6,}",
    # A bearer credential wherever it is written: an Authorization header, a repr of headers.
    r"(?P<bearer>\b[Bb]earer\s+)[^\s\"',;]+",
    r"(?P<basic>\b[Bb]asic\s+)[A-Za-z0-9+/=]{8,}",
    r"(?P<header>\b[Aa]uthorization[\"']?\s*[:=]\s*[\"']?)(?![Bb]earer\s|[Bb]asic\s)[^\s\"',;]+",
    # The password of a database URL.
    r"(?P<url>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?=@)",
)
_PATTERNS = re.compile("|".join(_SOURCES))
# Each pattern above needs one of these substrings to match.
_TRIGGERS = ("bpk_", "whsec_", "sk_", "rk_", "earer", "asic", "uthorization", "://")


def _replace_pattern(match: re.Match[str]) -> str:
    for group in ("bpk", "bearer", "basic", "header", "url"):
        kept = match.group(group)
        if kept is not None:
            return kept + REDACTED
    return REDACTED


class Redactor:
    """Known secret values and secret shapes, replaced by ``[redacted]``.

    Remembering is rare (start-up, an account's credentials opened); redacting runs per emitted
    log record, so the known values are compiled into one regular expression, rebuilt lazily
    after a change. Plain dict and attribute updates under the GIL: no lock on the logging path.
    """

    def __init__(self) -> None:
        self._known: dict[str, None] = {}  # insertion-ordered set: the oldest is dropped first
        self._compiled: re.Pattern[str] | None = None

    def remember(self, values: Iterable[object]) -> None:
        changed = False
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and value not in self._known:
                self._known[value] = None
                changed = True
        while len(self._known) > _MAX_REMEMBERED:
            del self._known[next(iter(self._known))]
        if changed:
            self._compiled = None

    def forget_all(self) -> None:
        self._known.clear()
        self._compiled = None

    def redact(self, text: str) -> str:
        if self._known:
            compiled = self._compiled
            if compiled is None:
                # Longest first: a secret that contains another is replaced whole.
                ordered = sorted(self._known, key=len, reverse=True)
                compiled = self._compiled = re.compile("|".join(map(re.escape, ordered)))
            text = compiled.sub(REDACTED, text)
        # Substring tests run in C and rule out most text before the patterns' regex scans it.
        if any(trigger in text for trigger in _TRIGGERS):
            return _PATTERNS.sub(_replace_pattern, text)
        return text


REDACTOR = Redactor()


def remember_secrets(*values: object) -> None:
    """Never let these values reach a log line (strings shorter than ``MIN_SECRET_LENGTH`` are ignored)."""
    REDACTOR.remember(values)


def remember_credentials(credentials: object) -> None:
    """Every string in a provider's credentials (nested too): the plugin knows which are secret,
    the vault does not, and over-redacting a long non-secret value costs nothing."""
    found: list[str] = []
    stack = [credentials]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    REDACTOR.remember(found)


def redact(text: str) -> str:
    return REDACTOR.redact(text)
