"""A billing run's locked subscriptions as plain rows, not ORM objects.

Loading a tenant's hundred due subscriptions as ORM objects, changing them through instrumented
attributes and expunging them again cost about 0.1 ms each, more than pricing them: the run
writes them back with one UPDATE of its own (``cycle._write_subscriptions``), so the unit of work
gave nothing for it. The row carries every column the API view shows (``SubscriptionView.of``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import class_mapper

from billplane.subscriptions.models import Subscription


@dataclass(slots=True)
class LockedSubscription:
    """A subscription row under the model's attribute names (``metadata_`` for ``metadata``)."""

    id: int
    customer_id: int
    plan_id: int
    provider: str | None
    provider_account_id: int | None
    provider_subscription_id: str | None
    status: str
    quantity: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    next_action_type: str | None
    next_action_url: str | None
    payment_method_id: int | None
    paused_at: datetime | None
    resume_at: datetime | None
    ended_at: datetime | None
    pending_plan_id: int | None
    pending_quantity: int | None
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    provider_event_at: datetime | None
    metadata_: dict[str, str]
    created_at: datetime
    updated_at: datetime


_ATTRIBUTES = [field.name for field in fields(LockedSubscription)]
_COLUMNS = {prop.key: prop.columns[0] for prop in class_mapper(Subscription).column_attrs}
if set(_ATTRIBUTES) != set(_COLUMNS):
    # A column added to the model would be missing from the run's events (or fail the UPDATE): say so at import.
    raise RuntimeError(f"LockedSubscription does not match the subscriptions table: {set(_ATTRIBUTES) ^ set(_COLUMNS)}")


def lock_due(ids: list[int], *conditions: Any) -> Select[Any]:
    """The subscriptions among ``ids`` that are still due (``conditions``), locked, skipping those
    another run holds; each row ends with the transaction's ``now()``."""
    wanted = bindparam("ids", ids, type_=ARRAY(BigInteger))
    return (
        select(*(_COLUMNS[name] for name in _ATTRIBUTES), func.now())
        .where(Subscription.id == any_(wanted), *conditions)
        .order_by(Subscription.id)
        .with_for_update(skip_locked=True)
    )


def locked_row(row: Any) -> LockedSubscription:
    """A row of ``lock_due`` (its last column, ``now()``, left out)."""
    return LockedSubscription(*row[: len(_ATTRIBUTES)])
