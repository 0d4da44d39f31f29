"""The sandbox's webhook body (one event per message) and its translation to billplane's ``ProviderEvent``.

The ``data`` object names its kind in ``object``; its kind must match the event's type, and every
status must be one billplane knows (and a payment method's customer null in
``payment_method.detached`` only): a body that does not fit is refused whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from billplane.plugins import (
    ChargeResult,
    ProviderEvent,
    ProviderPaymentMethod,
    ProviderSubscription,
    RefundResult,
    WebhookVerificationError,
)
from billplane.plugins.contract import ChargeStatus, EventType, RefundStatus, SubscriptionStatus


class _Object(msgspec.Struct, frozen=True, kw_only=True, tag_field="object"):
    id: str


class SubscriptionObject(_Object, frozen=True, kw_only=True, tag="subscription"):
    status: SubscriptionStatus
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None


class PaymentObject(_Object, frozen=True, kw_only=True, tag="payment"):
    status: ChargeStatus
    failure_code: str | None = None
    failure_message: str | None = None


class RefundObject(_Object, frozen=True, kw_only=True, tag="refund"):
    status: RefundStatus
    failure_message: str | None = None


class CustomerObject(_Object, frozen=True, kw_only=True, tag="customer"):
    pass


class PaymentMethodObject(_Object, frozen=True, kw_only=True, tag="payment_method"):
    """What identifies a method to a person, never anything that could pay with it; ``customer``
    is the one it is attached to, None in ``payment_method.detached`` only."""

    customer: str | None
    type: str = "card"
    brand: str | None = None
    last4: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}$")] | None = None
    exp_month: Annotated[int, msgspec.Meta(ge=1, le=12)] | None = None
    exp_year: Annotated[int, msgspec.Meta(ge=2000, le=9999)] | None = None


EventObject = SubscriptionObject | PaymentObject | RefundObject | CustomerObject | PaymentMethodObject


class SandboxEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: EventType
    created: Annotated[datetime, msgspec.Meta(tz=True)]  # events are ordered by it: no naive times
    data: EventObject


def encode(event: SandboxEvent) -> bytes:
    return msgspec.json.encode(event)


def decode(body: bytes) -> SandboxEvent:
    try:
        event = msgspec.json.decode(body, type=SandboxEvent)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise WebhookVerificationError(f"malformed webhook body: {exc}") from None
    kind = event.data.__struct_config__.tag  # "subscription" for a SubscriptionObject
    if kind != event.type.partition(".")[0]:
        raise WebhookVerificationError(f"malformed webhook body: a {event.type} event cannot carry a {kind}")
    if isinstance(event.data, PaymentMethodObject):
        _check_customer(event.type, event.data)
    return event


def _check_customer(type_: EventType, method: PaymentMethodObject) -> None:
    """A detached method is of no customer; an attached or updated one names its customer."""
    detached = type_ == "payment_method.detached"
    if detached and method.customer is not None:
        raise WebhookVerificationError(f"malformed webhook body: a {type_} event's customer must be null")
    if not detached and method.customer is None:
        raise WebhookVerificationError(f"malformed webhook body: a {type_} event must name the customer")


def normalize(event: SandboxEvent) -> ProviderEvent:
    data = event.data
    subscription, payment, refund, method = None, None, None, None
    match data:
        case SubscriptionObject():
            subscription = ProviderSubscription(
                provider_id=data.id,
                status=data.status,
                current_period_start=data.current_period_start,
                current_period_end=data.current_period_end,
                cancel_at_period_end=data.cancel_at_period_end,
                canceled_at=data.canceled_at,
            )
        case PaymentObject():
            payment = ChargeResult(
                provider_payment_id=data.id,
                status=data.status,
                failure_code=data.failure_code,
                failure_message=data.failure_message,
            )
        case RefundObject():
            refund = RefundResult(provider_refund_id=data.id, status=data.status, failure_message=data.failure_message)
        case PaymentMethodObject():
            method = ProviderPaymentMethod(
                provider_payment_method_id=data.id,
                type=data.type,
                brand=data.brand,
                last4=data.last4,
                exp_month=data.exp_month,
                exp_year=data.exp_year,
                provider_customer_id=data.customer,
            )
    return ProviderEvent(
        event_id=event.id,
        type=event.type,
        occurred_at=event.created,
        provider_object_id=data.id,
        subscription=subscription,
        payment=payment,
        refund=refund,
        payment_method=method,
    )
