"""Hypothesis strategies for plan pricings, quantities and periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from billplane.pricing import Period, PlanPricing, Tier
from billplane.pricing.models import PricingModel

amounts = st.integers(min_value=0, max_value=10**9)
# Exact decimals with up to 12 places, as NUMERIC(38,12) stores them: 0.5, 0.125, 3, 0.000000000001.
unit_amounts = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=12),
)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])


@st.composite
def tier_lists(draw: st.DrawFn, *, max_up_to: int = 10**6) -> tuple[Tier, ...]:
    """1 to 5 tiers with increasing limits, the last one open-ended."""
    limits = sorted(draw(st.sets(st.integers(min_value=1, max_value=max_up_to), max_size=4)))
    return tuple(
        Tier(up_to, draw(unit_amounts), draw(st.integers(min_value=0, max_value=10**6))) for up_to in [*limits, None]
    )


def tiered_pricings(model: PricingModel, *, max_up_to: int = 10**6) -> st.SearchStrategy[PlanPricing]:
    return st.builds(
        lambda currency, tiers: PlanPricing(model, currency, tiers=tiers, name="Tiered"),
        currencies,
        tier_lists(max_up_to=max_up_to),
    )


amount_pricings = st.one_of(
    st.builds(lambda c, a: PlanPricing("flat", c, amount=a, name="Flat"), currencies, amounts),
    st.builds(lambda c, a: PlanPricing("per_seat", c, amount=a, name="Seat"), currencies, amounts),
    st.builds(
        lambda c, a, size: PlanPricing("package", c, amount=a, package_size=size, name="Pack"),
        currencies,
        amounts,
        st.integers(min_value=1, max_value=10**4),
    ),
)
metered_pricings = st.builds(
    lambda c, a, agg: PlanPricing("metered", c, amount=a, usage_aggregation=agg, name="Calls"),
    currencies,
    amounts,
    st.sampled_from(["sum", "max", "last"]),
)
advance_pricings = st.one_of(amount_pricings, tiered_pricings("tiered"), tiered_pricings("volume"))
pricings = st.one_of(advance_pricings, metered_pricings)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=100 * 366 * 24 * 3600 * 10**6).map(
    lambda offset: _EPOCH + timedelta(microseconds=offset)
)
periods = st.builds(
    lambda start, length: Period(start, start + timedelta(microseconds=length)),
    moments,
    st.integers(min_value=1, max_value=400 * 24 * 3600 * 10**6),
)
