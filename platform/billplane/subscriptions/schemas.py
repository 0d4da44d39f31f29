"""API shapes for subscriptions (read-only until the billing engine writes them)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from billplane.subscriptions.models import Subscription as SubscriptionRow


class NextAction(msgspec.Struct, kw_only=True):
    """What the customer must do before the subscription starts: open `url` (PayPal's approval page)."""

    type: str
    url: str


class Subscription(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    plan_id: int
    # One of SUBSCRIPTION_STATUSES: trialing, active, past_due, paused, canceled, unpaid, incomplete,
    # incomplete_expired (left incomplete past BILLPLANE_INCOMPLETE_EXPIRY_HOURS).
    status: str
    quantity: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    # The provider that mirrors this subscription (None while billplane alone bills it) and its id there.
    provider: str | None
    provider_account_id: int | None
    provider_subscription_id: str | None
    # Set while incomplete when the provider needs the customer first: forward `url` to the customer.
    next_action: NextAction | None
    # Mirroring to the provider: none, pending, synced, or failed with last_sync_error
    # (POST /v1/subscriptions/{id}/sync retries).
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SubscriptionRow) -> Subscription:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            plan_id=row.plan_id,
            status=row.status,
            quantity=row.quantity,
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            canceled_at=row.canceled_at,
            trial_start=row.trial_start,
            trial_end=row.trial_end,
            provider=row.provider,
            provider_account_id=row.provider_account_id,
            provider_subscription_id=row.provider_subscription_id,
            next_action=None
            if row.next_action_type is None or row.next_action_url is None
            else NextAction(type=row.next_action_type, url=row.next_action_url),
            sync_status=row.sync_status,
            last_sync_error=row.last_sync_error,
            synced_at=row.synced_at,
            metadata=row.metadata_,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
