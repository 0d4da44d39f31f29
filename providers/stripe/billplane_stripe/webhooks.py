"""Stripe webhooks: verified with the account's signing secret(s), mapped to billplane's events.

Only the event types in ``MAPPED`` become ``ProviderEvent``s; anything else is left out (billplane
stores the raw event and acknowledges it either way).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from billplane.plugins import (
    ChargeResult,
    EventType,
    ProviderEvent,
    ProviderInvoice,
    ProviderPaymentMethod,
    ProviderSubscription,
    RefundResult,
    WebhookVerificationError,
)
from billplane_stripe import payment_methods, payments, subscriptions

SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_SECONDS = 300  # Stripe's own default: a replay older than five minutes is refused

_CUSTOMER: dict[str, EventType] = {
    "customer.created": "customer.created",
    "customer.updated": "customer.updated",
    "customer.deleted": "customer.deleted",
}
_SUBSCRIPTION: dict[str, EventType] = {
    "customer.subscription.created": "subscription.updated",
    "customer.subscription.updated": "subscription.updated",
    "customer.subscription.paused": "subscription.updated",
    "customer.subscription.resumed": "subscription.updated",
    "customer.subscription.trial_will_end": "subscription.updated",
    "customer.subscription.pending_update_applied": "subscription.updated",
    "customer.subscription.pending_update_expired": "subscription.updated",
    "customer.subscription.deleted": "subscription.canceled",
}
_INVOICE: dict[str, EventType] = {
    "invoice.finalized": "invoice.finalized",
    "invoice.paid": "invoice.paid",
    "invoice.payment_failed": "invoice.payment_failed",
    # Voided or written off at Stripe (its Dashboard, its own dunning's last step, a pause that
    # voids the paused time's invoices): the mirror would stay open, its amount shown as due.
    "invoice.voided": "invoice.voided",
    "invoice.marked_uncollectible": "invoice.marked_uncollectible",
}
_PAYMENT: dict[str, EventType] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    # Canceled at Stripe (the Dashboard, or left waiting on the customer): a billplane payment
    # still pending for it fails now (code "canceled"), instead of when reconciliation asks.
    "payment_intent.canceled": "payment.failed",
}
# A method attached, changed or detached at Stripe itself (the Dashboard, Checkout, the customer
# portal, or the card network's own update of an expiry: automatically_updated).
_PAYMENT_METHOD: dict[str, EventType] = {
    "payment_method.attached": "payment_method.attached",
    "payment_method.updated": "payment_method.updated",
    "payment_method.automatically_updated": "payment_method.updated",
    "payment_method.detached": "payment_method.detached",
}
# charge.refunded carries its refunds only in API versions before 2022-11-15; the refund events
# carry the Refund itself in every version.
_REFUND_OBJECT = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}


def verify(body: bytes, headers: Mapping[str, str], secrets: list[str]) -> Mapping[str, Any]:
    """The event, once its signature verifies with one of ``secrets`` within the tolerance."""
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise WebhookVerificationError("the Stripe-Signature header is missing", code="missing_signature")
    if not secrets:
        raise WebhookVerificationError("the account has no webhook signing secret", code="no_webhook_secret")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("the webhook body is not UTF-8", code="malformed_body") from None
    last: Exception | None = None
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            last = error
            continue
        except (ValueError, TypeError, AttributeError, KeyError):
            # Signed, but not an event the SDK can build: JSON that is no object, or no JSON at all.
            raise WebhookVerificationError("the webhook body is not a JSON event", code="malformed_body") from None
        event = json.loads(payload)
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise WebhookVerificationError("the webhook body is not a Stripe event", code="malformed_body")
        return event
    # Stripe's reason (no matching signature, timestamp outside the tolerance) names no secret.
    reason = getattr(last, "user_message", None) or "the signature did not verify"
    raise WebhookVerificationError(f"Stripe webhook not verified: {reason}", code="bad_signature")


def _occurred_at(event: Mapping[str, Any]) -> datetime:
    created = event.get("created")
    if not isinstance(created, int):
        raise WebhookVerificationError("the webhook event has no 'created' time", code="malformed_body")
    return datetime.fromtimestamp(created, UTC)


def _event(
    event: Mapping[str, Any], type_: EventType, obj: Mapping[str, Any], *, event_id: str | None = None, **payload: Any
) -> ProviderEvent:
    return ProviderEvent(
        event_id=event_id or str(event["id"]),
        type=type_,
        occurred_at=_occurred_at(event),
        provider_object_id=str(obj["id"]),
        provider_type=str(event["type"]),
        **payload,
    )


def _refunds_of_charge(
    event: Mapping[str, Any], charge: Mapping[str, Any], tenant_id: int | None
) -> list[ProviderEvent]:
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    found: list[ProviderEvent] = []
    for refund in data if isinstance(data, list) else []:
        if isinstance(refund, Mapping) and refund.get("id"):
            result = payments.refund_result(refund, tenant_id=tenant_id)
            # billplane stores one event per account and event id, so refunds sharing the delivery's
            # id would keep only the first; derived from both ids, a redelivery is still dropped.
            event_id = f"{event['id']}:{refund['id']}"
            found.append(_event(event, "refund.updated", refund, event_id=event_id, refund=result))
    return found


# (event, its object, the tenant receiving it): a shared Stripe account sends every tenant's
# endpoint every event, so payments and refunds name billplane's ids only for their own tenant.
_Builder = Callable[[Mapping[str, Any], Mapping[str, Any], int | None], list[ProviderEvent]]
_Convert = Callable[[Mapping[str, Any], int | None], Any]


def _one(type_: EventType, field: str, convert: _Convert) -> _Builder:
    return lambda event, obj, tenant_id: [_event(event, type_, obj, **{field: convert(obj, tenant_id)})]


def _customer(type_: EventType) -> _Builder:
    return lambda event, obj, _tenant_id: [_event(event, type_, obj)]


def _subscription(obj: Mapping[str, Any], _tenant_id: int | None) -> ProviderSubscription:
    return subscriptions.to_provider(obj)


def _invoice(obj: Mapping[str, Any], _tenant_id: int | None) -> ProviderInvoice | None:
    return payments.provider_invoice(obj)


def _payment(obj: Mapping[str, Any], tenant_id: int | None) -> ChargeResult:
    return payments.charge_from_payment_intent(obj, tenant_id=tenant_id)


def _refund(obj: Mapping[str, Any], tenant_id: int | None) -> RefundResult:
    return payments.refund_result(obj, tenant_id=tenant_id)


def _payment_method(obj: Mapping[str, Any], _tenant_id: int | None) -> ProviderPaymentMethod:
    # Brand, last 4 digits and expiry only: never the fingerprint, billing details or wallet.
    return payment_methods.in_event(obj)


_BUILDERS: dict[str, _Builder] = {
    **{kind: _customer(type_) for kind, type_ in _CUSTOMER.items()},
    **{kind: _one(type_, "subscription", _subscription) for kind, type_ in _SUBSCRIPTION.items()},
    **{kind: _one(type_, "invoice", _invoice) for kind, type_ in _INVOICE.items()},
    **{kind: _one(type_, "payment", _payment) for kind, type_ in _PAYMENT.items()},
    **{kind: _one(type_, "payment_method", _payment_method) for kind, type_ in _PAYMENT_METHOD.items()},
    **{kind: _one("refund.updated", "refund", _refund) for kind in _REFUND_OBJECT},
    "charge.refunded": _refunds_of_charge,
}
# The Stripe event types billplane applies (docs/providers/stripe.md lists them).
MAPPED = frozenset(_BUILDERS)


def normalize(event: Mapping[str, Any], *, tenant_id: int | None = None) -> list[ProviderEvent]:
    """billplane's events for one verified Stripe event, as received by ``tenant_id``'s endpoint;
    empty for a type billplane does not apply."""
    builder = _BUILDERS.get(str(event.get("type")))
    if builder is None:
        return []
    obj = event["data"].get("object")
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str) or not isinstance(event.get("id"), str):
        raise WebhookVerificationError("the webhook event has no object id", code="malformed_body")
    try:
        return builder(event, obj, tenant_id)
    except (KeyError, TypeError, ValueError) as error:
        raise WebhookVerificationError(f"the {event['type']} event is malformed", code="malformed_body") from error
