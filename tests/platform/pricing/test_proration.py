"""Proration by elapsed time, and what a plan or quantity change bills now under each policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billplane.pricing import Period, PlanPricing, PricingError, Tier, change_preview, prorate

START = datetime(2025, 6, 1, tzinfo=UTC)
END = datetime(2025, 7, 1, tzinfo=UTC)  # 30 days
JUNE = Period(START, END)


def day(number: float) -> datetime:
    return START + timedelta(days=number)


@pytest.mark.parametrize(
    ("amount", "start", "end", "expected"),
    [
        (3000, START, END, 3000),
        (3000, day(10), END, 2000),
        (3000, START, day(10), 1000),
        (3000, day(-5), day(100), 3000),  # only the part inside the period counts
        (3000, day(30), day(40), 0),
        (3000, day(20), day(10), 0),
        (1000, day(10), END, 667),  # 666.67
        (1, day(15), END, 0),  # 0.5 rounds half-even to 0
        (3, day(15), END, 2),  # 1.5 rounds half-even to 2
        (5, day(15), END, 2),  # 2.5 rounds half-even to 2
        (-3000, day(10), END, -2000),
        (-5, day(15), END, -2),
    ],
)
def test_prorate_takes_the_share_of_the_period_by_time(
    amount: int, start: datetime, end: datetime, expected: int
) -> None:
    assert prorate(amount, START, END, start, end) == expected


def test_prorate_counts_microseconds_exactly() -> None:
    # One microsecond short of the whole period is still less than the full price when it matters.
    almost = END - timedelta(microseconds=1)
    assert prorate(10**15, START, END, START, almost) == 10**15 - 386  # 10^15 x (1 - 1/2.592e12), rounded
    assert prorate(10**15, START, END, START, END) == 10**15


def test_prorate_refuses_floats_and_empty_periods() -> None:
    with pytest.raises(PricingError, match="whole minor units"):
        prorate(10.0, START, END, START, END)  # type: ignore[arg-type]
    with pytest.raises(PricingError, match="ends after"):
        prorate(10, END, START, START, END)


SEAT = PlanPricing("per_seat", "USD", amount=1000, name="Team", plan_id=1)
PRO = PlanPricing("flat", "USD", amount=3000, name="Pro", plan_id=2)
BASIC = PlanPricing("flat", "USD", amount=1200, name="Basic", plan_id=3)


def test_quantity_up_credits_the_old_quantity_and_charges_the_new_for_the_rest_of_the_period() -> None:
    preview = change_preview(SEAT, SEAT, JUNE, day(10), "create_prorations", current_quantity=2, new_quantity=5)
    assert preview.effective_at == day(10)
    assert [(line.description, line.quantity, line.unit_amount, line.amount) for line in preview.lines] == [
        ("Unused time on 2 x Team", 2, Decimal(1000), -1333),  # 2000 x 20/30
        ("Remaining time on 5 x Team", 5, Decimal(1000), 3333),  # 5000 x 20/30
    ]
    assert all(line.proration and (line.period_start, line.period_end) == (day(10), END) for line in preview.lines)
    assert preview.total == 2000


def test_downgrade_credits_more_than_it_charges() -> None:
    preview = change_preview(PRO, BASIC, JUNE, day(15), "create_prorations")
    assert [(line.plan_id, line.amount) for line in preview.lines] == [(2, -1500), (3, 600)]
    assert preview.total == -900


def test_tiered_plans_are_prorated_tier_by_tier() -> None:
    tiered = PlanPricing("tiered", "USD", tiers=(Tier(10, Decimal(100)), Tier(None, Decimal(50))), name="Seats")
    preview = change_preview(tiered, tiered, JUNE, day(15), "create_prorations", current_quantity=12, new_quantity=8)
    assert [(line.tier, line.quantity, line.amount) for line in preview.lines] == [
        (0, 10, -500),
        (1, 2, -50),
        (0, 8, 400),
    ]


@pytest.mark.parametrize(("proration", "effective_at"), [("none", day(10)), ("at_period_end", END)])
def test_policies_without_prorations_bill_nothing_now(proration: str, effective_at: datetime) -> None:
    preview = change_preview(PRO, BASIC, JUNE, day(10), proration)  # type: ignore[arg-type]
    assert (preview.lines, preview.total, preview.effective_at) == ((), 0, effective_at)


def test_metered_prices_are_billed_in_arrears_and_not_prorated() -> None:
    metered = PlanPricing("metered", "USD", amount=2, usage_aggregation="sum", name="Calls")
    preview = change_preview(metered, PRO, JUNE, day(15), "create_prorations")
    assert [(line.description, line.amount) for line in preview.lines] == [("Remaining time on Pro", 1500)]


def test_a_change_at_the_period_end_prorates_to_nothing() -> None:
    assert change_preview(PRO, BASIC, JUNE, END, "create_prorations").lines == ()


@pytest.mark.parametrize(
    ("new", "at", "proration", "reason"),
    [
        (PlanPricing("flat", "EUR", amount=1), day(1), "create_prorations", "currency"),
        (BASIC, day(-1), "create_prorations", "within the current period"),
        (BASIC, day(31), "none", "within the current period"),
        (BASIC, day(1), "always", "unknown proration policy"),
    ],
)
def test_changes_that_cannot_be_priced_are_refused(new: PlanPricing, at: datetime, proration: str, reason: str) -> None:
    with pytest.raises(PricingError, match=reason):
        change_preview(PRO, new, JUNE, at, proration)  # type: ignore[arg-type]
