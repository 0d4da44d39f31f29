"""PayPal subscriptions: request bodies, and PayPal's subscription object as billplane's.

A new PayPal subscription waits for the customer (APPROVAL_PENDING) until they approve it at the
``approve`` link; billplane shows it as ``incomplete`` with that link as its ``next_action``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from billplane.plugins import NextAction, ProviderSubscription, SubscriptionChange, SubscriptionData
from billplane.plugins.contract import SubscriptionStatus
from billplane_paypal.money import to_minor

# Where PayPal sends the customer after approving or cancelling when neither the subscription nor
# the operator (BILLPLANE_PROVIDER_PAYPAL_RETURN_URL / _CANCEL_URL) says: PayPal requires both.
DEFAULT_RETURN_URL = "https://example.com/billplane/paypal/approved"
DEFAULT_CANCEL_URL = "https://example.com/billplane/paypal/cancelled"

# The reason billplane gives PayPal when it pauses a subscription: PayPal keeps it as the
# subscription's status_change_note, which tells billplane's suspension from PayPal's own.
PAUSE_REASON = "Paused in billplane"

_STATUSES: dict[str, SubscriptionStatus] = {
    "APPROVAL_PENDING": "incomplete",
    "APPROVED": "incomplete",  # approved but not yet started by PayPal
    "ACTIVE": "active",
    "SUSPENDED": "paused",
    "CANCELLED": "canceled",
    "EXPIRED": "canceled",
}


def _application_context(return_url: str | None, cancel_url: str | None, options: Mapping[str, str]) -> dict[str, Any]:
    return {
        "return_url": return_url or options.get("return_url") or DEFAULT_RETURN_URL,
        "cancel_url": cancel_url or options.get("cancel_url") or DEFAULT_CANCEL_URL,
        "user_action": "SUBSCRIBE_NOW",
        "shipping_preference": "NO_SHIPPING",
    }


def request_id(tenant_id: int, subscription_id: int) -> str:
    """The ``PayPal-Request-Id`` of every create of one billplane subscription, whichever outbox row
    sends it. PayPal cannot list or search subscriptions, so a create whose answers were all lost
    cannot be looked up; under this id PayPal answers a later create (a manual sync's new row, with
    a new key) with the subscription the first one made, for the 72 hours it keeps the id. The
    tenant's id is part of it: tenants' subscription ids overlap, and two may share a PayPal app."""
    return f"billplane-{tenant_id}-subscription-{subscription_id}"


def differs(created: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """How the subscription PayPal answered a create with differs from the one ``body`` asks for:
    an earlier create's, replayed, made before the billplane subscription changed its plan or
    quantity (or by another billplane sharing the PayPal app). What the answer leaves out
    contradicts nothing."""
    for field in ("custom_id", "plan_id", "quantity"):
        found = created.get(field)
        if found is not None and str(found) != str(body[field]):
            return f"{field} {found}, not {body[field]}"
    return None


def create_body(subscription: SubscriptionData, options: Mapping[str, str]) -> dict[str, Any]:
    """``POST /v1/billing/subscriptions``. ``trial_end`` is not sent: a PayPal trial is the plan's
    TRIAL cycle (see catalog.py), and a start time on top of it would lengthen it."""
    return {
        "plan_id": subscription.provider_price_id,
        "quantity": str(subscription.quantity),
        # Shown in PayPal's dashboard and echoed in webhooks: ties the subscription to billplane's.
        "custom_id": f"billplane:{subscription.subscription_id}",
        "application_context": _application_context(subscription.return_url, subscription.cancel_url, options),
    }


def revise_body(change: SubscriptionChange, options: Mapping[str, str]) -> dict[str, Any]:
    """``POST .../revise``. PayPal has no proration choice: it applies a revision from the next
    billing cycle (after the customer's consent when the price goes up)."""
    body: dict[str, Any] = {"application_context": _application_context(None, None, options)}
    if change.provider_price_id is not None:
        body["plan_id"] = change.provider_price_id
    if change.quantity is not None:
        body["quantity"] = str(change.quantity)
    return body


def approve_link(body: Mapping[str, Any]) -> NextAction | None:
    for link in body.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "approve" and isinstance(link.get("href"), str):
            return NextAction(type="redirect", url=link["href"])
    return None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else None


def _status(body: Mapping[str, Any], billing: Mapping[str, Any]) -> SubscriptionStatus:
    status = _STATUSES.get(str(body.get("status")), "incomplete")
    if status == "paused" and _failed_payments(billing) and body.get("status_change_note") != PAUSE_REASON:
        # PayPal suspends a subscription whose failed payments reached the plan's threshold: it
        # bills no more until the balance is paid, which is billplane's unpaid, not a pause.
        return "unpaid"
    if status != "active":
        return status
    balance = billing.get("outstanding_balance")
    if isinstance(balance, dict) and balance.get("value") and to_minor(balance["value"], balance["currency_code"]) > 0:
        return "past_due"  # a cycle went unpaid; PayPal retries and suspends after the threshold
    for cycle in billing.get("cycle_executions") or []:
        # In a trial while its TRIAL cycle has not completed its (single) run.
        if cycle.get("tenure_type") == "TRIAL" and cycle.get("cycles_completed", 0) < cycle.get("total_cycles", 0):
            return "trialing"
    return status


def _failed_payments(billing: Mapping[str, Any]) -> bool:
    """PayPal counts consecutive failed payments and resets the count at a successful one."""
    count = billing.get("failed_payments_count")
    return isinstance(count, int) and count > 0


def _quantity(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def from_paypal(body: Mapping[str, Any], *, next_action: NextAction | None = None) -> ProviderSubscription:
    """PayPal's subscription object (GET, create, or a webhook's ``resource``) as billplane's."""
    billing: Mapping[str, Any] = body.get("billing_info") or {}
    status = _status(body, billing)
    last_payment = billing.get("last_payment") or {}
    trial_end = None
    if status == "trialing":
        trial_end = parse_time(billing.get("next_billing_time"))
    if status == "incomplete" and next_action is None:
        next_action = approve_link(body)
    return ProviderSubscription(
        provider_id=str(body["id"]),
        status=status,
        current_period_start=parse_time(last_payment.get("time")) or parse_time(body.get("start_time")),
        current_period_end=parse_time(billing.get("next_billing_time")),
        canceled_at=parse_time(body.get("status_update_time")) if status == "canceled" else None,
        trial_end=trial_end,
        quantity=_quantity(body.get("quantity")) if body.get("quantity") is not None else None,
        next_action=next_action,
    )
