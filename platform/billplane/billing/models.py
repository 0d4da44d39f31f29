"""Per-tenant billing rows (tenant_0005): the invoice number counter, settings and test clocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Integer, SmallInteger, Text, text
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
