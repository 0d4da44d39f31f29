"""Appliers for events about customers and subscriptions.

Each returns (applied | ignored | deferred, why). An event older than the newest one already
applied to its object (the object's ``provider_event_at`` watermark) is ignored, never allowed to
roll it back. A deferred one stays ``received``, to be applied again later (``apply``).
What an applied event changes in the object as the API shows it is an event of billplane's own
(``emit``, in the same transaction); a provider repeating what billplane shows already emits none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.clock import customer_now
from billplane.billing.customer_credit import release_credits
from billplane.billing.driver import driver_of
from billplane.customers.models import Customer
from billplane.customers.schemas import Customer as CustomerView
from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.plugins.contract import ProviderEvent
from billplane.subscriptions.catching_up import caught_up
from billplane.subscriptions.models import ENDED_STATUSES, Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.webhooks import provider_state
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.repository import EventRepository

Outcome = tuple[str, str | None]  # (applied | ignored | deferred, why)
Applier = Callable[[EventRepository, StoredEvent, ProviderEvent], Awaitable[Outcome]]


class Watermarked(Protocol):
    @property
    def provider_event_at(self) -> datetime | None: ...


def stale(target: Watermarked, event: ProviderEvent) -> bool:
    return target.provider_event_at is not None and event.occurred_at < target.provider_event_at


async def subscription_emitted(
    session: AsyncSession, subscription: Subscription, before: SubscriptionView, *, ignoring: tuple[str, ...] = ()
) -> None:
    """The event of a change the provider made to ``subscription`` (its webhook, its answer to the
    create call; ``before``: as the API showed it), if the API shows it changed; named after the
    status it entered (``types.subscription_change``).

    ``updated_at`` never counts (it moves with every write, the provider's watermark included), nor
    do the fields ``ignoring`` names. A provider repeating what billplane shows already changes
    nothing, and emits nothing.
    """
    await session.flush()
    await session.refresh(subscription)  # what the database set (updated_at)
    after = SubscriptionView.of(subscription)
    if not changed(before, after, ignoring=ignoring):
        return
    change = types.subscription_change(before.status, after.status)
    await emit(session, change, types.SUBSCRIPTION_OBJECT, subscription.id, after)


async def customer_emitted(
    session: AsyncSession, customer: Customer, before: CustomerView, *, ignoring: tuple[str, ...] = ()
) -> None:
    """``customer.updated`` if the API shows ``customer`` changed since ``before`` (``ignoring``: as
    for ``subscription_emitted``)."""
    await session.flush()
    await session.refresh(customer)  # provider_ids, rewritten by SQL
    after = CustomerView.of(customer)
    if changed(before, after, ignoring=ignoring):
        await emit(session, types.CUSTOMER_UPDATED, types.CUSTOMER_OBJECT, customer.id, after)


async def subscription_changed(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    subscription = await events.subscription(row.provider_account_id, event.provider_object_id)
    if subscription is None:
        return "ignored", "no local subscription has this provider id at this account"
    state = event.subscription
    ends = event.type == "subscription.canceled" or (state is not None and state.status == "canceled")
    provider_bills = events.bills_subscriptions(row.provider)
    # A provider that does not bill the subscription knows nothing of billplane's billing: of its
    # statuses only the end, and the start of one waiting for the customer, are news here.
    takes_status = provider_bills or ends or subscription.status == "incomplete"
    not_now = await _not_taken(events, subscription, row, event, ends=ends, takes_status=takes_status)
    if not_now is not None:
        return not_now
    if ends and not provider_bills:
        subscription = await _billed_until(events, subscription, event.occurred_at)
        if subscription.status in ENDED_STATUSES:  # ended by its own period end, now billed
            subscription.provider_event_at = event.occurred_at
            return "applied", "it had ended at its period end, before the provider's cancellation"
    before = SubscriptionView.of(subscription)
    if state is not None:
        provider_state.record_subscription(subscription, state, provider_bills=provider_bills, status=takes_status)
    else:  # a cancellation without the subscription's state (``_not_taken``): billplane knows what it means
        subscription.status = "canceled"
        subscription.canceled_at = event.occurred_at
        subscription.next_action_type = subscription.next_action_url = None
    subscription.provider_event_at = event.occurred_at
    await subscription_emitted(events.session, subscription, before)
    if subscription.status in ENDED_STATUSES and not provider_bills:
        await events.session.flush()
        await release_credits(await driver_of(events.session), [subscription.id])
    return "applied", None


async def _billed_until(events: EventRepository, subscription: Subscription, canceled_at: datetime) -> Subscription:
    """A subscription billplane bills, canceled at the provider: every period that ended before
    the cancellation is billed first, as the API's cancel does (``catching_up``). Ended now
    as it stands, its ended period would never be billed: the run only moves live subscriptions.
    Up to when the provider canceled, not to now: an event applied late bills no period after it."""
    if events.catch_up is None:
        return subscription
    clock = await events.session.scalar(select(Customer.test_clock_id).where(Customer.id == subscription.customer_id))
    until = min(canceled_at, await customer_now(events.session, clock))
    return await caught_up(events.session, subscription, until, events.catch_up, ending=True)


async def _not_taken(
    events: EventRepository,
    subscription: Subscription,
    row: StoredEvent,
    event: ProviderEvent,
    *,
    ends: bool,
    takes_status: bool,
) -> Outcome | None:
    """Why the provider's ``event`` changes nothing of ``subscription``, for good (ignored) or
    not yet (deferred); None: it is taken."""
    why_not = _no_news(subscription, event, ends=ends, takes_status=takes_status)
    if why_not is not None:
        return "ignored", why_not
    if ends:  # an end at the provider is news whatever billplane asked of it before
        return None
    held = await _before_local_change(events, subscription, row, event)
    if held is not None:
        return held
    # Without its status, an event that does not move cancel_at_period_end says nothing new.
    state = event.subscription
    if not takes_status and state is not None and state.cancel_at_period_end == subscription.cancel_at_period_end:
        return "ignored", "billplane bills this subscription: its status is billplane's"
    return None


def _no_news(subscription: Subscription, event: ProviderEvent, *, ends: bool, takes_status: bool) -> str | None:
    """Why ``event`` can never change ``subscription``, whatever billplane does next."""
    if event.subscription is None and event.type != "subscription.canceled":
        return "the event carries no subscription state"
    if stale(subscription, event):
        return "older than the last event applied to this subscription"
    if subscription.status == "incomplete_expired":
        # The customer approved too late: billplane already gave up and canceled it at the provider.
        return "the subscription expired before it started"
    if subscription.status == "canceled" and not ends:
        # Ended for good, here or at the provider. A provider still showing it live has not taken
        # billplane's cancellation yet (its row is queued); undone here, that row would cancel
        # nothing, and the provider would go on billing.
        return "the subscription is canceled: a provider's word cannot restart it"
    return _older_news(subscription, event) if takes_status else None


def _older_news(subscription: Subscription, event: ProviderEvent) -> str | None:
    """Why a status ``event`` reports is older news than ``subscription``'s, though no older by the
    watermark: providers date events to the whole second, so two of one second (in either order)
    are told apart by what can follow what."""
    reported = None if event.subscription is None else event.subscription.status
    if reported == "incomplete" != subscription.status:
        # A provider's subscription starts incomplete and never goes back (Stripe, PayPal). Taken,
        # an older event would leave it incomplete, and billplane's expiry would cancel a paying
        # subscription.
        return "a subscription that has started does not go back to incomplete: older news"
    if (
        reported == "past_due"
        and subscription.status == "unpaid"
        and event.occurred_at == subscription.provider_event_at
    ):
        # PayPal's last failed payment and the suspension it causes, in one second: taken after the
        # suspension, the failure would show past_due (still served) what PayPal stopped billing.
        return "a failed payment of the same second as the subscription's suspension is older news"
    return None


async def _before_local_change(
    events: EventRepository, subscription: Subscription, row: StoredEvent, event: ProviderEvent
) -> Outcome | None:
    """What becomes of ``event`` while billplane's own change to the subscription is on its way to
    the provider, or when it happened before that change was made: the provider's state then may
    lack the change, and taken here it would undo it (the queued row, sending the state of its
    time, would then send nothing, or the old value). None: it can be taken.

    While the change is queued the event waits (deferred), not dropped: the provider may send
    nothing after it (a change that sends nothing, a resume of what was never paused there), and
    news it carries (a ``past_due``) would be lost. Applied again once the change is sent, the
    watermark and the time of that change decide. One older than the change is ignored: the
    provider's events after it took the change carry its whole state, this one's news included."""
    pending, made = await events.change_sent(subscription.id, row.provider_account_id)
    if pending:
        return "deferred", "billplane's change to it is not at the provider yet"
    if made is not None and event.occurred_at < made:
        return "ignored", "older than billplane's last change to it, which the provider had not taken then"
    return None


async def customer_deleted(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    customer = await events.customer_at(row.provider_account_id, event.provider_object_id)
    if customer is None:
        return "ignored", "no local customer has this provider id at this account"
    if stale(customer, event):
        return "ignored", "older than the last event applied to this customer"
    # billplane keeps its customer (invoices point at it); only the provider's copy is gone, so the
    # mapping goes too and a manual sync creates the customer there again.
    before = CustomerView.of(customer)
    await events.forget_provider_customer(row.provider_account_id, event.provider_object_id)
    customer.provider_event_at = event.occurred_at
    if customer.deleted_at is None:  # one deleted here first is gone from the API: nothing to show
        await customer_emitted(events.session, customer, before)
    return "applied", None


async def customer_written_at_provider(_events: EventRepository, _row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", "billplane owns customer data; changes made at the provider are not copied back"
