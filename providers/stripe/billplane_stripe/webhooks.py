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

from billplane.plugins import EventType, ProviderEvent, WebhookVerificationError
from billplane_stripe import payments, subscriptions

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
}
_PAYMENT: dict[str, EventType] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
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


def _event(event: Mapping[str, Any], type_: EventType, obj: Mapping[str, Any], **payload: Any) -> ProviderEvent:
    return ProviderEvent(
        event_id=str(event["id"]),
        type=type_,
        occurred_at=_occurred_at(event),
        provider_object_id=str(obj["id"]),
        provider_type=str(event["type"]),
        **payload,
    )


def _refunds_of_charge(event: Mapping[str, Any], charge: Mapping[str, Any]) -> list[ProviderEvent]:
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    found: list[ProviderEvent] = []
    for refund in data if isinstance(data, list) else []:
        if isinstance(refund, Mapping) and refund.get("id"):
            result = payments.refund_result(refund)
            found.append(_event(event, "refund.updated", refund, refund=result))
    return found


_Builder = Callable[[Mapping[str, Any], Mapping[str, Any]], list[ProviderEvent]]


def _one(type_: EventType, field: str, convert: Callable[[Mapping[str, Any]], object]) -> _Builder:
    return lambda event, obj: [_event(event, type_, obj, **{field: convert(obj)})]


def _customer(type_: EventType) -> _Builder:
    return lambda event, obj: [_event(event, type_, obj)]


_BUILDERS: dict[str, _Builder] = {
    **{kind: _customer(type_) for kind, type_ in _CUSTOMER.items()},
    **{kind: _one(type_, "subscription", subscriptions.to_provider) for kind, type_ in _SUBSCRIPTION.items()},
    **{kind: _one(type_, "invoice", payments.provider_invoice) for kind, type_ in _INVOICE.items()},
    **{kind: _one(type_, "payment", payments.charge_from_payment_intent) for kind, type_ in _PAYMENT.items()},
    **{kind: _one("refund.updated", "refund", payments.refund_result) for kind in _REFUND_OBJECT},
    "charge.refunded": _refunds_of_charge,
}
# The Stripe event types billplane applies (docs/providers/stripe.md lists them).
MAPPED = frozenset(_BUILDERS)


def normalize(event: Mapping[str, Any]) -> list[ProviderEvent]:
    """billplane's events for one verified Stripe event; empty for a type billplane does not apply."""
    builder = _BUILDERS.get(str(event.get("type")))
    if builder is None:
        return []
    obj = event["data"].get("object")
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str) or not isinstance(event.get("id"), str):
        raise WebhookVerificationError("the webhook event has no object id", code="malformed_body")
    try:
        return builder(event, obj)
    except (KeyError, TypeError, ValueError) as error:
        raise WebhookVerificationError(f"the {event['type']} event is malformed", code="malformed_body") from error
