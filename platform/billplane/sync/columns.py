"""Sync state columns shared by every object billplane mirrors to a provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

# none: nothing to mirror; pending: outbox work queued or retrying; synced: the provider has the
# latest local state; failed: a permanent error (last_sync_error), until a manual sync retries it.
SYNC_STATUSES = ("none", "pending", "synced", "failed")
# Added by tenant_0003 (tenant_0016 for products and plans) after the existing columns: sort_order
# keeps a provisioned table's column order equal to a migrated one's (the provisioning test
# compares ordinal positions).
_AFTER_EXISTING = 10


def _sync_status() -> Mapped[str]:
    check = CheckConstraint(f"sync_status IN {SYNC_STATUSES!r}", name="sync_status")
    return mapped_column(Text, check, server_default="none", sort_order=_AFTER_EXISTING)


def _last_sync_error() -> Mapped[str | None]:
    return mapped_column(Text, sort_order=_AFTER_EXISTING)


def _synced_at() -> Mapped[datetime | None]:
    return mapped_column(DateTime(timezone=True), sort_order=_AFTER_EXISTING)


class SyncStateMixin:
    @declared_attr
    def sync_status(cls) -> Mapped[str]:  # noqa: N805 - declared_attr receives the class
        return _sync_status()

    @declared_attr
    def last_sync_error(cls) -> Mapped[str | None]:  # noqa: N805
        return _last_sync_error()

    @declared_attr
    def synced_at(cls) -> Mapped[datetime | None]:  # noqa: N805
        return _synced_at()

    @declared_attr
    def provider_event_at(cls) -> Mapped[datetime | None]:  # noqa: N805
        # Watermark: occurred_at of the newest provider event applied to this object; older
        # events arriving late are ignored instead of rolling the object back.
        return mapped_column(DateTime(timezone=True), sort_order=_AFTER_EXISTING)


class SyncStatusMixin:
    """The sync state of an object the provider never reports back on (products and plans: no
    provider event changes them), so without ``provider_event_at``."""

    @declared_attr
    def sync_status(cls) -> Mapped[str]:  # noqa: N805 - declared_attr receives the class
        return _sync_status()

    @declared_attr
    def last_sync_error(cls) -> Mapped[str | None]:  # noqa: N805
        return _last_sync_error()

    @declared_attr
    def synced_at(cls) -> Mapped[datetime | None]:  # noqa: N805
        return _synced_at()
