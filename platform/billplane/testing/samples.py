"""The data the kit sends to an adapter: small, valid, and the same for every provider."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import get_args

from billplane.plugins import (
    ChargeRequest,
    CustomerData,
    PriceData,
    ProductData,
    RefundRequest,
    SubscriptionData,
    TierData,
    UsageReport,
)
from billplane.plugins.contract import PricingModel

PRICING_MODELS: tuple[PricingModel, ...] = get_args(PricingModel)
CHARGE_AMOUNT = 2000
REFUND_AMOUNT = 500


def customer() -> CustomerData:
    return CustomerData(customer_id=1, email="ada@example.com", name="Ada Lovelace", metadata={"source": "conformance"})


def product() -> ProductData:
    return ProductData(product_id=1, name="Conformance product", description="made by billplane.testing")


_AMOUNTS = {"flat": 1500, "per_seat": 1000, "package": 500, "metered": 2}


def price(model: PricingModel, provider_product_id: str, currency: str) -> PriceData:
    """A valid monthly price of ``model``: 15.00 flat, 10.00 a seat, 5.00 per 100 units, 0.02 a unit, or tiers."""
    tiered = model in {"tiered", "volume"}
    return PriceData(
        plan_id=1,
        provider_product_id=provider_product_id,
        pricing_model=model,
        currency=currency,
        billing_interval="month",
        amount=None if tiered else _AMOUNTS[model],
        tiers=[TierData(up_to=10, unit_amount=Decimal(100)), TierData(up_to=None, unit_amount=Decimal(80))]
        if tiered
        else [],
        package_size=100 if model == "package" else None,
        usage_aggregation="sum" if model == "metered" else None,
    )


def subscription(provider_customer_id: str, provider_price_id: str) -> SubscriptionData:
    return SubscriptionData(
        subscription_id=1, provider_customer_id=provider_customer_id, provider_price_id=provider_price_id, quantity=1
    )


def charge(
    payment_method: str, currency: str, provider_customer_id: str | None = None, *, payment_id: int = 1
) -> ChargeRequest:
    return ChargeRequest(
        payment_id=payment_id,
        amount=CHARGE_AMOUNT,
        currency=currency,
        payment_method=payment_method,
        provider_customer_id=provider_customer_id,
        description="billplane conformance charge",
    )


def usage(provider_subscription_id: str, provider_customer_id: str, provider_price_id: str) -> UsageReport:
    return UsageReport(
        usage_record_id=1,
        plan_id=1,
        provider_subscription_id=provider_subscription_id,
        provider_customer_id=provider_customer_id,
        provider_price_id=provider_price_id,
        quantity=7,
        timestamp=datetime.now(UTC).replace(microsecond=0),
    )


def refund(provider_payment_id: str, currency: str, *, refund_id: int = 1) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id, provider_payment_id=provider_payment_id, amount=REFUND_AMOUNT, currency=currency
    )
