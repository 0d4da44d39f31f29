"""Catalog edits at Stripe: a product's name, description and archiving, a price archived and made
active again, and what an archived price still allows (the subscriptions that have it)."""

from __future__ import annotations

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import CatalogUpdateAdapter, ProductData, ProviderError, SubscriptionChange, SubscriptionData
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio


async def test_a_product_shows_billplanes_name_description_and_archiving(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    assert isinstance(stripe_adapter, CatalogUpdateAdapter)
    product = await helpers.product(stripe_adapter)
    edited = ProductData(product_id=3, name="Pro 2026", description="the pro plan, renamed")

    await stripe_adapter.update_product(product, edited, idempotency_key=helpers.key())

    update = fake_stripe.last("POST", "/v1/products/{id}")
    assert update.path == f"/v1/products/{product}"
    assert update.params == {"name": "Pro 2026", "description": "the pro plan, renamed", "active": "true"}
    at_stripe = fake_stripe.store.products[product]
    assert (at_stripe["name"], at_stripe["description"], at_stripe["active"]) == (
        "Pro 2026",
        "the pro plan, renamed",
        True,
    )

    # A description cleared in billplane is cleared at Stripe; an archived product is inactive there.
    await stripe_adapter.update_product(
        product, ProductData(product_id=3, name="Pro 2026", active=False), idempotency_key=helpers.key()
    )
    assert fake_stripe.last("POST", "/v1/products/{id}").params["description"] == ""
    assert (at_stripe["description"], at_stripe["active"]) == (None, False)
    assert at_stripe["metadata"] == {"billplane_product_id": "3"}  # left as the create made it


async def test_a_retried_update_is_replayed_under_its_key(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    product = await helpers.product(stripe_adapter)
    edited, key = ProductData(product_id=3, name="Pro 2026"), helpers.key()
    await stripe_adapter.update_product(product, edited, idempotency_key=key)
    await stripe_adapter.update_product(product, edited, idempotency_key=key)
    updates = [r for r in fake_stripe.requests if r.template == "/v1/products/{id}"]
    assert [r.idempotency_key for r in updates] == [key, key]
    assert fake_stripe.store.products[product]["name"] == "Pro 2026"


async def test_a_product_stripe_no_longer_has_is_an_error(stripe_adapter: StripeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.update_product(
            "prod_gone", ProductData(product_id=3, name="Pro"), idempotency_key=helpers.key()
        )
    assert caught.value.code == "resource_missing"


async def test_an_archived_price_starts_no_subscription_and_keeps_those_it_has(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    subscription = await helpers.subscription(stripe_adapter, quantity=3)
    [item] = fake_stripe.store.subscriptions[subscription]["items"]["data"]
    price = item["price"]["id"]

    await stripe_adapter.set_price_active(price, active=False, idempotency_key=helpers.key())

    assert fake_stripe.last("POST", "/v1/prices/{price}").params == {"active": "false"}
    assert fake_stripe.store.prices[price]["active"] is False
    new = SubscriptionData(
        subscription_id=10, provider_customer_id=await helpers.customer(stripe_adapter), provider_price_id=price
    )
    with pytest.raises(ProviderError, match="inactive"):
        await stripe_adapter.create_subscription(new, idempotency_key=helpers.key())
    # A seat added to a subscription on it: the item keeps its price, which is not named again.
    changed = await stripe_adapter.update_subscription(
        subscription, SubscriptionChange(quantity=4), idempotency_key=helpers.key()
    )
    assert changed.quantity == 4
    assert fake_stripe.last("POST", "/v1/subscriptions/{subscription_exposed_id}").params["items"] == [
        {"id": item["id"], "quantity": "4"}
    ]

    # Archived again (its answer was lost, say): no error. Then active again: it sells once more.
    await stripe_adapter.set_price_active(price, active=False, idempotency_key=helpers.key())
    await stripe_adapter.set_price_active(price, active=True, idempotency_key=helpers.key())
    assert fake_stripe.store.prices[price]["active"] is True
    created = await stripe_adapter.create_subscription(new, idempotency_key=helpers.key())
    assert created.status == "active"


async def test_a_price_stripe_does_not_have_is_an_error(stripe_adapter: StripeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.set_price_active("price_gone", active=False, idempotency_key=helpers.key())
    assert caught.value.code == "resource_missing"
