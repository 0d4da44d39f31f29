"""Catalog edits at PayPal: what a product's PATCH can mirror (its description, never its name), and
billing plans deactivated and activated again, retried safely although PayPal replays neither."""

from __future__ import annotations

import json
import uuid

import pytest
from billplane_paypal.adapter import PayPalAdapter

from billplane.plugins import (
    CatalogUpdateAdapter,
    PriceData,
    ProductData,
    ProviderError,
    RetryableProviderError,
    SubscriptionData,
)
from tests.providers.paypal.conftest import MakeAdapter
from tests.providers.paypal.fake_paypal import FakePayPal

pytestmark = pytest.mark.anyio


def _key() -> str:
    return f"catalog-{uuid.uuid4().hex}"


async def _product(adapter: PayPalAdapter, description: str | None = "Dashboards") -> str:
    data = ProductData(product_id=4, name="Analytics", description=description)
    return (await adapter.ensure_product(data, idempotency_key=_key())).provider_id


async def _plan(adapter: PayPalAdapter) -> str:
    product = await _product(adapter)
    price = PriceData(
        plan_id=8,
        provider_product_id=product,
        pricing_model="flat",
        currency="USD",
        billing_interval="month",
        amount=1500,
    )
    return (await adapter.ensure_price(price, idempotency_key=_key())).provider_id


def _patches(paypal: FakePayPal, product: str) -> list[object]:
    path = f"/v1/catalogs/products/{product}"
    return [json.loads(entry.body) for entry in paypal.log if entry.method == "PATCH" and entry.path == path]


async def test_the_description_follows_billplane_and_the_name_stays(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, CatalogUpdateAdapter)
    product = await _product(adapter)

    renamed = ProductData(product_id=4, name="Analytics Pro", description="Dashboards and exports")
    await adapter.update_product(product, renamed, idempotency_key=_key())
    # A retry after a PATCH that went through (PayPal replays none): read, found done, nothing sent.
    await adapter.update_product(product, renamed, idempotency_key=_key())
    await adapter.update_product(product, ProductData(product_id=4, name="Analytics Pro"), idempotency_key=_key())
    # Archived in billplane: PayPal products have no such state, so nothing is sent.
    await adapter.update_product(
        product, ProductData(product_id=4, name="Analytics Pro", active=False), idempotency_key=_key()
    )
    await adapter.update_product(
        product, ProductData(product_id=4, name="X", description="Back"), idempotency_key=_key()
    )

    assert _patches(paypal, product) == [
        [{"op": "replace", "path": "/description", "value": "Dashboards and exports"}],
        [{"op": "remove", "path": "/description"}],
        [{"op": "add", "path": "/description", "value": "Back"}],
    ]
    assert (paypal.products[product]["name"], paypal.products[product]["description"]) == ("Analytics", "Back")


async def test_a_product_paypal_does_not_have_is_an_error(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, CatalogUpdateAdapter)
    with pytest.raises(ProviderError) as caught:
        await adapter.update_product("PROD-GONE000", ProductData(product_id=4, name="A"), idempotency_key=_key())
    assert caught.value.code == "INVALID_RESOURCE_ID"
    assert not [entry for entry in paypal.log if entry.method == "PATCH" and entry.path.endswith("PROD-GONE000")]


async def test_a_deactivated_plan_starts_no_subscription_until_activated_again(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, CatalogUpdateAdapter)
    plan = await _plan(adapter)

    await adapter.set_price_active(plan, active=False, idempotency_key=_key())

    assert paypal.plans[plan]["status"] == "INACTIVE"
    subscription = SubscriptionData(
        subscription_id=12, provider_customer_id="billplane-customer-1", provider_price_id=plan
    )
    with pytest.raises(ProviderError) as caught:
        await adapter.create_subscription(subscription, idempotency_key=_key())
    assert caught.value.code == "PLAN_STATUS_INVALID"
    # Asked again (a second row, or a retry): PayPal refuses a plan already inactive, which is done.
    await adapter.set_price_active(plan, active=False, idempotency_key=_key())
    await adapter.set_price_active(plan, active=True, idempotency_key=_key())
    assert paypal.plans[plan]["status"] == "ACTIVE"
    actions = [
        entry.path.rsplit("/", 1)[1] for entry in paypal.posts() if entry.path.startswith(f"/v1/billing/plans/{plan}/")
    ]
    assert actions == ["deactivate", "deactivate", "activate"]


async def test_a_deactivation_whose_answer_was_lost_is_done_on_its_retry(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, CatalogUpdateAdapter)
    plan = await _plan(adapter)
    paypal.lose_next_answer(f"/v1/billing/plans/{plan}/deactivate")
    key = _key()
    with pytest.raises(RetryableProviderError):
        await adapter.set_price_active(plan, active=False, idempotency_key=key)
    assert paypal.plans[plan]["status"] == "INACTIVE"  # it took effect at PayPal

    await adapter.set_price_active(plan, active=False, idempotency_key=key)  # the sync engine's retry

    assert paypal.plans[plan]["status"] == "INACTIVE"


async def test_a_refusal_that_is_not_the_state_asked_for_is_an_error(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, CatalogUpdateAdapter)
    with pytest.raises(ProviderError) as caught:
        await adapter.set_price_active("P-GONE00000000", active=False, idempotency_key=_key())
    assert caught.value.code == "INVALID_RESOURCE_ID"
