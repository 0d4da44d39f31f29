"""Sync state columns shared by every object billplane mirrors to a provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

# none: nothing to mirror; pending: outbox work queued or retrying; synced: the provider has the
# latest local state; failed: a permanent error (last_sync_error), until a manual sync retries it.
SYNC_STATUSES = ("none", "pending", "synced", "failed")
# Added by tenant_0003 after the existing columns: sort_order keeps a provisioned table's column
# order equal to a migrated one's (the provisioning test compares ordinal positions).
_AFTER_EXISTING = 10


class SyncStateMixin:
    @declared_attr
    def sync_status(cls) -> Mapped[str]:  # noqa: N805 - declared_attr receives the class
        check = CheckConstraint(f"sync_status IN {SYNC_STATUSES!r}", name="sync_status")
        return mapped_column(Text, check, server_default="none", sort_order=_AFTER_EXISTING)

    @declared_attr
    def last_sync_error(cls) -> Mapped[str | None]:  # noqa: N805
        return mapped_column(Text, sort_order=_AFTER_EXISTING)

    @declared_attr
    def synced_at(cls) -> Mapped[datetime | None]:  # noqa: N805
        return mapped_column(DateTime(timezone=True), sort_order=_AFTER_EXISTING)

    @declared_attr
    def provider_event_at(cls) -> Mapped[datetime | None]:  # noqa: N805
        # Watermark: occurred_at of the newest provider event applied to this object; older
        # events arriving late are ignored instead of rolling the object back.
        return mapped_column(DateTime(timezone=True), sort_order=_AFTER_EXISTING)
