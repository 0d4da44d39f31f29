"""The sandbox's webhook body (one event per message) and its translation to billplane's ``ProviderEvent``.

The ``data`` object names its kind in ``object``; its kind must match the event's type, and every
status must be one billplane knows: a body that does not fit is refused whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from billplane.plugins import ChargeResult, ProviderEvent, ProviderSubscription, RefundResult, WebhookVerificationError
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


EventObject = SubscriptionObject | PaymentObject | RefundObject | CustomerObject


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
    return event


def normalize(event: SandboxEvent) -> ProviderEvent:
    data = event.data
    subscription, payment, refund = None, None, None
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
    return ProviderEvent(
        event_id=event.id,
        type=event.type,
        occurred_at=event.created,
        provider_object_id=data.id,
        subscription=subscription,
        payment=payment,
        refund=refund,
    )
