"""Each pricing model becomes exactly the Stripe Price (and Billing Meter) it should."""

from __future__ import annotations

from decimal import Decimal

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ProductData, ProviderError, TierData, UnsupportedOperationError
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import TENANT_ID
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio

COMMON = {
    "currency": "eur",
    "recurring": {"interval": "month", "interval_count": "1"},
}


async def _price_params(adapter: StripeAdapter, fake: FakeStripe, model: str, **overrides: object) -> dict[str, object]:
    product = await helpers.product(adapter)
    await adapter.ensure_price(helpers.price_data(model, product, **overrides), idempotency_key=helpers.key())  # type: ignore[arg-type]
    params = fake.last("POST", "/v1/prices").params
    assert params.pop("product") == product
    assert params.pop("metadata") == {"billplane_plan_id": "31", "billplane_pricing_model": model}
    return params


async def test_product(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    ref = await stripe_adapter.ensure_product(
        ProductData(product_id=3, name="Pro", description="the pro plan"), idempotency_key=helpers.key()
    )
    assert ref.provider_id in fake_stripe.store.products
    assert fake_stripe.last("POST", "/v1/products").params == {
        "name": "Pro",
        "active": "true",
        "description": "the pro plan",
        "metadata": {"billplane_product_id": "3"},
    }


@pytest.mark.parametrize("model", ["flat", "per_seat"])
async def test_flat_and_per_seat_are_a_unit_amount(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, model: str
) -> None:
    assert await _price_params(stripe_adapter, fake_stripe, model) == {**COMMON, "unit_amount": "1200"}


@pytest.mark.parametrize(("model", "mode"), [("tiered", "graduated"), ("volume", "volume")])
async def test_tiers_with_their_mode(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, model: str, mode: str
) -> None:
    assert await _price_params(stripe_adapter, fake_stripe, model) == {
        **COMMON,
        "billing_scheme": "tiered",
        "tiers_mode": mode,
        "tiers": [
            {"up_to": "10", "unit_amount": "100", "flat_amount": "500"},
            {"up_to": "inf", "unit_amount_decimal": "0.5"},
        ],
    }


async def test_package_divides_the_quantity(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    assert await _price_params(stripe_adapter, fake_stripe, "package") == {
        **COMMON,
        "unit_amount": "1200",
        "transform_quantity": {"divide_by": "50", "round": "up"},
    }


@pytest.mark.parametrize(("aggregation", "formula"), [("sum", "sum"), ("last", "last"), (None, "sum")])
async def test_metered_is_a_meter_and_a_metered_price(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, aggregation: str | None, formula: str
) -> None:
    params = await _price_params(stripe_adapter, fake_stripe, "metered", usage_aggregation=aggregation)
    meter = fake_stripe.last("POST", "/v1/billing/meters").params
    assert meter == {
        "display_name": "billplane plan 31",
        "event_name": f"billplane_t{TENANT_ID}_plan_31",
        "default_aggregation": {"formula": formula},
        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
        "value_settings": {"event_payload_key": "value"},
    }
    (meter_id,) = fake_stripe.store.meters
    assert params == {
        "currency": "eur",
        "unit_amount": "1200",
        "recurring": {"interval": "month", "interval_count": "1", "usage_type": "metered", "meter": meter_id},
    }


async def test_a_plans_second_metered_price_reuses_its_meter(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    first = await helpers.price(stripe_adapter, "metered")
    second = await helpers.price(stripe_adapter, "metered", amount=3)
    assert first != second
    assert len(fake_stripe.store.meters) == 1
    meters = {fake_stripe.store.prices[p]["recurring"]["meter"] for p in (first, second)}
    assert meters == set(fake_stripe.store.meters)


async def test_max_aggregation_is_unsupported_before_any_call(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    product = await helpers.product(stripe_adapter)
    sent = len(fake_stripe.requests)
    with pytest.raises(UnsupportedOperationError, match="sum, count or last"):
        await stripe_adapter.ensure_price(
            helpers.price_data("metered", product, usage_aggregation="max"), idempotency_key=helpers.key()
        )
    assert len(fake_stripe.requests) == sent


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("flat", {"amount": None}),
        ("package", {"package_size": 0}),
        ("tiered", {"tiers": [TierData(up_to=10, unit_amount=Decimal(1))]}),
        ("volume", {"tiers": []}),
    ],
)
async def test_incomplete_prices_are_refused_locally(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, model: str, overrides: dict[str, object]
) -> None:
    product = await helpers.product(stripe_adapter)
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.ensure_price(
            helpers.price_data(model, product, **overrides),  # type: ignore[arg-type]
            idempotency_key=helpers.key(),
        )
    assert caught.value.code == "invalid_price"
    assert not fake_stripe.store.prices


async def test_a_missing_product_is_stripes_error(stripe_adapter: StripeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.ensure_price(helpers.price_data("flat", "prod_missing"), idempotency_key=helpers.key())
    assert caught.value.code == "resource_missing"
    assert "prod_missing" in caught.value.message
