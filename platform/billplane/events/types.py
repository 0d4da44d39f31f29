"""Event types and the patterns an endpoint subscribes with.

A type is ``<object>.<change>`` (``invoice.paid``). An endpoint's ``enabled_events`` lists exact
types, ``<prefix>.*`` (every type under that prefix: ``invoice.*``) or ``*``; an empty list means
every type. ``MATCHES_SQL`` is the same rule in SQL, for the fan-out in ``emit`` and for replays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TYPE_PATTERN = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
SUBSCRIPTION_PATTERN = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)*\.\*|[a-z_]+(\.[a-z_]+)+)$")

# Types billplane itself emits about webhook endpoints (the billing engine emits the others).
ENDPOINT_CREATED = "webhook_endpoint.created"
ENDPOINT_UPDATED = "webhook_endpoint.updated"
ENDPOINT_DELETED = "webhook_endpoint.deleted"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
ENDPOINT_OBJECT = "webhook_endpoint"

# `w` is the endpoint, `e` the event.
MATCHES_SQL = (
    "(cardinality(w.enabled_events) = 0 OR EXISTS (SELECT 1 FROM unnest(w.enabled_events) AS p(pattern) "
    "WHERE p.pattern = e.type OR p.pattern = '*' "
    "OR (right(p.pattern, 2) = '.*' AND starts_with(e.type, left(p.pattern, -1)))))"
)


def matches(patterns: Sequence[str], type_: str) -> bool:
    """Whether an endpoint subscribed with ``patterns`` receives events of ``type_``."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in {"*", type_}:
            return True
        if pattern.endswith(".*") and type_.startswith(pattern[:-1]):
            return True
    return False
