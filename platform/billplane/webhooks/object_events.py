"""Appliers for events about customers and subscriptions.

Each returns (applied | ignored, why). An event older than the newest one already applied to its
object (the object's ``provider_event_at`` watermark) is ignored, never allowed to roll it back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from billplane.billing.customer_credit import release_credits
from billplane.billing.driver import driver_of
from billplane.plugins.contract import ProviderEvent
from billplane.subscriptions.models import ENDED_STATUSES
from billplane.webhooks import provider_state
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.repository import EventRepository

Outcome = tuple[str, str | None]  # (applied | ignored, why)
Applier = Callable[[EventRepository, StoredEvent, ProviderEvent], Awaitable[Outcome]]


class Watermarked(Protocol):
    @property
    def provider_event_at(self) -> datetime | None: ...


def stale(target: Watermarked, event: ProviderEvent) -> bool:
    return target.provider_event_at is not None and event.occurred_at < target.provider_event_at


async def subscription_changed(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    subscription = await events.subscription(row.provider_account_id, event.provider_object_id)
    if subscription is None:
        return "ignored", "no local subscription has this provider id at this account"
    if stale(subscription, event):
        return "ignored", "older than the last event applied to this subscription"
    if subscription.status == "incomplete_expired":
        # The customer approved too late: billplane already gave up and canceled it at the provider.
        return "ignored", "the subscription expired before it started"
    state = event.subscription
    provider_bills = events.bills_subscriptions(row.provider)
    if state is not None:
        provider_state.record_subscription(subscription, state, provider_bills=provider_bills)
    elif event.type == "subscription.canceled":
        subscription.status = "canceled"
        subscription.canceled_at = event.occurred_at
        subscription.next_action_type = subscription.next_action_url = None
    else:
        return "ignored", "the event carries no subscription state"
    subscription.provider_event_at = event.occurred_at
    if subscription.status in ENDED_STATUSES and not provider_bills:
        await events.session.flush()
        await release_credits(await driver_of(events.session), [subscription.id])
    return "applied", None


async def customer_deleted(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    customer = await events.customer_at(row.provider_account_id, event.provider_object_id)
    if customer is None:
        return "ignored", "no local customer has this provider id at this account"
    if stale(customer, event):
        return "ignored", "older than the last event applied to this customer"
    # billplane keeps its customer (invoices point at it); only the provider's copy is gone, so the
    # mapping goes too and a manual sync creates the customer there again.
    await events.forget_provider_customer(row.provider_account_id, event.provider_object_id)
    customer.provider_event_at = event.occurred_at
    return "applied", None


async def customer_written_at_provider(_events: EventRepository, _row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", "billplane owns customer data; changes made at the provider are not copied back"
