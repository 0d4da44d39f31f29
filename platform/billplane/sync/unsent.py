"""Subscription changes that have not reached their provider: what deleting an account or a
tenant must wait for.

Canceled here, a subscription its provider bills goes on being billed there until its
cancellation is sent: dropped with the tenant's schema, or left without an account to go
through, it never would be.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from billplane.sync.models import OutboxEntry

UNSENT_CHANGES = (
    "changes to subscriptions (a cancellation, say) have not reached their provider yet: let them be sent, "
    "or send them again (POST /v1/subscriptions/{id}/sync)"
)


def unsent_subscription_changes(account_id: int | None = None) -> Select[int]:
    """Outbox rows of subscription changes not done (queued, or given up), of one account or all.
    A metadata edit is none: the provider bills the same without it."""
    query = select(OutboxEntry.id).where(
        OutboxEntry.kind.startswith("subscription."),
        OutboxEntry.kind != "subscription.metadata",
        OutboxEntry.status != "done",
    )
    return query if account_id is None else query.where(OutboxEntry.provider_account_id == account_id)
