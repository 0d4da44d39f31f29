"""Period ends in an anchored billing cycle (``subscriptions.periods.period_end``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billplane.subscriptions.periods import period_end


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "interval", "count", "anchor", "end"),
    [
        (_at(2030, 1, 31), "month", 1, _at(2030, 1, 31), _at(2030, 2, 28)),  # clamped, as before
        (_at(2030, 2, 28), "month", 1, _at(2030, 1, 31), _at(2030, 3, 31)),  # back to the anchor's day
        (_at(2030, 4, 30), "month", 1, _at(2030, 1, 31), _at(2030, 5, 31)),
        (_at(2030, 2, 28), "month", 1, _at(2030, 1, 30), _at(2030, 3, 30)),
        (_at(2032, 2, 29), "month", 1, _at(2032, 1, 31), _at(2032, 3, 31)),  # a leap February
        (_at(2030, 2, 28), "month", 1, None, _at(2030, 3, 28)),  # no anchor: from the start, as older rows
        (_at(2030, 2, 28), "month", 1, _at(2030, 1, 28), _at(2030, 3, 28)),  # the anchor's own day
        (_at(2030, 3, 15), "month", 1, _at(2030, 1, 31), _at(2030, 4, 15)),  # a cycle restarted mid-month
        (_at(2031, 2, 28), "year", 1, _at(2028, 2, 29), _at(2032, 2, 29)),  # a leap day anchor, yearly
        (_at(2030, 2, 28), "month", 3, _at(2030, 1, 31), _at(2030, 5, 31)),
        (_at(2030, 2, 28), "day", 30, _at(2030, 1, 31), _at(2030, 3, 30)),  # days and weeks never clamp
        (_at(2030, 2, 28), "week", 1, _at(2030, 1, 31), _at(2030, 3, 7)),
    ],
)
def test_period_end(start: datetime, interval: str, count: int, anchor: datetime | None, end: datetime) -> None:
    assert period_end(start, interval, count, anchor) == end
