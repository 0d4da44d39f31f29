"""PlanPricing: built from catalog rows, and refusing prices the engine cannot compute."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billplane.catalog.models import Plan, PricingTier
from billplane.pricing import Period, PlanPricing, PricingError, Tier


def test_of_a_tiered_plan_row_keeps_tiers_in_order_with_exact_prices() -> None:
    plan = Plan(
        id=12,
        name="API",
        pricing_model="tiered",
        currency="USD",
        tiers=[
            PricingTier(position=0, up_to=1000, unit_amount=Decimal(0), flat_amount=0),
            PricingTier(position=1, up_to=None, unit_amount=Decimal("0.500000000000"), flat_amount=200),
        ],
    )
    assert PlanPricing.of(plan) == PlanPricing(
        "tiered",
        "USD",
        tiers=(Tier(1000, Decimal(0)), Tier(None, Decimal("0.5"), 200)),
        name="API",
        plan_id=12,
    )


def test_of_a_metered_plan_row() -> None:
    plan = Plan(id=3, name="Calls", pricing_model="metered", currency="JPY", amount=2, usage_aggregation="last")
    pricing = PlanPricing.of(plan)
    assert (pricing.model, pricing.amount, pricing.usage_aggregation, pricing.currency) == ("metered", 2, "last", "JPY")


OPEN = (Tier(None, Decimal(1)),)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"model": "seat", "amount": 1}, "unknown pricing model"),
        ({"model": "flat", "amount": 1, "currency": "usd"}, "ISO 4217"),
        ({"model": "flat"}, "amount is given"),
        ({"model": "tiered", "amount": 1, "tiers": OPEN}, "amount is given"),
        ({"model": "flat", "amount": -1}, "amount is whole"),
        ({"model": "flat", "amount": 1.5}, "amount is whole"),
        ({"model": "flat", "amount": True}, "amount is whole"),
        ({"model": "flat", "amount": 1, "tiers": OPEN}, "no tiers"),
        ({"model": "tiered"}, "at least one tier"),
        ({"model": "volume", "tiers": (Tier(10, Decimal(1)),)}, "open-ended"),
        ({"model": "tiered", "tiers": (Tier(10, Decimal(1)), Tier(10, Decimal(1)), *OPEN)}, "increase"),
        ({"model": "tiered", "tiers": (Tier(None, Decimal(1)), *OPEN)}, "increase"),
        ({"model": "package", "amount": 1}, "package_size"),
        ({"model": "per_seat", "amount": 1, "package_size": 10}, "package_size"),
        ({"model": "package", "amount": 1, "package_size": 0}, "package_size"),
        ({"model": "metered", "amount": 1}, "usage_aggregation"),
        ({"model": "flat", "amount": 1, "usage_aggregation": "sum"}, "usage_aggregation"),
        ({"model": "metered", "amount": 1, "usage_aggregation": "avg"}, "unknown usage aggregation"),
    ],
)
def test_prices_that_cannot_be_computed_are_refused(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(PricingError, match=reason):
        PlanPricing(**{"currency": "USD", **fields})


@pytest.mark.parametrize(
    ("tier", "reason"),
    [
        ({"up_to": 0, "unit_amount": Decimal(1)}, "up_to"),
        ({"up_to": None, "unit_amount": 0.5}, "unit_amount"),  # a float is never a price
        ({"up_to": None, "unit_amount": Decimal(-1)}, "unit_amount"),
        ({"up_to": None, "unit_amount": Decimal("NaN")}, "unit_amount"),
        ({"up_to": None, "unit_amount": Decimal(1), "flat_amount": -1}, "flat_amount"),
    ],
)
def test_tiers_that_cannot_be_computed_are_refused(tier: dict[str, Any], reason: str) -> None:
    with pytest.raises(PricingError, match=reason):
        Tier(**tier)


def test_a_period_is_aware_and_ends_after_it_starts() -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    with pytest.raises(PricingError, match="timezone-aware"):
        Period(start.replace(tzinfo=None), datetime(2025, 7, 1, tzinfo=UTC))
    with pytest.raises(PricingError, match="ends after"):
        Period(start, start)
