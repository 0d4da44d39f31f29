"""Which adapter operation needs which capability, and how the kit calls each one with placeholder data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from billplane.plugins import Capability, ProviderAdapter, ProviderPlugin, SubscriptionChange
from billplane.testing import samples

Call = Callable[[ProviderAdapter, str], Awaitable[object]]
_ID = "unknown_id"  # never created: an adapter must refuse before it looks an id up

OPERATIONS: dict[str, tuple[Capability, Call]] = {
    "ensure_customer": (
        Capability.CUSTOMERS,
        lambda a, key: a.ensure_customer(samples.customer(), idempotency_key=key),
    ),
    "update_customer": (
        Capability.CUSTOMERS,
        lambda a, key: a.update_customer(_ID, samples.customer(), idempotency_key=key),
    ),
    "delete_customer": (Capability.CUSTOMERS, lambda a, key: a.delete_customer(_ID, idempotency_key=key)),
    "ensure_product": (Capability.CATALOG, lambda a, key: a.ensure_product(samples.product(), idempotency_key=key)),
    "ensure_price": (
        Capability.CATALOG,
        lambda a, key: a.ensure_price(samples.price("flat", _ID, "USD"), idempotency_key=key),
    ),
    "create_subscription": (
        Capability.SUBSCRIPTIONS,
        lambda a, key: a.create_subscription(samples.subscription(_ID, _ID), idempotency_key=key),
    ),
    "update_subscription": (
        Capability.SUBSCRIPTIONS,
        lambda a, key: a.update_subscription(_ID, SubscriptionChange(quantity=2), idempotency_key=key),
    ),
    "cancel_subscription": (
        Capability.SUBSCRIPTIONS,
        lambda a, key: a.cancel_subscription(_ID, at_period_end=False, idempotency_key=key),
    ),
    "pause_subscription": (Capability.PAUSE, lambda a, key: a.pause_subscription(_ID, idempotency_key=key)),
    "resume_subscription": (Capability.PAUSE, lambda a, key: a.resume_subscription(_ID, idempotency_key=key)),
    "charge": (Capability.CHARGES, lambda a, key: a.charge(samples.charge("pm_unknown", "USD"), idempotency_key=key)),
    "refund": (Capability.REFUNDS, lambda a, key: a.refund(samples.refund(_ID, "USD"), idempotency_key=key)),
    "report_usage": (
        Capability.USAGE,
        lambda a, key: a.report_usage(samples.usage(_ID, _ID, _ID), idempotency_key=key),
    ),
}

# Capabilities that cannot be exercised (or make no sense) without another one.
REQUIRES: dict[Capability, frozenset[Capability]] = {
    Capability.SUBSCRIPTIONS: frozenset({Capability.CUSTOMERS, Capability.CATALOG}),
    Capability.PAUSE: frozenset({Capability.SUBSCRIPTIONS}),
    Capability.UNDO_CANCEL: frozenset({Capability.SUBSCRIPTIONS}),
    Capability.PAYMENT_METHODS: frozenset({Capability.CHARGES}),
    Capability.REFUNDS: frozenset({Capability.CHARGES}),
    Capability.USAGE: frozenset({Capability.SUBSCRIPTIONS}),
    Capability.PAYMENT_LOOKUP: frozenset({Capability.CHARGES}),
    Capability.PAYMENT_STATUS: frozenset({Capability.CHARGES}),
    Capability.REFUND_STATUS: frozenset({Capability.REFUNDS}),
    Capability.REFUND_LOOKUP: frozenset({Capability.REFUNDS}),
    Capability.CATALOG_UPDATES: frozenset({Capability.CATALOG}),
    Capability.SUBSCRIPTION_METADATA: frozenset({Capability.SUBSCRIPTIONS}),
}


def require(plugin: ProviderPlugin, capability: Capability) -> None:
    if capability not in plugin.capabilities:
        pytest.skip(f"{plugin.name} does not declare the {capability.value} capability")
