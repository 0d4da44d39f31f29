"""billplane's pricing models as Stripe Price (and Billing Meter) parameters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billplane.plugins import PriceData, ProductData, ProviderError, TierData, UnsupportedOperationError
from billplane_stripe.amounts import to_stripe, unit_to_stripe

# A Billing Meter aggregates events by one of these; Stripe meters have no maximum.
_FORMULAS = {"sum": "sum", "last": "last"}
CUSTOMER_KEY = "stripe_customer_id"
VALUE_KEY = "value"


def product_update_params(product: ProductData) -> dict[str, Any]:
    """The ``POST /v1/products/{id}`` parameters that make a product show billplane's as it is now."""
    # "" clears a description billplane cleared (Stripe's way of unsetting a field).
    return {"name": product.name, "description": product.description or "", "active": product.active}


def meter_event_name(tenant_id: int, plan_id: int) -> str:
    """The meter a plan's usage is counted on; tenant and plan make it unique within a Stripe account."""
    return f"billplane_t{tenant_id}_plan_{plan_id}"


def meter_params(tenant_id: int, price: PriceData) -> dict[str, Any]:
    aggregation = price.usage_aggregation or "sum"
    formula = _FORMULAS.get(aggregation)
    if formula is None:
        raise UnsupportedOperationError(
            "metered price with usage_aggregation 'max'",
            "Stripe Billing Meters aggregate by sum, count or last value only; use 'sum' or 'last'",
        )
    return {
        "display_name": f"billplane plan {price.plan_id}",
        "event_name": meter_event_name(tenant_id, price.plan_id),
        "default_aggregation": {"formula": formula},
        "customer_mapping": {"type": "by_id", "event_payload_key": CUSTOMER_KEY},
        "value_settings": {"event_payload_key": VALUE_KEY},
    }


def _amount(price: PriceData) -> int:
    if price.amount is None or price.amount < 0:
        raise ProviderError(f"a {price.pricing_model} price needs a non-negative amount", code="invalid_price")
    return to_stripe(price.amount, price.currency)


def _tier(tier: TierData, currency: str) -> dict[str, Any]:
    unit = unit_to_stripe(tier.unit_amount, currency)
    # Whole minor units go as integers; fractions (0.5 cent per unit) need Stripe's decimal field.
    amount: dict[str, Any] = (
        {"unit_amount": int(unit)} if unit == unit.to_integral_value() else {"unit_amount_decimal": _decimal(unit)}
    )
    result: dict[str, Any] = {"up_to": "inf" if tier.up_to is None else tier.up_to, **amount}
    if tier.flat_amount:
        result["flat_amount"] = to_stripe(tier.flat_amount, currency)
    return result


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _tiers(price: PriceData) -> list[dict[str, Any]]:
    if not price.tiers or price.tiers[-1].up_to is not None:
        raise ProviderError("a tiered price needs tiers whose last one has no upper bound", code="invalid_price")
    return [_tier(tier, price.currency) for tier in price.tiers]


def price_params(price: PriceData, *, meter_id: str | None = None) -> dict[str, Any]:
    """The ``POST /v1/prices`` parameters of one billplane plan (``meter_id`` for metered plans)."""
    recurring: dict[str, Any] = {"interval": price.billing_interval, "interval_count": price.interval_count}
    params: dict[str, Any] = {
        "product": price.provider_product_id,
        "currency": price.currency.lower(),
        "recurring": recurring,
        "metadata": {"billplane_plan_id": str(price.plan_id), "billplane_pricing_model": price.pricing_model},
    }
    model = price.pricing_model
    if model in {"flat", "per_seat"}:
        params["unit_amount"] = _amount(price)  # per seat: the subscription's quantity is the seat count
    elif model in {"tiered", "volume"}:
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = "graduated" if model == "tiered" else "volume"
        params["tiers"] = _tiers(price)
    elif model == "package":
        if not price.package_size or price.package_size < 1:
            raise ProviderError("a package price needs a package_size of at least 1", code="invalid_price")
        params["unit_amount"] = _amount(price)
        params["transform_quantity"] = {"divide_by": price.package_size, "round": "up"}
    elif model == "metered":
        if meter_id is None:
            raise ValueError("a metered price needs its meter")
        params["unit_amount"] = _amount(price)
        recurring["usage_type"] = "metered"
        recurring["meter"] = meter_id
    else:
        raise UnsupportedOperationError(f"pricing model {model!r}", "billplane-stripe does not know this model")
    return params
