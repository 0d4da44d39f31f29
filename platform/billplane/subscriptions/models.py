"""Subscription and UsageRecord rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin
from billplane.sync.columns import SyncStateMixin

_ADDED_BY_0004 = 20  # after tenant_0003's sync columns, as the migration appends them
_ADDED_BY_0005 = 30
_ADDED_BY_0012 = 40  # after the sync and timestamp columns
_ADDED_BY_0014 = 50

# incomplete_expired: left incomplete (an approval that never came) past the expiry window.
SUBSCRIPTION_STATUSES = (
    "trialing",
    "active",
    "past_due",
    "paused",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
)
# A customer with a subscription in one of these states cannot be deleted.
LIVE_STATUSES = ("trialing", "active", "past_due", "paused", "unpaid", "incomplete")
ENDED_STATUSES = ("canceled", "incomplete_expired")


class Subscription(IdMixin, TimestampsMixin, MetadataMixin, SyncStateMixin, TenantBase):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(f"status IN {SUBSCRIPTION_STATUSES!r}", name="status"),
        CheckConstraint("quantity >= 1", name="quantity"),
        # Inbound provider events name the subscription by its provider id.
        Index(None, "provider_account_id", "provider_subscription_id"),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id"), index=True)
    provider: Mapped[str | None] = mapped_column(Text)
    provider_account_id: Mapped[int | None] = mapped_column(BigInteger)
    provider_subscription_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer, server_default="1")
    current_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, server_default="false")
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trial_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the customer must do before it starts (redirect to PayPal's approval page), while incomplete.
    next_action_type: Mapped[str | None] = mapped_column(Text, sort_order=_ADDED_BY_0004)
    next_action_url: Mapped[str | None] = mapped_column(Text, sort_order=_ADDED_BY_0004)
    # The payment method invoices are charged to (None: the customer's default one).
    payment_method_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("payment_methods.id"), sort_order=_ADDED_BY_0005
    )
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0005)
    # A pause with an end: the billing run resumes it then.
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0005)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0005)
    # A change chosen to take effect at the period's end (proration at_period_end).
    pending_plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plans.id"), sort_order=_ADDED_BY_0005)
    pending_quantity: Mapped[int | None] = mapped_column(Integer, sort_order=_ADDED_BY_0005)
    # What the current period was billed at, when a change without proration left the plan or the
    # quantity different: a later proration credits the unused time of what was paid. Stale (read
    # as the plan and quantity themselves) once billed_period_start is not the period's start.
    billed_plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plans.id"), sort_order=_ADDED_BY_0012)
    billed_quantity: Mapped[int | None] = mapped_column(Integer, sort_order=_ADDED_BY_0012)
    billed_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0012)
    # When a change last applied a plan or quantity at once: a proration_date may not go back past it.
    plan_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0012)
    # Where the billing cycle started (the first paid period's start): a monthly period that ended
    # on a shorter month's last day returns to its day (Jan 31, Feb 28, Mar 31). None: older rows,
    # whose periods count from the previous boundary, as they did.
    billing_cycle_anchor: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0012)
    # When a change made at once moved it from a plan that does not meter to a metered one: the time
    # before was the old plan's (paid in advance, its unused rest credited), so the period's usage
    # counts from here. Not plan_changed_at: a later change of quantity, or to another metered plan,
    # moves that, and the usage before such a change is still billed. Stale (the period's start
    # counts) once the period starts after it.
    metered_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), sort_order=_ADDED_BY_0014)


class UsageRecord(IdMixin, TenantBase):
    __tablename__ = "usage_records"
    __table_args__ = (
        # A retried report of the same event is recognised, never counted twice.
        Index("uq_usage_records_subscription_id_client_event_id", "subscription_id", "client_event_id", unique=True),
        Index(None, "subscription_id", "timestamp"),
        CheckConstraint("quantity >= 0", name="quantity"),
    )

    subscription_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("subscriptions.id"))
    quantity: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    client_event_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
