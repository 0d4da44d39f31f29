"""Each pricing model with known numbers, in USD, JPY (exponent 0) and with fractional unit prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billplane.pricing import LineDraft, Period, PlanPricing, PricingError, Tier, period_lines, total

JUNE = Period(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
API_CALLS = (Tier(1000, Decimal(0)), Tier(100_000, Decimal("0.5")), Tier(None, Decimal("0.25")))


def _shape(lines: list[LineDraft]) -> list[tuple[int | None, int, Decimal, int]]:
    return [(line.tier, line.quantity, line.unit_amount, line.amount) for line in lines]


def test_flat_is_one_line_per_period_whatever_the_quantity() -> None:
    pricing = PlanPricing("flat", "USD", amount=1999, name="Starter", plan_id=4)
    [line] = period_lines(pricing, JUNE, quantity=5)
    assert line == LineDraft("Starter", 1, Decimal(1999), 1999, "USD", JUNE.start, JUNE.end, plan_id=4)


@pytest.mark.parametrize(
    ("currency", "amount", "quantity", "expected"),
    [("USD", 1000, 3, 3000), ("JPY", 500, 3, 1500), ("KWD", 1250, 1, 1250), ("USD", 1000, 0, 0)],
)
def test_per_seat_is_amount_times_quantity(currency: str, amount: int, quantity: int, expected: int) -> None:
    pricing = PlanPricing("per_seat", currency, amount=amount, name="Team")
    [line] = period_lines(pricing, JUNE, quantity=quantity)
    assert (line.description, line.quantity, line.unit_amount, line.amount) == (
        f"{quantity} x Team",
        quantity,
        Decimal(amount),
        expected,
    )
    assert line.currency == currency


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (0, [(0, 0, Decimal(0), 0)]),
        (1000, [(0, 1000, Decimal(0), 0)]),
        # 1 x 0.5 = 0.5 rounds half-even to 0; 3 x 0.5 = 1.5 rounds to 2.
        (1001, [(0, 1000, Decimal(0), 0), (1, 1, Decimal("0.5"), 0)]),
        (1003, [(0, 1000, Decimal(0), 0), (1, 3, Decimal("0.5"), 2)]),
        (
            250_000,
            [(0, 1000, Decimal(0), 0), (1, 99_000, Decimal("0.5"), 49_500), (2, 150_000, Decimal("0.25"), 37_500)],
        ),
    ],
)
def test_graduated_prices_each_tiers_units_at_its_price(
    quantity: int, expected: list[tuple[int | None, int, Decimal, int]]
) -> None:
    lines = period_lines(PlanPricing("tiered", "USD", tiers=API_CALLS, name="API"), JUNE, quantity=quantity)
    assert _shape(lines) == expected
    assert total(lines) == sum(amount for *_, amount in expected)


def test_graduated_adds_the_flat_amount_of_each_tier_used() -> None:
    tiers = (Tier(5, Decimal(1000), flat_amount=500), Tier(None, Decimal(800), flat_amount=300))
    lines = period_lines(PlanPricing("tiered", "USD", tiers=tiers, name="Seats"), JUNE, quantity=7)
    assert _shape(lines) == [(0, 5, Decimal(1000), 5 * 1000 + 500), (1, 2, Decimal(800), 2 * 800 + 300)]
    assert [line.description for line in lines] == [
        "Seats: tier 1 (units 1-5) + flat fee",
        "Seats: tier 2 (units 6 and above) + flat fee",
    ]
    assert total(lines) == 7400


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (0, (0, 0, Decimal(1000), 0)),  # no units: not even the tier's flat amount
        (10, (0, 10, Decimal(1000), 10_000)),
        (11, (1, 11, Decimal(800), 8_800)),
        (50, (1, 50, Decimal(800), 40_000)),
        (60, (2, 60, Decimal(600), 60 * 600 + 2000)),
    ],
)
def test_volume_prices_every_unit_at_the_one_tier_the_total_falls_in(
    quantity: int, expected: tuple[int, int, Decimal, int]
) -> None:
    tiers = (Tier(10, Decimal(1000)), Tier(50, Decimal(800)), Tier(None, Decimal(600), flat_amount=2000))
    lines = period_lines(PlanPricing("volume", "EUR", tiers=tiers, name="Seats"), JUNE, quantity=quantity)
    assert _shape(lines) == [expected]


@pytest.mark.parametrize(("quantity", "expected"), [(1, 0), (3, 2), (5, 2), (7, 4), (1_000_001, 500_000)])
def test_half_a_yen_per_unit_rounds_half_even_at_the_line(quantity: int, expected: int) -> None:
    # JPY has no minor unit below the yen, so half a yen per call is rounded at the line:
    # 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 500,000.5 -> 500,000.
    pricing = PlanPricing("volume", "JPY", tiers=(Tier(None, Decimal("0.5")),), name="Calls")
    [line] = period_lines(pricing, JUNE, quantity=quantity)
    assert (line.unit_amount, line.amount, line.currency) == (Decimal("0.5"), expected, "JPY")


def test_twelve_decimal_places_are_multiplied_exactly() -> None:
    # 10^12 units at 10^-12 each is exactly 1; a float would give 0.9999999999999999 or so.
    pricing = PlanPricing("volume", "USD", tiers=(Tier(None, Decimal("0.000000000001")),), name="Bytes")
    [line] = period_lines(pricing, JUNE, quantity=10**12)
    assert line.amount == 1


@pytest.mark.parametrize(
    ("quantity", "packages"),
    [(0, 0), (1, 1), (100, 1), (101, 2), (250, 3)],
)
def test_package_rounds_up_to_whole_packages(quantity: int, packages: int) -> None:
    pricing = PlanPricing("package", "USD", amount=2500, package_size=100, name="SMS")
    [line] = period_lines(pricing, JUNE, quantity=quantity)
    assert (line.quantity, line.unit_amount, line.amount) == (packages, Decimal(2500), packages * 2500)
    assert line.description == f"SMS: {quantity} units in {packages} x 100-unit packages"


def test_metered_prices_the_aggregated_usage_by_the_plans_amount() -> None:
    pricing = PlanPricing("metered", "JPY", amount=3, usage_aggregation="max", name="Storage GB")
    [line] = period_lines(pricing, JUNE, usage=42)
    assert (line.quantity, line.unit_amount, line.amount) == (42, Decimal(3), 126)
    assert line.description == "Storage GB: 42 units (max of usage)"


def test_metered_needs_usage_and_the_others_refuse_it() -> None:
    metered = PlanPricing("metered", "USD", amount=3, usage_aggregation="sum")
    with pytest.raises(PricingError, match="usage"):
        period_lines(metered, JUNE)
    with pytest.raises(PricingError, match="usage"):
        period_lines(PlanPricing("flat", "USD", amount=1), JUNE, usage=3)


@pytest.mark.parametrize("quantity", [-1, True, 1.0, Decimal(1)])
def test_a_quantity_is_a_whole_number(quantity: object) -> None:
    with pytest.raises(PricingError, match="quantity"):
        period_lines(PlanPricing("per_seat", "USD", amount=1), JUNE, quantity=quantity)  # type: ignore[arg-type]


def test_every_line_names_its_period_and_plan_and_is_not_a_proration() -> None:
    pricing = PlanPricing("tiered", "USD", tiers=API_CALLS, name="API", plan_id=9)
    for line in period_lines(pricing, JUNE, quantity=200_000):
        assert (line.period_start, line.period_end, line.plan_id, line.proration) == (JUNE.start, JUNE.end, 9, False)
