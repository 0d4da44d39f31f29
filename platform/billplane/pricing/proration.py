"""Proration: the share of a period's price for part of it, and what a plan or quantity change costs now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from billplane.pricing.lines import period_lines, total
from billplane.pricing.models import LineDraft, Period, PlanPricing, PricingError
from billplane.pricing.rounding import divide_half_even

# create_prorations: change now, credit the unused time of the old price, charge the rest of the
# period at the new one. none: change now, nothing billed until the next period. at_period_end:
# change when the period ends (nothing billed now).
ChangeProration = Literal["create_prorations", "none", "at_period_end"]
_MICROSECOND = timedelta(microseconds=1)


def prorate(amount: int, period_start: datetime, period_end: datetime, start: datetime, end: datetime) -> int:
    """``amount`` (a whole period's price) times the share of the period that ``[start, end)`` covers.

    The share is measured in elapsed time, exact to the microsecond (no float), and only the part of
    ``[start, end)`` inside the period counts. The result is rounded half-even, once.
    """
    if type(amount) is not int:
        raise PricingError(f"an amount is whole minor units, not {amount!r}")
    period = Period(period_start, period_end)
    covered_start, covered_end = max(start, period.start), min(end, period.end)
    if covered_end <= covered_start:
        return 0
    covered = (covered_end - covered_start) // _MICROSECOND
    return divide_half_even(amount * covered, period.microseconds)


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """What a change bills now: its proration lines (credits negative) and when the change takes effect."""

    proration: ChangeProration
    effective_at: datetime
    lines: tuple[LineDraft, ...]

    @property
    def total(self) -> int:
        """Negative when the credit is larger than the charge (a downgrade): the invoice part decides
        whether that becomes a credit balance; the engine never hides it."""
        return total(self.lines)


def change_preview(
    current: PlanPricing,
    new: PlanPricing,
    period: Period,
    at: datetime,
    proration: ChangeProration,
    *,
    current_quantity: int = 1,
    new_quantity: int = 1,
) -> ChangePreview:
    """The lines a change from (``current``, ``current_quantity``) to (``new``, ``new_quantity``) at ``at``
    bills now, for a subscription paid in advance for ``period``.

    Metered prices are billed in arrears at the period's end, so they have nothing to credit or
    charge here: their lines are left out.
    """
    if current.currency != new.currency:
        raise PricingError(f"a change keeps the currency: {current.currency} cannot become {new.currency}")
    if not period.start <= at <= period.end:
        raise PricingError("a change happens within the current period")
    if proration == "at_period_end":
        return ChangePreview(proration, period.end, ())
    if proration == "none":
        return ChangePreview(proration, at, ())
    if proration != "create_prorations":
        raise PricingError(f"unknown proration policy {proration!r}")
    credit_lines = [
        _prorated(line, period, at, credit=True) for line in _advance_lines(current, period, current_quantity)
    ]
    charges = [_prorated(line, period, at, credit=False) for line in _advance_lines(new, period, new_quantity)]
    # A zero proration explains nothing (a free plan, or a change at the very end of the period).
    return ChangePreview(proration, at, tuple(line for line in credit_lines + charges if line.amount))


def remaining_time(pricing: PlanPricing, period: Period, at: datetime, quantity: int) -> list[LineDraft]:
    """The advance lines of ``period`` prorated to what is left of it from ``at`` ("Remaining time
    on ..."), for a period that was not billed in advance (resumed after a pause that began before
    it); none for metered prices, billed in arrears, or for what comes to 0."""
    if not period.start <= at <= period.end:
        raise PricingError("the remaining time is within the period")
    lines = [_prorated(line, period, at, credit=False) for line in _advance_lines(pricing, period, quantity)]
    return [line for line in lines if line.amount]


def _advance_lines(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    if pricing.model == "metered":
        return []
    return period_lines(pricing, period, quantity=quantity)


def _prorated(line: LineDraft, period: Period, at: datetime, *, credit: bool) -> LineDraft:
    # Each line is prorated from its own rounded amount, so a credit and a charge for the same line
    # and span cancel exactly, and the rounding stays one half-even step per line.
    share = prorate(line.amount, period.start, period.end, at, period.end)
    return replace(
        line,
        description=f"{'Unused' if credit else 'Remaining'} time on {line.description}",
        amount=-share if credit else share,
        period_start=at,
        period_end=period.end,
        proration=True,
    )
