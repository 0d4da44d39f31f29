"""A subscription whose period has ended, billed up to now before a request changes it.

The billing run moves subscriptions across their period ends every minute (longer when the worker
is down), and resumes paused ones whose ``resume_at`` has come (billing the rest of their period
when the pause spanned its start, ``billing.cycle``), so a request can find one whose period ended,
or whose pause is over, that no run has billed yet. Changed as
it stands (canceled now, repriced, paused), its ended period would never be billed: the run only
moves subscriptions that still turn over, and a proration would be computed against a period that
is over. So every change first bills the due boundaries exactly as the run would, by the run's own
per-subscription path (``billing.locked.lock_due``, ``billing.tenant_batch.bill_locked``), in the
request's transaction, with the subscription's "now" (its customer's test clock's time, if any).
The change is then checked against what the boundaries left (ended at its period end, trial over,
a pending change applied).

The run's statements go to the session's asyncpg connection, so the ORM's subscription is re-read
afterwards. Its announcements (charges for the outbox listener, deliveries for the webhook
deliverers) are sent as NOTIFY in the request's transaction, as ``events.emit`` sends the request's
own: PostgreSQL delivers them at the commit, and drops them if the request rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError
from billplane.billing.announcing import announce
from billplane.billing.driver import driver_of
from billplane.billing.locked import lock_due
from billplane.billing.tenant_batch import bill_locked
from billplane.subscriptions.models import Subscription


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Who bills: the request's tenant (id, schema), and how the run would charge (``BillingRun``)."""

    tenant: tuple[int, str]
    provider_billed: frozenset[str]  # providers that bill their own subscriptions: left to them
    defaults: bool  # whether invoices without an account of their own go through the tenant's default


def due(subscription: Subscription, now: datetime) -> bool:
    """Whether the billing run has something of ``subscription`` to do by ``now`` (``lock_due``
    decides: this only spares the lock when nothing is): its period ended, or its pause reached its
    ``resume_at``."""
    end, resume_at = subscription.current_period_end, subscription.resume_at
    if end is not None and end <= now:
        return True
    return subscription.status == "paused" and resume_at is not None and resume_at <= now


async def caught_up(
    session: AsyncSession,
    subscription: Subscription,
    now: datetime,
    terms: CatchUp,
    *,
    announcing: bool = True,
    ending: bool = False,
) -> Subscription:
    """``subscription`` (locked by the caller, or locked here) with every boundary up to ``now``
    billed, as the billing run would have; the same instance, re-read, when anything was due.
    A 409 when the run refuses its invoice (an amount or quantity over the limit): changed now,
    the ended period would never be billed. ``ending``: the change ends the subscription now,
    which is also the tenant's one way out of such a refusal (billing-runs.md), so it goes ahead,
    the refused period unbilled. ``announcing``: False for a transaction that rolls back."""
    if not due(subscription, now):
        return subscription
    await session.flush()  # the request's changes so far, before the driver's statements read the row
    locked = await lock_due(
        session,
        tenant_id=terms.tenant[0],
        provider_billed=terms.provider_billed,
        defaults=terms.defaults,
        ids=[subscription.id],
        until=now,
    )
    if locked is None:
        return subscription  # not turning over (canceled, unpaid, ...) or its provider's to bill
    outcome = await bill_locked(session, locked, now, tenant=terms.tenant)
    if subscription.id in outcome.refused and not ending:  # left due by the run too, which logs it
        raise ConflictError(
            f"subscription {subscription.id}'s ended period cannot be billed ({outcome.refused[subscription.id]}); "
            "it cannot change until that period is billed"
        )
    if announcing:
        await announce(await driver_of(session), outcome.announcements)
    query = select(Subscription).where(Subscription.id == subscription.id).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one()
