"""Payment, Refund and PaymentMethod rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin

_ADDED_BY_0013 = 10  # appended by tenant_0013: provisioned tables keep the migrated column order

PAYMENT_STATUSES = ("pending", "succeeded", "failed", "canceled")
REFUND_STATUSES = ("pending", "succeeded", "failed")
# failure_code of a payment or refund the tenant settled failed by hand (/resolve): their word, not the provider's.
RESOLVED_BY_TENANT = "resolved_by_tenant"
# failure_code of a payment or refund billplane settled failed because the provider, asked after its
# request gave up, had no such charge or refund (or could not be reached at all, for a charge).
PROVIDER_UNREACHABLE = "provider_unreachable"
# A refund failed on these is failed on billplane's side (the tenant's word, or "the provider had no
# such refund"), not the provider's: the provider's later word about it overrules them.
WITHOUT_PROVIDERS_WORD = (RESOLVED_BY_TENANT, PROVIDER_UNREACHABLE)
# failure_code of a payment or refund recorded twice (another one records the same provider charge or
# refund, from its webhook), which gave way to the other.
DUPLICATE_CODE = "duplicate"


class Payment(IdMixin, TimestampsMixin, MetadataMixin, TenantBase):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN {PAYMENT_STATUSES!r}", name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        CheckConstraint("amount >= 0", name="amount"),
        # Never refund more than was paid: enforced by the database, not only by the service.
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refunded_amount"),
        UniqueConstraint("provider_account_id", "provider_payment_id"),
        # What the reconciliation job scans: charges never confirmed, so its cost follows them, not history.
        Index(
            "ix_payments_unconfirmed", "id", postgresql_where=text("status = 'pending' AND provider_payment_id IS NULL")
        ),
        # Charges the provider holds as pending: what the reconciliation job asks about when no webhook settles them.
        Index(
            "ix_payments_pending_at_provider",
            "id",
            postgresql_where=text("status = 'pending' AND provider_payment_id IS NOT NULL"),
        ),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("invoices.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    provider_account_id: Mapped[int | None] = mapped_column(BigInteger)
    provider_payment_id: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(Text)
    failure_message: Mapped[str | None] = mapped_column(Text)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Why the payment waits for the tenant (its charge could not be confirmed and the provider
    # cannot be asked); cleared when it settles. billplane.payments.reconcile sets it. Added by
    # tenant_0006 as the table's last column: sort_order keeps create_all's order the same.
    action_required: Mapped[str | None] = mapped_column(Text, sort_order=100)
    # When billplane last asked the provider about this payment's charge, pending there or never
    # confirmed (tenant_0009): a pending one is asked at most every
    # BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES, and the reconciliation job takes the least recently
    # asked first. billplane.payments.pending_charges, billplane.payments.reconcile_run.
    provider_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=101)

    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id", lazy="selectin")


class Refund(IdMixin, TimestampsMixin, TenantBase):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint(f"status IN {REFUND_STATUSES!r}", name="status"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        # What the reconciliation job scans for refunds nothing settled (tenant_0010): few, whatever the history.
        Index("ix_refunds_pending", "id", postgresql_where=text("status = 'pending'")),
        # One row per provider refund, so that nothing records the same money twice. The worker and
        # /resolve look for another row first (a duplicate answer fails its refund as "duplicate");
        # a webhook that loses a race fails, and its event is applied again by the sweep.
        Index(
            "uq_refunds_provider_refund_id",
            "provider_refund_id",
            unique=True,
            postgresql_where=text("provider_refund_id IS NOT NULL"),
        ),
    )

    payment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payments.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    provider_refund_id: Mapped[str | None] = mapped_column(Text)
    # As on payments (tenant_0010, the table's last columns, hence sort_order): why the refund
    # waits for the tenant, cleared when it settles, and when billplane last asked the provider
    # about it. billplane.payments.pending_refunds.
    action_required: Mapped[str | None] = mapped_column(Text, sort_order=100)
    provider_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=101)
    # Why a refund failed: the provider's message, or resolved_by_tenant (the tenant's word, which
    # the provider's later word overrules: billplane.payments.refund_settlement), or duplicate.
    failure_code: Mapped[str | None] = mapped_column(Text, sort_order=102)
    failure_message: Mapped[str | None] = mapped_column(Text, sort_order=103)


class PaymentMethod(IdMixin, TimestampsMixin, TenantBase):
    """A provider's token for a card or account. Never a card number: only brand, last 4, expiry."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint("last4 IS NULL OR last4 ~ '^[0-9]{4}$'", name="last4"),
        CheckConstraint("exp_month IS NULL OR exp_month BETWEEN 1 AND 12", name="exp_month"),
        UniqueConstraint("provider_account_id", "provider_payment_method_id", name="uq_payment_methods_provider_token"),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[int] = mapped_column(BigInteger)
    provider_payment_method_id: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text, server_default="card")
    brand: Mapped[str | None] = mapped_column(Text)
    last4: Mapped[str | None] = mapped_column(Text)
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")
    detached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The newest provider event applied to it, or billplane's own attach or detach at the provider:
    # an older event, delivered late, is stale (``billplane.webhooks.method_events``).
    provider_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0013)
