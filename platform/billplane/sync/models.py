"""The outbox: provider work committed in the same transaction as the local change that needs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase

OUTBOX_STATUSES = ("pending", "done", "failed")
OUTBOX_KINDS = (
    "customer.ensure",
    "customer.update",
    "customer.delete",
    "subscription.create",
    "subscription.cancel",
    "subscription.undo_cancel",
    "subscription.update",
    "subscription.update_unprorated",
    "subscription.metadata",
    "subscription.pause",
    "subscription.resume",
    "usage.report",
    "payment.charge",
    "refund.create",
    "product.update",
    "plan.update",
)


class OutboxEntry(TenantBase):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"status IN {OUTBOX_STATUSES!r}", name="status"),
        CheckConstraint("kind ~ '^[a-z_]+\\.[a-z_]+$'", name="kind"),
        # What the sweep scans: due work only, so its cost follows the backlog, not the history.
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index(None, "object_id", "provider_account_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # "<object type>.<action>", one of OUTBOX_KINDS; the object type names the table of object_id.
    kind: Mapped[str] = mapped_column(Text)
    object_id: Mapped[int] = mapped_column(BigInteger)
    # Provider accounts live in the control schema: a plain integer, no foreign key (Citus).
    provider_account_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # When the row may next be attempted. A worker that claims a row moves it forward by a lease,
    # so a worker that dies mid-call leaves the row to be retried once the lease ends.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Provider calls made for the row. A charge's or a refund's are counted before each call is
    # made (``payment.charge``, ``refund.create``): a worker that dies mid-call leaves its trace
    # here, as no failure is counted in ``attempts``. Another row that ``Attempt.finish``
    # marks done after calling its provider shows at least 1; one done without a call, 0: for a
    # subscription's change, one the provider never heard of (``EventRepository.change_sent``).
    # tenant_0008 as the table's last column: sort_order keeps create_all's order the same.
    calls: Mapped[int] = mapped_column(Integer, server_default="0", sort_order=100)
    # What the row's first attempt sent, by step ("customer", "product <id>", "price <plan id>",
    # "subscription"), for its retries to send the same (``Attempt.pinned``). tenant_0017, after
    # ``calls``.
    sent: Mapped[dict[str, Any] | None] = mapped_column(JSONB, sort_order=101)

    @property
    def object_type(self) -> str:
        return self.kind.partition(".")[0]


class ProviderPlan(TenantBase):
    """A plan's product and price at one provider account, created on first need by subscription sync."""

    __tablename__ = "provider_plans"
    __table_args__ = (UniqueConstraint("plan_id", "provider_account_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id"))
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[int] = mapped_column(BigInteger)
    provider_product_id: Mapped[str] = mapped_column(Text)
    provider_price_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
