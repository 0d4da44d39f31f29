"""billplane products and prices as PayPal catalog products and billing plans (request bodies).

A PayPal plan has one REGULAR billing cycle with a pricing scheme, optionally preceded by a free
TRIAL cycle. What a plan can express decides billplane's pricing models here:

- flat: ``fixed_price``, quantity not supported;
- per_seat: ``fixed_price`` per unit with ``quantity_supported`` (PayPal multiplies by quantity);
- tiered / volume: ``pricing_model`` TIERED / VOLUME with ``tiers`` (per-unit amount per tier);
- package and metered: no equivalent (PayPal bills a fixed quantity per cycle, never reported usage).
"""

from __future__ import annotations

from typing import Any

from billplane.plugins import PriceData, ProductData, TierData, UnsupportedOperationError
from billplane_paypal.money import to_value

PRICING_MODELS = frozenset({"flat", "per_seat", "tiered", "volume"})
_UNSUPPORTED = {
    "package": "PayPal plans charge per unit or by tiers, never per started package of units",
    "metered": "PayPal plans bill a fixed quantity each cycle and accept no usage reports",
}
# PayPal's largest interval_count per interval_unit.
_MAX_INTERVALS = {"DAY": 365, "WEEK": 52, "MONTH": 12, "YEAR": 1}
_MAX_TRIAL_DAYS = 365


def product_body(product: ProductData) -> dict[str, Any]:
    body: dict[str, Any] = {"name": product.name[:127] or f"Product {product.product_id}", "type": "SERVICE"}
    if product.description:
        body["description"] = product.description[:256]
    return body


def description_patch(current: object, product: ProductData) -> list[dict[str, Any]]:
    """The ``PATCH /v1/catalogs/products/{id}`` body that gives a product with the description
    ``current`` billplane's (cut to PayPal's 256 characters, as ``product_body`` cuts it); empty
    when it has it already. PayPal takes no empty description: billplane's cleared one is removed."""
    wanted = (product.description or "")[:256] or None
    if wanted == (current or None):
        return []
    if wanted is None:
        return [{"op": "remove", "path": "/description"}]
    return [{"op": "replace" if current else "add", "path": "/description", "value": wanted}]


def _money(minor: Any, currency: str) -> dict[str, str]:
    return {"currency_code": currency.upper(), "value": to_value(minor, currency)}


def _tiers(price: PriceData) -> list[dict[str, Any]]:
    if not price.tiers:
        raise UnsupportedOperationError(f"{price.pricing_model} prices", "a tiered or volume price needs tiers")
    tiers: list[dict[str, Any]] = []
    start = 1
    for index, tier in enumerate(price.tiers):
        _check_tier(price, tier, last=index == len(price.tiers) - 1)
        entry: dict[str, Any] = {"starting_quantity": str(start), "amount": _money(tier.unit_amount, price.currency)}
        if tier.up_to is not None:
            entry["ending_quantity"] = str(tier.up_to)
            start = tier.up_to + 1
        tiers.append(entry)
    return tiers


def _check_tier(price: PriceData, tier: TierData, *, last: bool) -> None:
    if tier.flat_amount:
        raise UnsupportedOperationError(
            f"{price.pricing_model} prices with a flat amount per tier", "PayPal tiers have a unit amount only"
        )
    if (tier.up_to is None) != last:
        raise UnsupportedOperationError(
            f"{price.pricing_model} prices", "only the last tier may be open-ended, and it must be"
        )


def _pricing_scheme(price: PriceData) -> dict[str, Any]:
    if price.pricing_model in _UNSUPPORTED:
        raise UnsupportedOperationError(f"{price.pricing_model} prices", _UNSUPPORTED[price.pricing_model])
    if price.pricing_model in {"flat", "per_seat"}:
        if price.amount is None:
            raise UnsupportedOperationError(f"{price.pricing_model} prices", "an amount is required")
        return {"fixed_price": _money(price.amount, price.currency)}
    return {"pricing_model": price.pricing_model.upper(), "tiers": _tiers(price)}


def _frequency(price: PriceData) -> dict[str, Any]:
    unit = price.billing_interval.upper()
    if not 1 <= price.interval_count <= _MAX_INTERVALS[unit]:
        raise UnsupportedOperationError(
            f"billing every {price.interval_count} {price.billing_interval}s",
            f"PayPal allows 1 to {_MAX_INTERVALS[unit]} for {price.billing_interval}",
        )
    return {"interval_unit": unit, "interval_count": price.interval_count}


def plan_body(price: PriceData, *, name: str) -> dict[str, Any]:
    """The ``POST /v1/billing/plans`` body; raises ``UnsupportedOperationError`` for what PayPal lacks."""
    regular = {
        "frequency": _frequency(price),
        "tenure_type": "REGULAR",
        "sequence": 1,
        "total_cycles": 0,  # renews until cancelled
        "pricing_scheme": _pricing_scheme(price),
    }
    cycles: list[dict[str, Any]] = [regular]
    if price.trial_period_days:
        if not 1 <= price.trial_period_days <= _MAX_TRIAL_DAYS:
            raise UnsupportedOperationError(
                f"a trial of {price.trial_period_days} days", f"PayPal allows 1 to {_MAX_TRIAL_DAYS} days"
            )
        # A trial cycle without a pricing scheme is free; it runs once, before the regular cycle.
        trial = {
            "frequency": {"interval_unit": "DAY", "interval_count": price.trial_period_days},
            "tenure_type": "TRIAL",
            "sequence": 1,
            "total_cycles": 1,
        }
        cycles = [trial, {**regular, "sequence": 2}]
    return {
        "product_id": price.provider_product_id,
        "name": name,
        "status": "ACTIVE",
        "billing_cycles": cycles,
        "quantity_supported": price.pricing_model != "flat",
        "payment_preferences": {
            # An unpaid cycle is added to the next one, and three failures in a row suspend the
            # subscription (PayPal then sends BILLING.SUBSCRIPTION.SUSPENDED).
            "auto_bill_outstanding": True,
            "payment_failure_threshold": 3,
        },
    }
