"""API shapes for subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from billplane.api.types import Metadata, Patch, example_body
from billplane.db.mixins import MAX_ID
from billplane.subscriptions.models import Subscription as SubscriptionRow

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
# create_prorations: charge or credit the rest of the period now; none: new price from now, no
# proration; at_period_end: the change waits for the next period.
Proration = Literal["create_prorations", "none", "at_period_end"]


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    customer_id: Id
    plan_id: Id
    quantity: Quantity = 1
    # Days of free trial (0: none); the plan's own trial applies when omitted.
    trial_period_days: Annotated[int, msgspec.Meta(ge=0, le=730)] | None = None
    # The provider account that collects payment; the tenant's default account when omitted.
    provider_account_id: Id | None = None
    # One of the customer's payment methods; its default one when omitted.
    payment_method_id: Id | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class SubscriptionUpdate(Patch):
    """A plan or quantity change, with how to prorate it; and metadata."""

    plan_id: Id | msgspec.UnsetType = msgspec.UNSET
    quantity: Quantity | msgspec.UnsetType = msgspec.UNSET
    proration: Proration = "create_prorations"
    # Prorate as though the change were made then (the preview's effective_at, to apply what it
    # showed): within the current period, not before its last change, not after now.
    proration_date: datetime | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


class SubscriptionCancel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # True: keep it until the current period ends; false: end it now.
    at_period_end: bool = False
    # Ending it now: invoice the current period's metered usage so far and the pending prorations
    # (as Stripe's invoice_now); by default nothing more is billed.
    invoice_now: bool = False


class SubscriptionPause(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # When to resume by itself; open-ended when omitted (POST .../resume).
    resume_at: datetime | None = None


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
    payment_method_id: int | None
    paused_at: datetime | None
    resume_at: datetime | None
    ended_at: datetime | None
    # A change chosen to take effect when the current period ends (proration at_period_end).
    pending_plan_id: int | None
    pending_quantity: int | None
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
            payment_method_id=row.payment_method_id,
            paused_at=row.paused_at,
            resume_at=row.resume_at,
            ended_at=row.ended_at,
            pending_plan_id=row.pending_plan_id,
            pending_quantity=row.pending_quantity,
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


SubscriptionCreateBody = Annotated[
    SubscriptionCreate,
    example_body(
        "Five seats with a 14-day trial", {"customer_id": 1, "plan_id": 1, "quantity": 5, "trial_period_days": 14}
    ),
]
SubscriptionUpdateBody = Annotated[
    SubscriptionUpdate,
    example_body("Seven seats from now on, prorated", {"quantity": 7, "proration": "create_prorations"}),
]
SubscriptionCancelBody = Annotated[
    SubscriptionCancel, example_body("Keep it until the period ends", {"at_period_end": True})
]
SubscriptionPauseBody = Annotated[
    SubscriptionPause, example_body("Pause until the first of next month", {"resume_at": "2027-01-01T00:00:00Z"})
]
