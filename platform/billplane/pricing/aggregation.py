"""Metered usage: the quantity a period's usage records amount to, by the plan's aggregation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from billplane.pricing.models import Aggregation, Period, PricingError


class UsageValue(NamedTuple):
    timestamp: datetime
    quantity: int


def in_period(values: Iterable[UsageValue], period: Period) -> list[UsageValue]:
    """The values whose timestamp falls in ``[period.start, period.end)``."""
    return [value for value in values if value.timestamp in period]


def aggregate(values: Iterable[UsageValue], aggregation: Aggregation) -> int:
    """The billed quantity: ``sum``, ``max``, or ``last`` (the value with the latest timestamp).

    No values is 0 for every aggregation. For ``last``, equal timestamps are resolved by the order
    given: the later one wins, so a caller reading rows ordered by (timestamp, id) gets the newest row.
    """
    items = list(values)
    for value in items:
        if type(value.quantity) is not int or value.quantity < 0:
            raise PricingError(f"usage quantities are whole numbers >= 0, not {value.quantity!r}")
    if not items:
        return 0
    if aggregation == "sum":
        return sum(value.quantity for value in items)
    if aggregation == "max":
        return max(value.quantity for value in items)
    if aggregation == "last":
        latest = items[0]
        for value in items[1:]:
            if value.timestamp >= latest.timestamp:
                latest = value
        return latest.quantity
    raise PricingError(f"unknown usage aggregation {aggregation!r}")
