"""PayPal webhook events as billplane's normalized events.

``occurred_at`` is the event's ``create_time``: billplane orders events per object by it and
ignores one older than what it already applied (the watermark), as for Stripe's ``created``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from billplane.plugins import (
    ChargeResult,
    ProviderError,
    ProviderEvent,
    RefundResult,
    WebhookVerificationError,
)
from billplane_paypal import refunds
from billplane_paypal.money import to_minor
from billplane_paypal.subscriptions import from_paypal, parse_time

Json = Mapping[str, Any]

_SUBSCRIPTION_CANCELED = {"BILLING.SUBSCRIPTION.CANCELLED", "BILLING.SUBSCRIPTION.EXPIRED"}
_SUBSCRIPTION_UPDATED = {
    "BILLING.SUBSCRIPTION.ACTIVATED",
    "BILLING.SUBSCRIPTION.SUSPENDED",
    "BILLING.SUBSCRIPTION.UPDATED",
    "BILLING.SUBSCRIPTION.RE-ACTIVATED",
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
}


class _Envelope(msgspec.Struct, frozen=True):
    id: str
    event_type: str
    create_time: str
    resource: dict[str, Any]


def _subscription_event(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    subscription = from_paypal(envelope.resource)
    if envelope.event_type == "BILLING.SUBSCRIPTION.PAYMENT.FAILED" and subscription.status == "active":
        # The cycle went unpaid: PayPal retries and, after the plan's failure threshold, suspends.
        subscription = msgspec.structs.replace(subscription, status="past_due")
    canceled = envelope.event_type in _SUBSCRIPTION_CANCELED
    return ProviderEvent(
        event_id=envelope.id,
        type="subscription.canceled" if canceled else "subscription.updated",
        occurred_at=occurred_at,
        provider_object_id=subscription.provider_id,
        provider_type=envelope.event_type,
        subscription=subscription,
    )


def subscription_after(resource: Json, payment: ProviderEvent) -> ProviderEvent:
    """The subscription as read after ``payment``'s sale, dated by the sale: an event of the
    subscription newer than the sale still wins over it."""
    subscription = from_paypal(resource)
    return ProviderEvent(
        event_id=f"{payment.event_id}:subscription",  # the same for every delivery of the sale
        type="subscription.canceled" if subscription.status == "canceled" else "subscription.updated",
        occurred_at=payment.occurred_at,
        provider_object_id=subscription.provider_id,
        provider_type=payment.provider_type,
        subscription=subscription,
    )


def _v1_amount(resource: Json) -> tuple[int, str]:
    amount = resource["amount"]
    currency = str(amount["currency"]).upper()
    return abs(to_minor(str(amount["total"]), currency)), currency


def _v2_amount(resource: Json) -> tuple[int, str]:
    amount = resource["amount"]
    currency = str(amount["currency_code"]).upper()
    return abs(to_minor(str(amount["value"]), currency)), currency


def _sale_completed(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    sale = envelope.resource
    amount, currency = _v1_amount(sale)
    state = str(sale.get("state", "completed")).lower()
    payment = ChargeResult(
        provider_payment_id=str(sale["id"]),
        status="succeeded" if state == "completed" else "pending",
        amount=amount,
        currency=currency,
        provider_subscription_id=sale.get("billing_agreement_id"),
    )
    return _payment(envelope, occurred_at, payment)


def _sale_denied(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    """SALE.DENIED: a sale PayPal held pending (an eCheck) was refused. A billplane payment still
    pending for it fails now, instead of waiting for reconciliation to ask."""
    sale = envelope.resource
    amount, currency = _v1_amount(sale)
    payment = ChargeResult(
        provider_payment_id=str(sale["id"]),
        status="failed",
        failure_code="denied",
        failure_message="PayPal denied the payment",
        amount=amount,
        currency=currency,
        provider_subscription_id=sale.get("billing_agreement_id"),
    )
    return _payment(envelope, occurred_at, payment)


def _capture_completed(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    capture = envelope.resource
    amount, currency = _v2_amount(capture)
    status = str(capture.get("status", "COMPLETED"))
    payment = ChargeResult(
        provider_payment_id=str(capture["id"]),
        status="succeeded" if status == "COMPLETED" else "pending",
        amount=amount,
        currency=currency,
    )
    return _payment(envelope, occurred_at, payment)


def _payment(envelope: _Envelope, occurred_at: datetime, payment: ChargeResult) -> ProviderEvent:
    return ProviderEvent(
        event_id=envelope.id,
        type="payment.failed" if payment.status == "failed" else "payment.succeeded",
        occurred_at=occurred_at,
        provider_object_id=payment.provider_payment_id,
        provider_type=envelope.event_type,
        payment=payment,
    )


def _sale_refund(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    """SALE.REFUNDED, and SALE.REVERSED: a reversal (a chargeback PayPal decided for the buyer, or
    money PayPal took back) returns the payment's money like a refund the tenant did not start, so
    billplane records it as a refund of that payment."""
    refund = envelope.resource
    amount, currency = _v1_amount(refund)
    sale_id = refund.get("sale_id")
    result = RefundResult(
        provider_refund_id=str(refund["id"]),
        status=refunds.STATUSES.get(str(refund.get("state", "completed")).upper(), "pending"),
        provider_payment_id=str(sale_id) if sale_id else None,
        amount=amount,
        currency=currency,
    )
    return _refund(envelope, occurred_at, result)


def _capture_refund(envelope: _Envelope, occurred_at: datetime) -> ProviderEvent:
    _v2_amount(envelope.resource)  # an event about money without its amount is malformed
    # Which tenant's refund it names is checked in normalize, which knows the tenant.
    return _refund(envelope, occurred_at, refunds.from_v2(envelope.resource, tenant_id=None, missing="COMPLETED"))


def _refund(envelope: _Envelope, occurred_at: datetime, refund: RefundResult) -> ProviderEvent:
    return ProviderEvent(
        event_id=envelope.id,
        type="refund.updated",
        occurred_at=occurred_at,
        provider_object_id=refund.provider_refund_id,
        provider_type=envelope.event_type,
        refund=refund,
    )


_MAPPERS: dict[str, Callable[[_Envelope, datetime], ProviderEvent]] = {
    **dict.fromkeys(_SUBSCRIPTION_CANCELED | _SUBSCRIPTION_UPDATED, _subscription_event),
    "PAYMENT.SALE.COMPLETED": _sale_completed,
    "PAYMENT.SALE.DENIED": _sale_denied,
    "PAYMENT.SALE.REFUNDED": _sale_refund,
    "PAYMENT.SALE.REVERSED": _sale_refund,
    "PAYMENT.CAPTURE.COMPLETED": _capture_completed,
    "PAYMENT.CAPTURE.REFUNDED": _capture_refund,
}
EVENT_TYPES = frozenset(_MAPPERS)
# Not required by the credentials check: a resumed subscription is also told by
# BILLING.SUBSCRIPTION.UPDATED, and a denied sale's payment is failed by reconciliation without its
# event. An event billplane starts to read later goes here too: the check runs again when an
# account's credentials change, and must not refuse a webhook set up by the docs of its day.
OPTIONAL_EVENT_TYPES = frozenset({"BILLING.SUBSCRIPTION.RE-ACTIVATED", "PAYMENT.SALE.DENIED"})


def missing_event_types(webhook: Mapping[str, Any]) -> list[str]:
    """The event types billplane needs that a PayPal webhook (as ``GET`` answers it) is not
    subscribed to, sorted; none when it takes every type (``*``)."""
    listed = webhook.get("event_types")
    names = (
        {str(entry.get("name")) for entry in listed if isinstance(entry, Mapping)}
        if isinstance(listed, list)
        else set()
    )
    return [] if "*" in names else sorted(EVENT_TYPES - OPTIONAL_EVENT_TYPES - names)


def normalize(body: bytes, tenant_id: int | None = None) -> list[ProviderEvent]:
    """The events billplane needs from one verified delivery, for ``tenant_id``'s account; ``[]``
    for kinds it has no use for."""
    try:
        envelope = msgspec.json.decode(body, type=_Envelope)
    except msgspec.ValidationError as exc:
        raise WebhookVerificationError(f"malformed PayPal event: {exc}") from None
    mapper = _MAPPERS.get(envelope.event_type)
    if mapper is None:
        return []
    try:
        occurred_at = parse_time(envelope.create_time)
        if occurred_at is not None:
            return [_of_tenant(mapper(envelope, occurred_at), envelope, tenant_id)]
    except (KeyError, TypeError, ValueError, ProviderError) as exc:
        raise WebhookVerificationError(f"malformed {envelope.event_type} event: {type(exc).__name__}") from None
    raise WebhookVerificationError("malformed PayPal event: create_time has no time zone")


def _of_tenant(event: ProviderEvent, envelope: _Envelope, tenant_id: int | None) -> ProviderEvent:
    """On a PayPal account two tenants share, another tenant's refund names no refund of this one."""
    if event.refund is None or event.refund.billplane_refund_id is None or tenant_id is None:
        return event
    named = refunds.billplane_refund_id(envelope.resource, tenant_id)
    return msgspec.structs.replace(event, refund=msgspec.structs.replace(event.refund, billplane_refund_id=named))
