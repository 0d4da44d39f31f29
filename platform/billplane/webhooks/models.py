"""Provider events as received: the raw body and the adapter's normalized reading of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase

# received: stored, not applied yet; applied: changed local state; ignored: nothing to change
# (stale, unknown object, a type billplane does not act on, refused by the database, waited too
# long), with the reason in `detail`. Only an ignored event may be set back to received, on request
# (``billplane.webhooks.service.reapply``).
EVENT_STATUSES = ("received", "applied", "ignored")


class StoredEvent(TenantBase):
    __tablename__ = "provider_events"
    __table_args__ = (
        CheckConstraint(f"status IN {EVENT_STATUSES!r}", name="status"),
        # Providers deliver at least once: one row per (account, event id), duplicates are dropped.
        UniqueConstraint("provider_account_id", "event_id"),
        Index("ix_provider_events_received", "received_at", postgresql_where=text("status = 'received'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    provider_object_id: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The delivery exactly as received (signature checks and audits need the bytes, not a re-encoding).
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    # The adapter's normalized event: applying never re-verifies a signature whose timestamp has aged.
    event: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, server_default="received")
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When it was last set back from ignored to received (tenant_0015): its wait (``WAIT_LIMIT``)
    # counts from then. received_at stays when it arrived.
    reapplied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
