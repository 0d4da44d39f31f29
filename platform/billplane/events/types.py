"""Event types and the patterns an endpoint subscribes with.

A type is ``<object>.<change>`` (``invoice.paid``). An endpoint's ``enabled_events`` lists exact
types, ``<prefix>.*`` (every type under that prefix: ``invoice.*``) or ``*``; an empty list means
every type. ``MATCHES_SQL`` is the same rule in SQL, for the fan-out in ``emit``, for replays and
for the worker's claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TYPE_PATTERN = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
SUBSCRIPTION_PATTERN = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)*\.\*|[a-z_]+(\.[a-z_]+)+)$")

# Types billplane itself emits about webhook endpoints (the billing engine emits the others).
ENDPOINT_CREATED = "webhook_endpoint.created"
ENDPOINT_UPDATED = "webhook_endpoint.updated"
ENDPOINT_DELETED = "webhook_endpoint.deleted"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
ENDPOINT_OBJECT = "webhook_endpoint"

# Types about the catalog, customers and provider accounts, emitted by their services. Archiving a
# product or plan is an update (``active`` false in ``data``), as the API makes it a PATCH.
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_DELETED = "customer.deleted"
CUSTOMER_OBJECT = "customer"
PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_DELETED = "product.deleted"
PRODUCT_OBJECT = "product"
PLAN_CREATED = "plan.created"
PLAN_UPDATED = "plan.updated"
PLAN_DELETED = "plan.deleted"
PLAN_OBJECT = "plan"
PROVIDER_ACCOUNT_CREATED = "provider_account.created"
PROVIDER_ACCOUNT_UPDATED = "provider_account.updated"
PROVIDER_ACCOUNT_DELETED = "provider_account.deleted"
PROVIDER_ACCOUNT_OBJECT = "provider_account"
PAYMENT_METHOD_ATTACHED = "payment_method.attached"
PAYMENT_METHOD_UPDATED = "payment_method.updated"
PAYMENT_METHOD_DETACHED = "payment_method.detached"
PAYMENT_METHOD_OBJECT = "payment_method"

# The type of a subscription's change that billplane did not make itself through its own action
# (a provider's webhook, the provider's answer to the create call, the expiry of an incomplete
# one), by the status it entered: the names billplane's own actions and dunning use for the same
# change, so an endpoint subscribed to ``subscription.canceled`` hears of every cancellation.
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_OBJECT = "subscription"
_SUBSCRIPTION_ENTERED = {
    "canceled": "subscription.canceled",
    "past_due": "subscription.past_due",
    "unpaid": "subscription.unpaid",
    "paused": "subscription.paused",
    "incomplete_expired": "subscription.incomplete_expired",
}
_SUBSCRIPTION_RECOVERS = frozenset({"past_due", "unpaid"})

# Likewise for an invoice a provider issues (it bills its own subscriptions) and billplane mirrors.
INVOICE_CREATED = "invoice.created"
INVOICE_UPDATED = "invoice.updated"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
INVOICE_OBJECT = "invoice"
_INVOICE_ENTERED = {
    "open": "invoice.finalized",
    "paid": "invoice.paid",
    "void": "invoice.voided",
    "uncollectible": "invoice.marked_uncollectible",
}

# `w` is the endpoint, `e` the event.
MATCHES_SQL = (
    "(cardinality(w.enabled_events) = 0 OR EXISTS (SELECT 1 FROM unnest(w.enabled_events) AS p(pattern) "
    "WHERE p.pattern = e.type OR p.pattern = '*' "
    "OR (right(p.pattern, 2) = '.*' AND starts_with(e.type, left(p.pattern, -1)))))"
)


def matches(patterns: Sequence[str], type_: str) -> bool:
    """Whether an endpoint subscribed with ``patterns`` receives events of ``type_``."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in {"*", type_}:
            return True
        if pattern.endswith(".*") and type_.startswith(pattern[:-1]):
            return True
    return False


def subscription_change(before: str, after: str) -> str:
    """The type of a subscription's change from status ``before`` to ``after`` (the same status:
    ``subscription.updated``, for a change of its other fields)."""
    if after == before:
        return SUBSCRIPTION_UPDATED
    if after in _SUBSCRIPTION_ENTERED:
        return _SUBSCRIPTION_ENTERED[after]
    if before == "paused":
        return "subscription.resumed"
    if before in _SUBSCRIPTION_RECOVERS and after == "active":
        return "subscription.recovered"
    return SUBSCRIPTION_UPDATED


def invoice_change(before: str | None, after: str) -> str | None:
    """The type of a mirrored invoice's move from status ``before`` (None: it was just created, as
    a draft) to ``after``; None when the status stayed (or stays a draft)."""
    if after == (before or "draft"):
        return None
    return _INVOICE_ENTERED.get(after, INVOICE_UPDATED)
