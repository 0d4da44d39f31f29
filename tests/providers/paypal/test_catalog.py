"""Each pricing model's PayPal plan body, exactly, and the ones PayPal cannot express refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from billplane_paypal.catalog import plan_body

from billplane.plugins import PriceData, ProductData, ProviderError, TierData, UnsupportedOperationError
from billplane.plugins.contract import PricingModel
from tests.providers.paypal.conftest import MakeAdapter
from tests.providers.paypal.fake_paypal import FakePayPal


def _price(model: PricingModel, **changes: Any) -> PriceData:
    fields: dict[str, Any] = {
        "plan_id": 3,
        "provider_product_id": "PROD-ABCDEF",
        "pricing_model": model,
        "currency": "USD",
        "billing_interval": "month",
        **changes,
    }
    return PriceData(**fields)


def _regular(body: dict[str, Any]) -> dict[str, Any]:
    cycles: list[dict[str, Any]] = [c for c in body["billing_cycles"] if c["tenure_type"] == "REGULAR"]
    assert len(cycles) == 1
    return cycles[0]


def test_flat_is_a_fixed_price_without_quantity() -> None:
    body = plan_body(_price("flat", amount=1500), name="Pro")
    assert body["product_id"] == "PROD-ABCDEF"
    assert body["quantity_supported"] is False
    assert _regular(body) == {
        "frequency": {"interval_unit": "MONTH", "interval_count": 1},
        "tenure_type": "REGULAR",
        "sequence": 1,
        "total_cycles": 0,
        "pricing_scheme": {"fixed_price": {"currency_code": "USD", "value": "15.00"}},
    }


def test_per_seat_is_a_fixed_price_per_unit() -> None:
    body = plan_body(_price("per_seat", amount=999, billing_interval="year"), name="Seats")
    assert body["quantity_supported"] is True
    assert _regular(body)["pricing_scheme"] == {"fixed_price": {"currency_code": "USD", "value": "9.99"}}
    assert _regular(body)["frequency"] == {"interval_unit": "YEAR", "interval_count": 1}


@pytest.mark.parametrize(("model", "paypal_model"), [("tiered", "TIERED"), ("volume", "VOLUME")])
def test_tiers_are_exact(model: PricingModel, paypal_model: str) -> None:
    tiers = [
        TierData(up_to=10, unit_amount=Decimal(1000)),
        TierData(up_to=50, unit_amount=Decimal(800)),
        TierData(up_to=None, unit_amount=Decimal("650.5")),
    ]
    body = plan_body(_price(model, tiers=tiers, interval_count=3), name="Tiers")
    assert body["quantity_supported"] is True
    assert _regular(body)["frequency"] == {"interval_unit": "MONTH", "interval_count": 3}
    assert _regular(body)["pricing_scheme"] == {
        "pricing_model": paypal_model,
        "tiers": [
            {"starting_quantity": "1", "ending_quantity": "10", "amount": {"currency_code": "USD", "value": "10.00"}},
            {"starting_quantity": "11", "ending_quantity": "50", "amount": {"currency_code": "USD", "value": "8.00"}},
            {"starting_quantity": "51", "amount": {"currency_code": "USD", "value": "6.505"}},
        ],
    }


def test_yen_tiers_have_no_decimals() -> None:
    tiers = [TierData(up_to=5, unit_amount=Decimal(1200)), TierData(up_to=None, unit_amount=Decimal(900))]
    scheme = _regular(plan_body(_price("volume", currency="JPY", tiers=tiers), name="JP"))["pricing_scheme"]
    assert [tier["amount"]["value"] for tier in scheme["tiers"]] == ["1200", "900"]


async def test_a_tier_price_in_part_of_a_forint_is_refused_before_any_call(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    """150 HUF minor units are 1.50 Ft, which PayPal (no decimals for HUF) cannot be sent."""
    tiers = [TierData(up_to=5, unit_amount=Decimal(150000)), TierData(up_to=None, unit_amount=Decimal(150))]
    adapter = make_adapter()
    before = len(paypal.log)
    with pytest.raises(ProviderError, match="cannot be sent") as refused:
        await adapter.ensure_price(_price("tiered", currency="HUF", tiers=tiers), idempotency_key="huf-tiers")
    assert refused.value.code == "AMOUNT_NOT_SUPPORTED"
    assert len(paypal.log) == before


def test_a_trial_is_a_free_trial_cycle_before_the_regular_one() -> None:
    body = plan_body(_price("flat", amount=1500, trial_period_days=14), name="Trial")
    assert body["billing_cycles"] == [
        {
            "frequency": {"interval_unit": "DAY", "interval_count": 14},
            "tenure_type": "TRIAL",
            "sequence": 1,
            "total_cycles": 1,
        },
        {
            "frequency": {"interval_unit": "MONTH", "interval_count": 1},
            "tenure_type": "REGULAR",
            "sequence": 2,
            "total_cycles": 0,
            "pricing_scheme": {"fixed_price": {"currency_code": "USD", "value": "15.00"}},
        },
    ]


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (_price("package", amount=500, package_size=100), "package"),
        (_price("metered", amount=2, usage_aggregation="sum"), "usage"),
        (
            _price("tiered", tiers=[TierData(up_to=None, unit_amount=Decimal(100), flat_amount=500)]),
            "flat amount",
        ),
        (_price("tiered", tiers=[TierData(up_to=10, unit_amount=Decimal(100))]), "open-ended"),
        (_price("volume"), "needs tiers"),
        (_price("flat", amount=100, billing_interval="year", interval_count=2), "1 to 1"),
        (_price("flat", amount=100, trial_period_days=400), "trial"),
    ],
)
def test_what_paypal_cannot_express_is_unsupported_with_a_reason(price: PriceData, reason: str) -> None:
    with pytest.raises(UnsupportedOperationError) as caught:
        plan_body(price, name="No")
    assert reason in str(caught.value)
    assert caught.value.reason


async def test_every_model_is_created_at_paypal_as_the_spec_allows(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    product = await adapter.ensure_product(ProductData(product_id=1, name="Pro", description="d"), idempotency_key="p1")
    tiers = [TierData(up_to=10, unit_amount=Decimal(100)), TierData(up_to=None, unit_amount=Decimal(80))]
    prices = [
        _price("flat", provider_product_id=product.provider_id, amount=1500, trial_period_days=7),
        _price("per_seat", provider_product_id=product.provider_id, amount=1000),
        _price("tiered", provider_product_id=product.provider_id, tiers=tiers),
        _price("volume", provider_product_id=product.provider_id, tiers=tiers, billing_interval="week"),
    ]
    for index, price in enumerate(prices):
        ref = await adapter.ensure_price(price, idempotency_key=f"price-{index}")
        stored = paypal.plans[ref.provider_id]
        assert stored["billing_cycles"] == plan_body(price, name="x")["billing_cycles"]
    sent = [json.loads(entry.body) for entry in paypal.posts() if entry.path == "/v1/billing/plans"]
    assert sent[-4:] == [plan_body(price, name="billplane plan 3") for price in prices]


async def test_an_unsupported_model_makes_no_call(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    adapter = make_adapter()
    before = len(paypal.log)
    with pytest.raises(UnsupportedOperationError):
        await adapter.ensure_price(_price("metered", amount=2), idempotency_key="m1")
    assert len(paypal.log) == before
