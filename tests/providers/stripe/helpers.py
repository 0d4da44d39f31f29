"""Small builders shared by the Stripe tests."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.credentials import StripeCredentials

from billplane.plugins import (
    AdapterContext,
    CustomerData,
    PriceData,
    PricingModel,
    ProductData,
    SubscriptionData,
    TierData,
)

# What the adapter adds to the metadata of a PaymentIntent or Refund (conftest's TENANT_ID).
TENANT_METADATA = {"billplane_tenant_id": "7"}

_run = uuid.uuid4().hex[:8]
_counter = itertools.count(1)


def key() -> str:
    return f"test-{_run}-{next(_counter)}"


def price_data(model: PricingModel, product: str, **overrides: object) -> PriceData:
    fields: dict[str, object] = {
        "plan_id": 31,
        "provider_product_id": product,
        "pricing_model": model,
        "currency": "EUR",
        "billing_interval": "month",
    }
    if model in {"tiered", "volume"}:
        fields["tiers"] = [
            TierData(up_to=10, unit_amount=Decimal(100), flat_amount=500),
            TierData(up_to=None, unit_amount=Decimal("0.5")),
        ]
    else:
        fields["amount"] = 1200
    if model == "package":
        fields["package_size"] = 50
    if model == "metered":
        fields["usage_aggregation"] = "sum"
    fields.update(overrides)
    return PriceData(**fields)  # type: ignore[arg-type]


async def customer(adapter: StripeAdapter) -> str:
    data = CustomerData(customer_id=5, email="grace@example.com", name="Grace Hopper")
    return (await adapter.ensure_customer(data, idempotency_key=key())).provider_id


async def product(adapter: StripeAdapter) -> str:
    data = ProductData(product_id=3, name="Pro", description="the pro plan")
    return (await adapter.ensure_product(data, idempotency_key=key())).provider_id


async def price(adapter: StripeAdapter, model: PricingModel = "per_seat", **overrides: object) -> str:
    data = price_data(model, await product(adapter), **overrides)
    return (await adapter.ensure_price(data, idempotency_key=key())).provider_id


async def subscription(adapter: StripeAdapter, model: PricingModel = "per_seat", quantity: int = 3) -> str:
    data = SubscriptionData(
        subscription_id=9,
        provider_customer_id=await customer(adapter),
        provider_price_id=await price(adapter, model),
        quantity=quantity,
    )
    return (await adapter.create_subscription(data, idempotency_key=key())).provider_id


def unreachable(secret_key: str) -> StripeAdapter:
    """An adapter whose Stripe nothing answers: the discard port on loopback."""
    credentials = StripeCredentials(secret_key=secret_key)
    options = {"api_base": "http://127.0.0.1:9", "timeout": "2"}
    context = AdapterContext(tenant_id=1, account_id=1, mode="test", credentials=credentials, options=options)
    return StripeAdapter(context, credentials)
