"""The tenant's view of received provider events (never the raw body: it is kept for audits)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from billplane.webhooks.models import StoredEvent


class ProviderEventRecord(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    provider_account_id: int
    # The provider's own event id; each is stored once per account.
    event_id: str
    # billplane's normalized type (subscription.updated, invoice.paid, ...) and the provider's own name.
    type: str
    provider_type: str | None
    provider_object_id: str
    occurred_at: datetime
    # received (not applied yet), applied, or ignored with the reason in `detail`: stale, an object
    # billplane does not know, or a type it does not act on. One reapplied says so in `detail`.
    status: str
    detail: str | None
    received_at: datetime
    applied_at: datetime | None
    # When it was last set back from ignored to be applied again (POST .../reapply); its day of
    # waiting counts from then. None: never.
    reapplied_at: datetime | None

    @classmethod
    def of(cls, row: StoredEvent) -> ProviderEventRecord:
        provider_type = row.event.get("provider_type") if isinstance(row.event, dict) else None
        return cls(
            id=row.id,
            provider=row.provider,
            provider_account_id=row.provider_account_id,
            event_id=row.event_id,
            type=row.type,
            provider_type=provider_type if isinstance(provider_type, str) else None,
            provider_object_id=row.provider_object_id,
            occurred_at=row.occurred_at,
            status=row.status,
            detail=row.detail,
            received_at=row.received_at,
            applied_at=row.applied_at,
            reapplied_at=row.reapplied_at,
        )
