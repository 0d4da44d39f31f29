"""Event, WebhookEndpoint and WebhookDelivery rows (tenant_0005)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin
from billplane.db.xid8 import Xid8

ENDPOINT_STATUSES = ("enabled", "disabled")
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class Event(IdMixin, TenantBase):
    """One state change, written in the same transaction as the change itself (``emit``)."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("type ~ '^[a-z_]+(\\.[a-z_]+)+$'", name="type"),
        # Per-object history in order: deliveries are ordered per object by event id.
        Index(None, "object_type", "object_id", "id"),
        # The list's order (billplane.events.repository): by writing transaction, then id.
        Index(None, "tx", "id"),
    )

    # "<object>.<change>": customer.created, subscription.updated, invoice.paid, ...
    type: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str] = mapped_column(Text)
    object_id: Mapped[int] = mapped_column(BigInteger)
    # The object as the API shows it, at the time of the change.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The id of the transaction that wrote the event (tenant_0011; 0 for events written before).
    # Ids are taken at insert, so a transaction can commit an event with a lower id after a
    # reader saw a higher one; transaction ids let the list show an event only once every
    # transaction that could still add one before it has ended. Last column: sort_order keeps
    # create_all's order the same as the migration's.
    tx: Mapped[int] = mapped_column(Xid8, server_default=text("pg_current_xact_id()"), sort_order=100)


class WebhookEndpoint(IdMixin, TimestampsMixin, MetadataMixin, TenantBase):
    """A tenant's URL that receives its events, signed with the Standard Webhooks scheme."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(f"status IN {ENDPOINT_STATUSES!r}", name="status"),
        CheckConstraint("consecutive_failures >= 0", name="consecutive_failures"),
    )

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # Event types delivered; empty: every type.
    enabled_events: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    # The signing secret, sealed (billplane.secrets) under secret_key_id; shown once, at creation.
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="enabled")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")


class WebhookDelivery(IdMixin, TenantBase):
    """One event to one endpoint; retried with backoff until it succeeds or gives up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index(None, "endpoint_id", "event_id"),
    )

    endpoint_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.id"))
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
