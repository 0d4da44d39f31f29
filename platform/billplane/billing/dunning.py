"""Dunning: what follows a subscription invoice's failed or successful payment, and its retries.

Settlement (``billplane.payments.settlement``) calls ``schedule`` when a payment of an invoice fails
(before the invoice's ``invoice.payment_failed`` event, so the event shows the next attempt) and
``follow`` once the invoice has followed its payment either way.

The schedule counts from the invoice's first failed payment: failure ``n`` (``attempt_count``, every
failed attempt, manual ones included) sets ``next_payment_attempt_at`` to first failure +
``dunning_retry_days[n - 1]``. The first failure's time is not stored: after failure ``n`` > 1 it
is the previous due time minus ``dunning_retry_days[n - 2]``. When no retry is left, the tenant's
final action applies: ``cancel`` (subscription canceled, invoice uncollectible) or ``mark_unpaid``
(subscription unpaid, invoice left open for the tenant to collect). It ends the subscription's
dunning as a whole: its other invoices in dunning are marked uncollectible too (``cancel``), or
their retries stop (``mark_unpaid``), unless a payment of theirs is in flight: that payment's
outcome settles them (a failure then finds the subscription canceled or unpaid, ``_final_action``
and ``schedule``). A later successful payment of the subscription's last failing invoice makes a
past_due or unpaid subscription active again (an unpaid one whose period ended meanwhile starts a
new one at the recovery, ``_billing_resumes``, unless it was set to cancel at that period's end);
``release``, when the tenant voids it or marks it uncollectible, does the same for a past_due one.
An unpaid subscription is not billed again, but it still ends: set to cancel at its period's end,
the billing run cancels it there (``billing.locked.MOVED``).

Times are the customer's (``customer_now``): a customer on a test clock is dunned on its clock.
Invoices without a subscription (manual ones) are not dunned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.clock import now_of_customer
from billplane.billing.customer_credit import release_credits
from billplane.billing.driver import driver_of
from billplane.billing.settings_repository import SettingsRepository
from billplane.events.emit import emit
from billplane.invoices.failures import NOT_ATTEMPTED, PaymentFailure, payment_failed
from billplane.invoices.models import Invoice
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.payments.models import Payment
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.sync.repository import OutboxRepository

# A failing invoice moves these to past_due; other states (paused, canceled, unpaid) keep theirs.
_GOES_PAST_DUE = frozenset({"active", "trialing"})
_RECOVERS = frozenset({"past_due", "unpaid"})


async def _now(session: AsyncSession, customer_id: int) -> datetime:
    return await now_of_customer(session, customer_id)


def next_attempt(days: list[int], failed: int, now: datetime, previous_due: datetime | None) -> datetime | None:
    """When to charge again after failure number ``failed`` at ``now`` (None: no retry is left)."""
    if failed < 1 or failed > len(days):
        return None
    first = now
    if failed > 1 and previous_due is not None:
        first = previous_due - timedelta(days=days[failed - 2])
    return first + timedelta(days=days[failed - 1])


async def schedule(session: AsyncSession, invoice: Invoice) -> None:
    """A payment of ``invoice`` failed and ``attempt_count`` counts it: when to try again, if at all.

    Never while its subscription is unpaid: the final action has applied and its billing stopped
    (a payment in flight when it did, failing now); the tenant collects it. The subscription is
    locked here, after the invoice, as ``follow`` locks it next."""
    if invoice.subscription_id is None or invoice.status != "open":
        return
    subscription = await session.get(
        Subscription, invoice.subscription_id, with_for_update=True, populate_existing=True
    )
    if subscription is not None and subscription.status == "unpaid":
        invoice.next_payment_attempt_at = None
        return
    days = list((await SettingsRepository(session).current()).dunning_retry_days)
    now = await _now(session, invoice.customer_id)
    invoice.next_payment_attempt_at = next_attempt(days, invoice.attempt_count, now, invoice.next_payment_attempt_at)


async def charge_refused(session: AsyncSession, invoice_id: int, reason: str) -> None:
    """No charge of the open invoice could even be made (no usable payment method, no provider
    account): that is a failed attempt, dunned like a declined payment, with the reason in its
    ``invoice.payment_failed`` event (there is no payment to carry it)."""
    invoice = await session.get(Invoice, invoice_id, with_for_update=True, populate_existing=True)
    if invoice is None or invoice.status != "open":
        return
    invoice.attempt_count += 1
    await schedule(session, invoice)
    await session.flush()
    await session.refresh(invoice)
    failure = PaymentFailure(code=NOT_ATTEMPTED, message=reason, payment_id=None)
    await emit(session, "invoice.payment_failed", "invoice", invoice.id, payment_failed(invoice, failure))
    await follow(session, invoice, "failed")


async def follow(session: AsyncSession, invoice: Invoice, status: str) -> None:
    """The subscription follows its invoice's payment outcome (after the invoice's own event)."""
    if invoice.subscription_id is None or status not in {"succeeded", "failed"}:
        return
    subscription = await session.get(
        Subscription, invoice.subscription_id, with_for_update=True, populate_existing=True
    )
    if subscription is None:
        return
    if status == "succeeded":
        if invoice.status == "paid" and subscription.status in _RECOVERS and not await _failing(session, subscription):
            if subscription.status == "unpaid":
                await _billing_resumes(session, subscription)
            subscription.status = "active"
            await _changed(session, subscription, "subscription.recovered")
        return
    if invoice.status != "open" or invoice.attempt_count < 1:
        return
    if invoice.next_payment_attempt_at is not None:
        if subscription.status in _GOES_PAST_DUE:
            subscription.status = "past_due"
            await _changed(session, subscription, "subscription.past_due")
        return
    await _final_action(session, invoice, subscription)


async def release(session: AsyncSession, invoice: Invoice) -> None:
    """The tenant closed ``invoice`` by hand (void, uncollectible): its dunning is over.

    Its retries stopped with it (only open invoices are retried). A past_due subscription that no
    other failing invoice keeps past_due is active again, with the event a successful payment
    would have produced. An unpaid one stays unpaid: the final action has applied and its billing
    stopped at the failure; a tenant who forgives the debt has not said to bill again. The tenant
    cancels it, or collects, and a payment restarts its billing (``_billing_resumes``).
    """
    if invoice.subscription_id is None or invoice.status == "open":
        return
    subscription = await session.get(
        Subscription, invoice.subscription_id, with_for_update=True, populate_existing=True
    )
    if subscription is None or subscription.status != "past_due" or await _failing(session, subscription):
        return
    subscription.status = "active"
    await _changed(session, subscription, "subscription.recovered")


async def _failing(session: AsyncSession, subscription: Subscription) -> bool:
    """Whether another invoice of the subscription is still open after a failed payment."""
    query = select(Invoice.id).where(
        Invoice.subscription_id == subscription.id, Invoice.status == "open", Invoice.attempt_count > 0
    )
    return (await session.execute(query.limit(1))).first() is not None


async def _billing_resumes(session: AsyncSession, subscription: Subscription) -> None:
    """An unpaid subscription recovers. Its billing stopped at the failure: when its period has
    ended since, the periods that ended while it was unpaid are not billed. Its cycle restarts at
    the recovery: the period ends now, so that the billing run's next pass (or a change to it,
    which first bills what is due) crosses that boundary and bills [now, now + interval) in
    advance. Its start stays: the crossing bills the ended period's metered usage in arrears, and
    usage is taken while unpaid only within that period (``usage.rules``), so none is lost and
    none after it is billed. Recovered within its period, nothing changes but the status. Set to
    cancel at its period's end, it ended there, whether or not the run has come to it yet: no new
    cycle starts, and the run ends it at that boundary (``billing.locked.MOVED``)."""
    now = await _now(session, subscription.customer_id)
    end = subscription.current_period_end
    if end is not None and end <= now and not subscription.cancel_at_period_end:
        subscription.current_period_end = subscription.billing_cycle_anchor = now  # a new cycle from now


async def _final_action(session: AsyncSession, invoice: Invoice, subscription: Subscription) -> None:
    if subscription.status in {"incomplete_expired", "unpaid"}:
        return  # ended before it started, or already unpaid (its billing stopped; the invoice stays open)
    action = (await SettingsRepository(session).current()).dunning_final_action
    if subscription.status == "canceled":
        # Ended already: by the tenant, or by the final action of another of its invoices while a
        # payment of this one was in flight. Nothing will collect it any more: as ``cancel`` would.
        if action == "cancel":
            await _uncollectible(session, invoice)
        return
    if action == "mark_unpaid":
        subscription.status = "unpaid"
        await _changed(session, subscription, "subscription.unpaid")
        for other in await _dunned_with(session, subscription, invoice):
            if other.next_payment_attempt_at is not None:
                other.next_payment_attempt_at = None  # open for the tenant to collect; not retried
                await _invoice_changed(session, other, "invoice.updated")
        return
    await _cancel(session, invoice, subscription)
    await _uncollectible(session, invoice)
    for other in await _dunned_with(session, subscription, invoice):
        await _uncollectible(session, other)


async def _cancel(session: AsyncSession, invoice: Invoice, subscription: Subscription) -> None:
    now = await _now(session, invoice.customer_id)
    subscription.pending_plan_id = subscription.pending_quantity = None
    end = subscription.current_period_end
    if end is not None and end <= now:
        # Its period ended before the billing run crossed it (the last retry falls near a period
        # end). Canceled now, that period's usage and pending charges would never be billed: the
        # run ends it at the boundary instead, billing them, as a cancellation at the period end.
        subscription.cancel_at_period_end = True
        event = "subscription.updated"
    else:
        subscription.status, subscription.canceled_at, subscription.ended_at = "canceled", now, now
        subscription.cancel_at_period_end = False
        event = "subscription.canceled"
    if subscription.provider_account_id is not None:
        # Mirrored like a cancel through the API; no job queue here, so the sweep picks the row up.
        subscription.sync_status = "pending"
        await OutboxRepository(session).add("subscription.cancel", subscription.id, [subscription.provider_account_id])
    await _changed(session, subscription, event)
    if event == "subscription.canceled":
        await release_credits(await driver_of(session), [subscription.id])  # dunned here: billed here


async def _dunned_with(session: AsyncSession, subscription: Subscription, invoice: Invoice) -> list[Invoice]:
    """The subscription's invoices other than ``invoice`` in dunning (open after a failed attempt,
    retry scheduled or not, as ``_failing`` counts them), locked, but for those with a payment in
    flight (its outcome settles them). Locked after the subscription, so with SKIP LOCKED: one
    another transaction holds (its payment settling, the tenant acting on it) is left to it, and
    that transaction, locking the subscription next, finds it as this one leaves it."""
    in_flight = exists().where(Payment.invoice_id == Invoice.id, Payment.status == "pending")
    query = (
        select(Invoice)
        .where(
            Invoice.subscription_id == subscription.id,
            Invoice.id != invoice.id,
            Invoice.status == "open",
            Invoice.attempt_count > 0,
            Invoice.provider_invoice_id.is_(None),
            ~in_flight,
        )
        .order_by(Invoice.id)
        .with_for_update(of=Invoice, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def _uncollectible(session: AsyncSession, invoice: Invoice) -> None:
    invoice.status, invoice.next_payment_attempt_at = "uncollectible", None
    await _invoice_changed(session, invoice, "invoice.marked_uncollectible")


async def _invoice_changed(session: AsyncSession, invoice: Invoice, event: str) -> None:
    await session.flush()
    await session.refresh(invoice)
    await emit(session, event, "invoice", invoice.id, InvoiceView.of(invoice))


async def _changed(session: AsyncSession, subscription: Subscription, event: str) -> None:
    await session.flush()
    await session.refresh(subscription)
    await emit(session, event, "subscription", subscription.id, SubscriptionView.of(subscription))
