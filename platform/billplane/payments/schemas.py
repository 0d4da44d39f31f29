"""API shapes for payments and refunds.

Amounts are integer minor units of `currency`; no float is involved anywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from billplane.api.types import ShortText, example_body
from billplane.catalog.schemas import RowId
from billplane.payments.models import Payment as PaymentRow
from billplane.payments.models import Refund as RefundRow


class Refund(msgspec.Struct, kw_only=True):
    id: int
    payment_id: int
    amount: int
    currency: str
    # One of REFUND_STATUSES: pending, succeeded, failed.
    status: str
    reason: str | None
    provider_refund_id: str | None
    # Why a failed refund failed: the provider's message, or failure_code resolved_by_tenant.
    failure_code: str | None
    failure_message: str | None
    # Set when the refund waits for the tenant: billplane could not confirm it, or nothing settled
    # it in time. Settle it with POST /v1/refunds/{id}/resolve after checking at the provider.
    action_required: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RefundRow) -> Refund:
        return cls(
            id=row.id,
            payment_id=row.payment_id,
            amount=row.amount,
            currency=row.currency,
            status=row.status,
            reason=row.reason,
            provider_refund_id=row.provider_refund_id,
            failure_code=row.failure_code,
            failure_message=row.failure_message,
            action_required=row.action_required,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class Payment(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    invoice_id: int | None
    amount: int
    currency: str
    # One of PAYMENT_STATUSES: pending, succeeded, failed, canceled.
    status: str
    # The provider that moved the money and its id for this payment there.
    provider: str | None
    provider_payment_id: str | None
    failure_code: str | None
    failure_message: str | None
    # How much of `amount` has been refunded; never more than `amount`.
    refunded_amount: int
    # Set while a pending payment waits for the tenant: its charge could not be confirmed and its
    # provider cannot be asked about it (see docs/concepts/payment-reconciliation.md).
    action_required: str | None
    refunds: list[Refund]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PaymentRow) -> Payment:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            amount=row.amount,
            currency=row.currency,
            status=row.status,
            provider=row.provider,
            provider_payment_id=row.provider_payment_id,
            failure_code=row.failure_code,
            failure_message=row.failure_message,
            refunded_amount=row.refunded_amount,
            action_required=row.action_required,
            refunds=[Refund.of(refund) for refund in row.refunds],
            metadata=row.metadata_,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


RefundAmount = Annotated[int, msgspec.Meta(ge=1, le=999_999_999_999, description="Integer minor units.")]


class RefundCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Refund a succeeded payment: all that is left of it (default) or `amount` of it."""

    payment_id: RowId
    amount: RefundAmount | None = None
    reason: ShortText | None = None


RefundCreateBody = Annotated[
    RefundCreate,
    example_body("Refund part of a payment", {"payment_id": 1, "amount": 500, "reason": "requested_by_customer"}),
]


class PaymentResolve(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the tenant found at the provider about a charge billplane could not confirm."""

    # succeeded: the provider took the money (name the charge there); failed: it has no such charge.
    # Required: checked once the payment is found, so that another tenant's payment id answers 404
    # whatever the body, exactly as an id that never existed.
    outcome: Literal["succeeded", "failed"] | None = None
    provider_payment_id: ShortText | None = None


PaymentResolveBody = Annotated[
    PaymentResolve,
    example_body("The provider has no such charge", {"outcome": "failed"}),
]


class RefundResolve(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the tenant found at the provider about a refund billplane shows as waiting for them."""

    # succeeded: the provider refunded (name the refund there, if billplane has no id for it);
    # failed: it has no such refund, or it failed. Checked once the refund is found (404 first).
    outcome: Literal["succeeded", "failed"] | None = None
    provider_refund_id: ShortText | None = None


RefundResolveBody = Annotated[
    RefundResolve,
    example_body("The provider refunded", {"outcome": "succeeded", "provider_refund_id": "re_1N4"}),
]
