"""Metered usage aggregation: sum, max and last by timestamp, within the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billplane.pricing import Period, PlanPricing, PricingError, UsageValue, aggregate
from billplane.pricing.lines import metered_usage

START = datetime(2025, 6, 1, tzinfo=UTC)
JUNE = Period(START, datetime(2025, 7, 1, tzinfo=UTC))


def at(days: float, quantity: int) -> UsageValue:
    return UsageValue(START + timedelta(days=days), quantity)


# Given out of time order on purpose: "last" is the latest timestamp, not the last in the list.
VALUES = [at(3, 7), at(20, 2), at(1, 40), at(10, 5)]


@pytest.mark.parametrize(("aggregation", "expected"), [("sum", 54), ("max", 40), ("last", 2)])
def test_each_aggregation(aggregation: str, expected: int) -> None:
    assert aggregate(VALUES, aggregation) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("aggregation", ["sum", "max", "last"])
def test_no_usage_is_zero(aggregation: str) -> None:
    assert aggregate([], aggregation) == 0  # type: ignore[arg-type]


def test_last_with_equal_timestamps_takes_the_later_one_given() -> None:
    assert aggregate([at(2, 1), at(2, 9), at(1, 5)], "last") == 9
    assert aggregate([at(2, 9), at(2, 1), at(1, 5)], "last") == 1


def test_unknown_aggregation_and_bad_quantities_are_refused() -> None:
    with pytest.raises(PricingError, match="aggregation"):
        aggregate(VALUES, "avg")  # type: ignore[arg-type]
    with pytest.raises(PricingError, match="quantities"):
        aggregate([at(1, -1)], "sum")
    with pytest.raises(PricingError, match="quantities"):
        aggregate([UsageValue(START, 1.5)], "sum")  # type: ignore[arg-type]


def test_metered_usage_counts_only_the_half_open_period() -> None:
    pricing = PlanPricing("metered", "USD", amount=1, usage_aggregation="sum")
    values = [
        UsageValue(JUNE.start, 1),
        UsageValue(JUNE.end - timedelta(microseconds=1), 10),
        UsageValue(JUNE.end, 100),  # the next period's first moment
        UsageValue(JUNE.start - timedelta(microseconds=1), 1000),
    ]
    assert metered_usage(pricing, values, JUNE) == 11


def test_metered_usage_of_an_unmetered_plan_is_refused() -> None:
    with pytest.raises(PricingError, match="not metered"):
        metered_usage(PlanPricing("flat", "USD", amount=1), [], JUNE)
