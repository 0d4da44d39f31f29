"""Billing period arithmetic: calendar intervals, with month ends clamped (Jan 31 + 1 month = Feb 28),
and a cycle that keeps its anchor's day (Feb 28 + 1 month = Mar 31 for a cycle anchored on the 31st)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

# Units counted as a number of a smaller one: a year is 12 months, a week 7 days (``same_length``).
_IN_SMALLER = {"year": ("month", 12), "week": ("day", 7)}


def add_interval(start: datetime, interval: str, count: int) -> datetime:
    # In the smaller unit, so that periods of the same length by definition are added alike.
    unit, count = same_length(interval, count)
    if unit == "day":
        return start + timedelta(days=count)
    if unit != "month":
        raise ValueError(f"unknown billing interval {interval!r}")
    month_index = start.month - 1 + count
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def same_length(interval: str, count: int) -> tuple[str, int]:
    """``(interval, count)`` in the unit that periods of the same length by definition share:
    ``(year, n)`` is ``(month, 12n)`` and ``(week, n)`` is ``(day, 7n)``, so two plans bill the same
    period exactly when these are equal.

    Equal for every start, not on average: ``add_interval`` adds them in these units, so a year
    from Feb 29 is 12 months from it (Feb 28, the day clamped as for any month, never Mar 1), and
    ``period_end`` treats months and years alike (a cycle anchored on the 31st comes back to it
    after a short month in both, in neither for days and weeks). A month is no number of days, nor
    a year of weeks (their lengths vary with the start): those stay apart."""
    unit, factor = _IN_SMALLER.get(interval, (interval, 1))
    return unit, count * factor


def period_end(start: datetime, interval: str, count: int, anchor: datetime | None) -> datetime:
    """The end of the period that starts at ``start``, in a billing cycle anchored at ``anchor``.

    As Stripe's: a monthly or yearly cycle anchored on a day a shorter month lacks ends that month
    on its last day (Jan 31, Feb 28), and the next period returns to the anchor's day (Mar 31), where
    counting from the previous boundary would stay on the 28th for good. Only a ``start`` on its
    month's last day, clamped from a later anchor day, is moved; any other start (no anchor, a day
    or week interval, a cycle restarted elsewhere) counts from itself.
    """
    end = add_interval(start, interval, count)
    if anchor is None or same_length(interval, count)[0] != "month":
        return end
    if start.day != calendar.monthrange(start.year, start.month)[1] or anchor.day <= start.day:
        return end
    return end.replace(day=min(anchor.day, calendar.monthrange(end.year, end.month)[1]))


def usage_start(start: datetime, *, trial_end: datetime | None, metered_since: datetime | None) -> datetime:
    """Where the usage a period starting at ``start`` bills begins: after its trial (a trial's usage
    is free, whatever the status says) and from when a change made the plan metered (the time
    before was the plan before's, paid in advance: ``Subscription.metered_since``). Either, before
    ``start``, belongs to an earlier period and is ``start``. At or after the period's end: the
    period bills no usage."""
    return max([start, *(moment for moment in (trial_end, metered_since) if moment is not None)])
