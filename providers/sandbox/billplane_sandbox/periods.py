"""Billing periods without state: the sandbox bills on calendar boundaries (UTC).

A monthly subscription's current period is the current calendar month, a 3-monthly one the
current quarter counted from January 1970, a weekly one the ISO week (from Monday). Any process
computes the same period for the same instant, so nothing needs remembering.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billplane.plugins.contract import BillingInterval

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


def _month(index: int) -> datetime:
    return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=UTC)


def current_period(now: datetime, interval: BillingInterval, count: int) -> tuple[datetime, datetime]:
    if interval in {"month", "year"}:
        months = count * (12 if interval == "year" else 1)
        index = (now.year - 1970) * 12 + now.month - 1
        start = index - index % months
        return _month(start), _month(start + months)
    length = timedelta(days=count * (7 if interval == "week" else 1))
    origin = _FIRST_MONDAY if interval == "week" else _EPOCH
    begins = origin + (now - origin) // length * length
    return begins, begins + length
