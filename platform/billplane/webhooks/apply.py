"""Applying stored provider events to local state, in a job, each exactly once.

Events of one object can arrive in any order and more than once. Each event row is applied under
a row lock and only while ``received``; an event older than the newest one already applied to its
object (the object's ``provider_event_at`` watermark) is ignored, never allowed to roll it back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from billplane.plugins.contract import ProviderEvent
from billplane.sync.columns import SyncStateMixin
from billplane.sync.refs import EventRef
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.repository import EventRepository
from billplane_tenants import Database

Outcome = tuple[str, str | None]  # (applied | ignored, why)
Applier = Callable[[EventRepository, StoredEvent, ProviderEvent], Awaitable[Outcome]]


def _stale(target: SyncStateMixin, event: ProviderEvent) -> bool:
    return target.provider_event_at is not None and event.occurred_at < target.provider_event_at


async def _subscription_changed(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    subscription = await events.subscription(row.provider_account_id, event.provider_object_id)
    if subscription is None:
        return "ignored", "no local subscription has this provider id at this account"
    if _stale(subscription, event):
        return "ignored", "older than the last event applied to this subscription"
    state = event.subscription
    if state is not None:
        subscription.status = state.status
        subscription.cancel_at_period_end = state.cancel_at_period_end
        subscription.canceled_at = state.canceled_at
        if state.current_period_start is not None:
            subscription.current_period_start = state.current_period_start
        if state.current_period_end is not None:
            subscription.current_period_end = state.current_period_end
    elif event.type == "subscription.canceled":
        subscription.status = "canceled"
        subscription.canceled_at = event.occurred_at
    else:
        return "ignored", "the event carries no subscription state"
    subscription.provider_event_at = event.occurred_at
    return "applied", None


async def _customer_deleted(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    customer = await events.customer_at(row.provider_account_id, event.provider_object_id)
    if customer is None:
        return "ignored", "no local customer has this provider id at this account"
    if _stale(customer, event):
        return "ignored", "older than the last event applied to this customer"
    # billplane keeps its customer (invoices point at it); only the provider's copy is gone, so the
    # mapping goes too and a manual sync creates the customer there again.
    await events.forget_provider_customer(row.provider_account_id, event.provider_object_id)
    customer.provider_event_at = event.occurred_at
    return "applied", None


async def _customer_updated(_events: EventRepository, _row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", "billplane owns customer data; changes made at the provider are not copied back"


async def _payment_settled(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    payment = await events.payment(row.provider_account_id, event.provider_object_id)
    if payment is None:
        return "ignored", "no local payment has this provider id at this account"
    # Payments have no watermark: a settled payment never changes again from an event, so a late
    # "failed" cannot undo a "succeeded" (refunds are their own records).
    if payment.status != "pending":
        return "ignored", f"the payment is already {payment.status}"
    payment.status = "succeeded" if event.type == "payment.succeeded" else "failed"
    if event.payment is not None and payment.status == "failed":
        payment.failure_code = event.payment.failure_code
        payment.failure_message = event.payment.failure_message
    return "applied", None


async def _not_handled(_events: EventRepository, row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", f"billplane does not act on {row.type} events yet"


APPLIERS: dict[str, Applier] = {
    "subscription.updated": _subscription_changed,
    "subscription.canceled": _subscription_changed,
    "customer.deleted": _customer_deleted,
    "customer.updated": _customer_updated,
    "payment.succeeded": _payment_settled,
    "payment.failed": _payment_settled,
}


@dataclass(slots=True)
class EventApplier:
    database: Database

    async def apply(self, ref: EventRef) -> str:
        """Apply one stored event; returns applied, ignored, or skipped (already handled)."""
        async with self.database.tenant_session(ref.schema) as session:
            events = EventRepository(session)
            row = await events.lock(ref.event_id)
            if row is None or row.status != "received":
                return "skipped"  # replayed or duplicated jobs are no-ops
            event = msgspec.convert(row.event, ProviderEvent)
            status, detail = await APPLIERS.get(row.type, _not_handled)(events, row, event)
            row.status, row.detail, row.applied_at = status, detail, datetime.now(UTC)
        return status
