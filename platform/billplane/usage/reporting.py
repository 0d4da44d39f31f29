"""The ``usage.report`` outbox operation: one usage record reported to a provider that bills usage.

Queued in the transaction that stores the record, for subscriptions mirrored to an account whose
plugin declares the ``usage`` capability. The record's id travels as ``UsageReport.usage_record_id``
(the provider counts one id once, whatever the idempotency key) and the call carries the outbox
row's key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers.models import ProviderCustomer
from billplane.db.job_owner import owned_session
from billplane.plugins.contract import UsageReport
from billplane.plugins.errors import ProviderError
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.sync import faults
from billplane.sync.attempt import Attempt, NotReadyError
from billplane.sync.models import OutboxEntry, ProviderPlan
from billplane.sync.repository import OutboxRepository


async def _subscription_create_pending(session: AsyncSession, subscription_id: int, account_id: int) -> bool:
    query = select(OutboxEntry.id).where(
        OutboxEntry.kind == "subscription.create",
        OutboxEntry.object_id == subscription_id,
        OutboxEntry.provider_account_id == account_id,
        OutboxEntry.status == "pending",
    )
    return (await session.execute(query.limit(1))).first() is not None


async def _report(attempt: Attempt) -> UsageReport | None:
    """What to send, None if the record is gone; raises while the provider lacks the subscription.

    The call about to be made is counted in the same transaction, committed before it: a worker
    that dies during the call leaves the count, which ``refuse_forgotten_key`` reads when the row
    comes back (Stripe keeps a meter event's identifier about 24 hours)."""
    account = attempt.account
    async with attempt.read() as session:
        query = (
            select(UsageRecord, Subscription)
            .join(Subscription, Subscription.id == UsageRecord.subscription_id)
            .where(UsageRecord.id == attempt.row.object_id)
        )
        found = (await session.execute(query)).one_or_none()
        if found is None:
            return None
        record, subscription = found
        if subscription.provider_subscription_id is None or subscription.provider_account_id != account.id:
            # Read the pending create first: see operations.create_subscription for why the order matters.
            if await _subscription_create_pending(session, subscription.id, account.id):
                raise NotReadyError("waiting for the subscription to be created at the provider")
            raise ProviderError("the subscription is not at this provider account: sync the subscription first")
        customer = await session.scalar(
            select(ProviderCustomer.provider_customer_id).where(
                ProviderCustomer.customer_id == subscription.customer_id,
                ProviderCustomer.provider_account_id == account.id,
            )
        )
        price = await session.scalar(
            select(ProviderPlan.provider_price_id).where(
                ProviderPlan.plan_id == subscription.plan_id, ProviderPlan.provider_account_id == account.id
            )
        )
        if customer is None or price is None:
            raise ProviderError("the subscription's customer or price is not at this provider account")
        attempt.refuse_forgotten_key(then="the record may not have been reported; it is not counted twice")
        await OutboxRepository(session).count_call(attempt.row)
    return UsageReport(
        usage_record_id=record.id,
        plan_id=subscription.plan_id,
        provider_subscription_id=subscription.provider_subscription_id,
        provider_customer_id=customer,
        provider_price_id=price,
        quantity=record.quantity,
        timestamp=record.timestamp,
    )


async def report_usage(attempt: Attempt) -> None:
    report = await _report(attempt)
    if report is not None:
        await attempt.account.adapter.report_usage(report, idempotency_key=attempt.key())
    await _finish(attempt, called=report is not None)


async def _finish(attempt: Attempt, *, called: bool) -> None:
    """Mark the row done. Not ``attempt.finish()``: a usage record has no sync status to refresh
    (``OutboxRepository.refresh_object`` knows customers and subscriptions only)."""
    if called:
        faults.checkpoint(faults.AFTER_PROVIDER_CALL)
    async with owned_session(attempt.database, attempt.ref.tenant_id, attempt.ref.schema) as session:
        await OutboxRepository(session).finish(attempt.row)
    attempt.finished = True
