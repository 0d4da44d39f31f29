"""Build signed sandbox webhooks, to drive billplane's inbound path from tests and demos.

    event = events.subscription_updated("sbx_sub_...", "past_due")
    webhook = events.sign(event, account_webhook_secret)
    client.post(f"/v1/webhooks/sandbox/{account_id}", content=webhook.body, headers=webhook.headers)

Each builder takes an optional ``event_id`` (default: a new random id; reuse one to test
deduplication) and ``occurred_at`` (default: now; an older one tests stale-event handling).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from billplane.plugins.contract import RefundStatus, SubscriptionStatus
from billplane_sandbox.signing import sign_headers
from billplane_sandbox.wire import (
    CustomerObject,
    PaymentMethodObject,
    PaymentObject,
    RefundObject,
    SandboxEvent,
    SubscriptionObject,
    encode,
)


class SignedWebhook(NamedTuple):
    """Headers and raw body exactly as the sandbox would POST them."""

    headers: dict[str, str]
    body: bytes


def sign(event: SandboxEvent, secret: str, *, timestamp: datetime | None = None) -> SignedWebhook:
    """Sign ``event`` with an account's webhook secret; ``timestamp`` defaults to now."""
    body = encode(event)
    return SignedWebhook(sign_headers(secret, event.id, body, timestamp=timestamp), body)


def _event_id(event_id: str | None) -> str:
    return event_id or f"evt_{secrets.token_hex(12)}"


def _when(occurred_at: datetime | None) -> datetime:
    return occurred_at or datetime.now(UTC)


def subscription_updated(
    subscription_id: str,
    status: SubscriptionStatus,
    *,
    current_period_start: datetime | None = None,
    current_period_end: datetime | None = None,
    cancel_at_period_end: bool = False,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    """For example: subscription X is now ``past_due``."""
    data = SubscriptionObject(
        id=subscription_id,
        status=status,
        current_period_start=current_period_start,
        current_period_end=current_period_end,
        cancel_at_period_end=cancel_at_period_end,
    )
    return SandboxEvent(id=_event_id(event_id), type="subscription.updated", created=_when(occurred_at), data=data)


def subscription_canceled(
    subscription_id: str, *, event_id: str | None = None, occurred_at: datetime | None = None
) -> SandboxEvent:
    when = _when(occurred_at)
    data = SubscriptionObject(id=subscription_id, status="canceled", canceled_at=when)
    return SandboxEvent(id=_event_id(event_id), type="subscription.canceled", created=when, data=data)


def payment_succeeded(
    payment_id: str, *, event_id: str | None = None, occurred_at: datetime | None = None
) -> SandboxEvent:
    data = PaymentObject(id=payment_id, status="succeeded")
    return SandboxEvent(id=_event_id(event_id), type="payment.succeeded", created=_when(occurred_at), data=data)


def payment_failed(
    payment_id: str,
    *,
    failure_code: str = "card_declined",
    failure_message: str | None = "The card was declined.",
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    data = PaymentObject(id=payment_id, status="failed", failure_code=failure_code, failure_message=failure_message)
    return SandboxEvent(id=_event_id(event_id), type="payment.failed", created=_when(occurred_at), data=data)


def refund_updated(
    refund_id: str,
    status: RefundStatus,
    *,
    failure_message: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    data = RefundObject(id=refund_id, status=status, failure_message=failure_message)
    return SandboxEvent(id=_event_id(event_id), type="refund.updated", created=_when(occurred_at), data=data)


def customer_updated(
    customer_id: str, *, event_id: str | None = None, occurred_at: datetime | None = None
) -> SandboxEvent:
    data = CustomerObject(id=customer_id)
    return SandboxEvent(id=_event_id(event_id), type="customer.updated", created=_when(occurred_at), data=data)


def customer_deleted(
    customer_id: str, *, event_id: str | None = None, occurred_at: datetime | None = None
) -> SandboxEvent:
    data = CustomerObject(id=customer_id)
    return SandboxEvent(id=_event_id(event_id), type="customer.deleted", created=_when(occurred_at), data=data)


class CardDetails(NamedTuple):
    """What a payment method event tells of a card: the brand ``attach_payment_method`` answers by
    default; set the rest to show a changed expiry, say."""

    brand: str | None = "sandbox"
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


def _payment_method(
    type_: Literal["payment_method.attached", "payment_method.updated", "payment_method.detached"],
    method_id: str,
    customer_id: str | None,
    *,
    card: CardDetails | None,
    event_id: str | None,
    occurred_at: datetime | None,
) -> SandboxEvent:
    details = card or CardDetails()
    data = PaymentMethodObject(
        id=method_id,
        customer=customer_id,
        brand=details.brand,
        last4=details.last4,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
    )
    return SandboxEvent(id=_event_id(event_id), type=type_, created=_when(occurred_at), data=data)


def payment_method_attached(
    method_id: str,
    customer_id: str,
    *,
    card: CardDetails | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    """For example: method X was attached to customer Y at the provider itself, not through billplane."""
    return _payment_method(
        "payment_method.attached", method_id, customer_id, card=card, event_id=event_id, occurred_at=occurred_at
    )


def payment_method_updated(
    method_id: str,
    customer_id: str,
    *,
    card: CardDetails | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    """For example: method X of customer Y now expires in 12/2031 (``card=CardDetails(exp_month=12, ...)``)."""
    return _payment_method(
        "payment_method.updated", method_id, customer_id, card=card, event_id=event_id, occurred_at=occurred_at
    )


def payment_method_detached(
    method_id: str,
    *,
    card: CardDetails | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> SandboxEvent:
    """Method X was detached at the provider: of no customer now, as a provider sends it."""
    return _payment_method(
        "payment_method.detached", method_id, None, card=card, event_id=event_id, occurred_at=occurred_at
    )
