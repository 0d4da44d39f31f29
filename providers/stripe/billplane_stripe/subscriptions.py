"""Stripe Subscriptions to and from billplane's view of them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billplane.plugins import (
    ProrationPolicy,
    ProviderError,
    ProviderSubscription,
    SubscriptionStatus,
    UnsupportedOperationError,
)

_STATUSES: dict[str, SubscriptionStatus] = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "paused": "paused",
    "canceled": "canceled",
    "unpaid": "unpaid",
    "incomplete": "incomplete",
    # Stripe gave up on the first payment: the subscription will never start.
    "incomplete_expired": "canceled",
}

# immediate: the difference is invoiced and collected now, as billplane's own engine does.
_PRORATION = {"immediate": "always_invoice", "none": "none"}


def timestamp(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and not isinstance(value, bool) else None


def first_item(subscription: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    return data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else None


def status(subscription: Mapping[str, Any]) -> SubscriptionStatus:
    raw = str(subscription.get("status"))
    mapped = _STATUSES.get(raw, "incomplete")
    if subscription.get("pause_collection") and mapped not in {"canceled", "incomplete"}:
        return "paused"
    return mapped


def to_provider(subscription: Mapping[str, Any]) -> ProviderSubscription:
    """billplane's view of a Stripe Subscription object (an API answer or a webhook's ``data.object``)."""
    item = first_item(subscription) or {}
    # API versions since 2025-03-31 keep the period on the item; older ones on the subscription.
    start = subscription.get("current_period_start", item.get("current_period_start"))
    end = subscription.get("current_period_end", item.get("current_period_end"))
    quantity = item.get("quantity")
    return ProviderSubscription(
        provider_id=str(subscription["id"]),
        status=status(subscription),
        current_period_start=timestamp(start),
        current_period_end=timestamp(end),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        canceled_at=timestamp(subscription.get("canceled_at")),
        trial_end=timestamp(subscription.get("trial_end")),
        quantity=quantity if isinstance(quantity, int) else None,
    )


def is_metered(price: Mapping[str, Any]) -> bool:
    recurring = price.get("recurring")
    return isinstance(recurring, Mapping) and recurring.get("usage_type") == "metered"


def item_params(price_id: str, quantity: int, *, metered: bool) -> dict[str, Any]:
    # Stripe refuses a quantity on a metered item: usage, not seats, is what it bills.
    return {"price": price_id} if metered else {"price": price_id, "quantity": quantity}


def proration_behavior(policy: ProrationPolicy) -> str:
    behavior = _PRORATION.get(policy)
    if behavior is None:
        raise UnsupportedOperationError(
            "a plan or quantity change with proration 'period_end'",
            "billplane-stripe changes a Stripe subscription at once; use 'immediate' or 'none', "
            "or schedule the change in billplane for the period's end",
        )
    return behavior


# An ended subscription is not taken for the one being created: it can no longer bill.
_ENDED = {"canceled", "incomplete_expired"}


def own_metadata(subscription_id: int, tenant_id: int) -> dict[str, str]:
    """What create_subscription adds beside the tenant's metadata (is_created_for reads it)."""
    return {"billplane_subscription_id": str(subscription_id), "billplane_tenant_id": str(tenant_id)}


OWN_METADATA = frozenset(own_metadata(0, 0))
MAX_METADATA_KEYS = 50  # Stripe's limit per object


def check_metadata_size(metadata: Mapping[str, str]) -> None:
    """Refuse, before any call, metadata Stripe would refuse beside billplane's own keys."""
    keys = set(metadata) | OWN_METADATA
    if len(keys) > MAX_METADATA_KEYS:
        raise ProviderError(
            f"Stripe keeps at most {MAX_METADATA_KEYS} metadata keys on a subscription and billplane needs "
            f"{len(OWN_METADATA)} of them: this subscription's metadata has {len(metadata)} keys; remove "
            f"{len(keys) - MAX_METADATA_KEYS}",
            code="metadata_too_large",
        )


def metadata_changes(current: object, wanted: Mapping[str, str]) -> dict[str, str]:
    """What to send so that a subscription's metadata at Stripe is ``wanted`` beside billplane's
    own keys: the keys whose value differs, and ``""`` (Stripe's way to remove a key) for each
    other key it has. Empty when it is already so."""
    have = {str(key): str(value) for key, value in current.items()} if isinstance(current, Mapping) else {}
    changes = {key: value for key, value in wanted.items() if key not in OWN_METADATA and have.get(key) != value}
    changes |= {key: "" for key in have if key not in wanted and key not in OWN_METADATA}
    return changes


def is_created_for(subscription: Mapping[str, Any], subscription_id: int, tenant_id: int) -> bool:
    """Whether a listed subscription is one ``create_subscription`` made for this billplane
    subscription of this tenant (one Stripe account may serve several tenants, whose ids overlap),
    and it has not ended."""
    metadata = subscription.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and all(metadata.get(key) == value for key, value in own_metadata(subscription_id, tenant_id).items())
        and subscription.get("status") not in _ENDED
    )


def differs(subscription: Mapping[str, Any], price_id: str, quantity: int) -> str | None:
    """How a listed subscription's first item differs from the price and quantity asked for, if it
    does (a metered item carries no quantity)."""
    item = first_item(subscription)
    price = item.get("price") if item is not None else None
    found_price = price.get("id") if isinstance(price, Mapping) else price
    if found_price != price_id:
        return f"price {found_price}, not {price_id}"
    found_quantity = item.get("quantity") if item is not None else None
    if found_quantity is not None and found_quantity != quantity:
        return f"quantity {found_quantity}, not {quantity}"
    return None
