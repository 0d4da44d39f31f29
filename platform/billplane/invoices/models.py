"""Invoice and InvoiceLine rows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin

INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
_ADDED_BY_0004 = 20  # appended by tenant_0004: provisioned tables keep the migrated column order
_ADDED_BY_0005 = 30
BILLING_REASONS = ("subscription_create", "subscription_cycle", "subscription_update", "manual")


class Invoice(IdMixin, TimestampsMixin, MetadataMixin, TenantBase):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(f"status IN {INVOICE_STATUSES!r}", name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= total", name="amount_paid"),
        # Invoices a provider issued (a subscription it bills) are mirrored here once each.
        UniqueConstraint("provider_account_id", "provider_invoice_id"),
        CheckConstraint(f"billing_reason IN {BILLING_REASONS!r}", name="billing_reason"),
        # Each period of a subscription is billed once, by a unique constraint, not by hope.
        Index(
            "uq_invoices_subscription_cycle",
            "subscription_id",
            "period_start",
            unique=True,
            postgresql_where=text("billing_reason = 'subscription_cycle'"),
        ),
        Index("ix_invoices_payment_due", "next_payment_attempt_at", postgresql_where=text("status = 'open'")),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("subscriptions.id"), index=True)
    # Gapless per-tenant number, assigned when the invoice is finalized.
    number: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default="draft")
    currency: Mapped[str] = mapped_column(Text)
    subtotal: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    amount_paid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provider: Mapped[str | None] = mapped_column(Text, sort_order=_ADDED_BY_0004)
    provider_account_id: Mapped[int | None] = mapped_column(BigInteger, sort_order=_ADDED_BY_0004)
    provider_invoice_id: Mapped[str | None] = mapped_column(Text, sort_order=_ADDED_BY_0004)
    # Watermark, as on mirrored objects: the newest provider event applied to this invoice.
    provider_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0004)
    billing_reason: Mapped[str] = mapped_column(Text, server_default="manual", sort_order=_ADDED_BY_0005)
    # Payment attempts so far and when dunning tries again (None: no retry scheduled).
    attempt_count: Mapped[int] = mapped_column(Integer, server_default="0", sort_order=_ADDED_BY_0005)
    next_payment_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0005)

    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.id", lazy="selectin")

    @property
    def amount_due(self) -> int:
        return self.total - self.amount_paid


class InvoiceLine(IdMixin, TenantBase):
    """One amount on an invoice, with what explains it: quantity, tier, unit price and period."""

    __tablename__ = "invoice_lines"
    __table_args__ = (CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),)

    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    # Indexed: deleting a plan checks for lines that name it.
    plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plans.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_amount: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    tier: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    proration: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
