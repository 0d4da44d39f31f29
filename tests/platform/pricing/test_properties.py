"""Properties of the pricing engine over generated plans, quantities and periods (hypothesis).

The references here are computed another way than the engine: tiers by counting unit by unit,
rounding with Fraction (whose round() is half-even too), the volume tier by bisection.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from billplane.pricing import LineDraft, Period, PlanPricing, Tier, change_preview, period_lines, prorate, total
from tests.platform.pricing.strategies import (
    advance_pricings,
    amounts,
    currencies,
    periods,
    pricings,
    tier_lists,
    tiered_pricings,
)

quantities = st.integers(min_value=0, max_value=10**7)


def _tier_of_unit(unit: int, tiers: tuple[Tier, ...]) -> int:
    return next(index for index, tier in enumerate(tiers) if tier.up_to is None or unit <= tier.up_to)


def _half_even(value: Fraction) -> int:
    return round(value)


def _lines(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    if pricing.model == "metered":
        return period_lines(pricing, period, usage=quantity)
    return period_lines(pricing, period, quantity=quantity)


@given(tiered_pricings("tiered", max_up_to=300), periods, st.integers(min_value=0, max_value=1000))
def test_graduated_total_is_the_sum_of_its_tiers(pricing: PlanPricing, period: Period, quantity: int) -> None:
    units_per_tier = Counter(_tier_of_unit(unit, pricing.tiers) for unit in range(1, quantity + 1))
    expected = sum(
        _half_even(units * Fraction(pricing.tiers[index].unit_amount)) + pricing.tiers[index].flat_amount
        for index, units in units_per_tier.items()
    )
    lines = period_lines(pricing, period, quantity=quantity)
    assert total(lines) == expected
    assert {line.tier: line.quantity for line in lines if line.quantity} == dict(units_per_tier)
    assert sum(line.quantity for line in lines) == quantity


@given(tier_lists(), currencies, quantities)
def test_volume_total_uses_exactly_one_tier(tiers: tuple[Tier, ...], currency: str, quantity: int) -> None:
    limits = [tier.up_to for tier in tiers if tier.up_to is not None]
    index = bisect_left(limits, quantity)
    tier = tiers[index]
    [line] = period_lines(PlanPricing("volume", currency, tiers=tiers), next_period(), quantity=quantity)
    assert (line.tier, line.quantity, line.unit_amount) == (index, quantity, tier.unit_amount)
    flat = tier.flat_amount if quantity else 0
    assert line.amount == _half_even(quantity * Fraction(tier.unit_amount)) + flat


def next_period() -> Period:
    return Period(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))


def _moment_in(period: Period, share: Fraction) -> datetime:
    return period.start + timedelta(microseconds=period.microseconds * share.numerator // share.denominator)


@given(pricings, periods, quantities)
def test_totals_and_lines_are_never_negative(pricing: PlanPricing, period: Period, quantity: int) -> None:
    lines = _lines(pricing, period, quantity)
    assert lines
    assert all(line.amount >= 0 and not line.proration for line in lines)
    assert total(lines) >= 0


@given(pricings, periods, quantities)
def test_no_float_reaches_a_line(pricing: PlanPricing, period: Period, quantity: int) -> None:
    for line in _lines(pricing, period, quantity):
        assert not any(isinstance(getattr(line, field.name), float) for field in fields(line))
        assert type(line.amount) is int
        assert type(line.quantity) is int
        assert type(line.unit_amount) is Decimal


@given(st.integers(min_value=1, max_value=10**4), amounts, quantities)
def test_package_rounds_up_to_whole_packages(size: int, amount: int, quantity: int) -> None:
    pricing = PlanPricing("package", "USD", amount=amount, package_size=size)
    [line] = period_lines(pricing, next_period(), quantity=quantity)
    assert line.quantity * size >= quantity > (line.quantity - 1) * size
    assert line.amount == line.quantity * amount


@given(st.integers(min_value=-(10**12), max_value=10**12), periods)
def test_proration_of_a_whole_period_is_the_full_price(amount: int, period: Period) -> None:
    assert prorate(amount, period.start, period.end, period.start, period.end) == amount
    assert prorate(amount, period.start, period.end, period.start - timedelta(days=1), period.end) == amount


@given(amounts, periods, st.fractions(min_value=0, max_value=1))
def test_proration_of_two_halves_adds_up_within_one_unit(amount: int, period: Period, split: Fraction) -> None:
    middle = _moment_in(period, split)
    first = prorate(amount, period.start, period.end, period.start, middle)
    second = prorate(amount, period.start, period.end, middle, period.end)
    assert 0 <= first <= amount
    assert 0 <= second <= amount
    assert abs(first + second - amount) <= 1


@given(
    current=advance_pricings,
    new=advance_pricings,
    period=periods,
    split=st.fractions(min_value=0, max_value=1),
    current_quantity=quantities,
    new_quantity=quantities,
)
def test_a_change_credit_linesnegative_and_charges_positive_proration_lines(
    *,
    current: PlanPricing,
    new: PlanPricing,
    period: Period,
    split: Fraction,
    current_quantity: int,
    new_quantity: int,
) -> None:
    new = PlanPricing(new.model, current.currency, new.amount, new.tiers, new.package_size, name=new.name)
    at = _moment_in(period, split)
    preview = change_preview(
        current, new, period, at, "create_prorations", current_quantity=current_quantity, new_quantity=new_quantity
    )
    credit_lines = [line for line in preview.lines if line.description.startswith("Unused")]
    charges = [line for line in preview.lines if line.description.startswith("Remaining")]
    assert len(credit_lines) + len(charges) == len(preview.lines)
    assert all(line.proration for line in preview.lines)
    assert all(line.amount < 0 for line in credit_lines)
    assert all(line.amount > 0 for line in charges)
    assert preview.total == total(preview.lines)


@given(advance_pricings, periods, st.fractions(min_value=0, max_value=1), quantities)
def test_a_change_to_the_same_price_nets_to_zero(
    pricing: PlanPricing, period: Period, split: Fraction, quantity: int
) -> None:
    at = _moment_in(period, split)
    preview = change_preview(
        pricing, pricing, period, at, "create_prorations", current_quantity=quantity, new_quantity=quantity
    )
    assert preview.total == 0


@given(advance_pricings, advance_pricings, periods, quantities, quantities)
def test_a_change_at_the_period_start_credit_linesand_charges_whole_periods(
    current: PlanPricing, new: PlanPricing, period: Period, current_quantity: int, new_quantity: int
) -> None:
    new = PlanPricing(new.model, current.currency, new.amount, new.tiers, new.package_size, name=new.name)
    preview = change_preview(
        current,
        new,
        period,
        period.start,
        "create_prorations",
        current_quantity=current_quantity,
        new_quantity=new_quantity,
    )
    expected = total(period_lines(new, period, quantity=new_quantity)) - total(
        period_lines(current, period, quantity=current_quantity)
    )
    assert preview.total == expected
