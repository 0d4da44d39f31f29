"""Per-tenant billing rows (tenant_0005): the invoice number counter, settings and test clocks."""

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
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, TimestampsMixin

DUNNING_FINAL_ACTIONS = ("cancel", "mark_unpaid")
TEST_CLOCK_STATUSES = ("ready", "advancing")


class InvoiceCounter(TenantBase):
    """The tenant's one counter row: invoice numbers are gapless because the number is taken by
    updating this row in the transaction that finalizes the invoice (a sequence would leave gaps)."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    last_number: Mapped[int] = mapped_column(BigInteger, server_default="0")


class BillingSettings(TenantBase):
    """The tenant's one settings row (absent: the defaults)."""

    __tablename__ = "billing_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(f"dunning_final_action IN {DUNNING_FINAL_ACTIONS!r}", name="dunning_final_action"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    # Days after the first failed attempt on which payment is retried (default 3, 5, 7).
    dunning_retry_days: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default=text("'{3,5,7}'::integer[]"))
    # After the last retry fails: cancel the subscription, or mark it unpaid (kept, not billed).
    dunning_final_action: Mapped[str] = mapped_column(Text, server_default="cancel")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class TestClock(IdMixin, TimestampsMixin, TenantBase):
    """A simulated "now" for test-mode customers attached to it; advancing it runs what would have
    happened in between (billing runs, trial ends, dunning, webhooks) for those customers only."""

    __tablename__ = "test_clocks"
    __table_args__ = (CheckConstraint(f"status IN {TEST_CLOCK_STATUSES!r}", name="status"),)

    name: Mapped[str | None] = mapped_column(Text)
    frozen_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, server_default="ready")


class InvoiceItem(IdMixin, TenantBase):
    """A charge or credit waiting for the customer's next invoice (prorations of a change).

    ``invoice_id`` is set when an invoice takes it; until then it is pending. Credits are negative.
    A credit still pending when its subscription ends is the customer's (``subscription_id`` NULL,
    ``billing.customer_credit``): the customer's next invoice in its currency takes it.
    """

    __tablename__ = "invoice_items"
    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        Index("ix_invoice_items_pending", "subscription_id", postgresql_where=text("invoice_id IS NULL")),
        # Almost always empty: the billing run probes it for every subscription it locks.
        Index(
            "ix_invoice_items_customer_credit",
            "customer_id",
            postgresql_where=text("subscription_id IS NULL AND invoice_id IS NULL"),
        ),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("subscriptions.id"))
    invoice_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("invoices.id"))
    plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plans.id"))
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_amount: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    proration: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
