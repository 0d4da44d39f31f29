"""Outbox operations that mirror a subscription's lifecycle to its provider: change, pause,
resume, cancel, taking a cancellation back, and its metadata. Each waits for the subscription's create to have
run, then sends the state as it is when the row runs (a pause taken back before its row ran
pauses nothing), so rows that queue up converge on the latest state.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.plugins.contract import (
    CancelUndoAdapter,
    ProrationPolicy,
    SubscriptionChange,
    SubscriptionMetadataAdapter,
)
from billplane.plugins.errors import UnsupportedOperationError
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.sync.attempt import Attempt, NotReadyError
from billplane.sync.models import OutboxEntry
from billplane.sync.operations import SYNC_FIELDS, Operation, done_first, provider_price
from billplane.webhooks.object_events import subscription_emitted


async def _create_waiting(session: AsyncSession, subscription_id: int, account_id: int) -> bool:
    query = select(OutboxEntry.id).where(
        OutboxEntry.kind == "subscription.create",
        OutboxEntry.object_id == subscription_id,
        OutboxEntry.provider_account_id == account_id,
        OutboxEntry.status == "pending",
    )
    return (await session.execute(query.limit(1))).first() is not None


async def _mirrored(attempt: Attempt) -> Subscription | None:
    """The subscription if it exists at this account; None (row done, nothing to call) if it never will."""
    async with attempt.read() as session:
        subscription = await session.get(Subscription, attempt.row.object_id)
        # Waiting first, as for the create itself: the create's commit records the provider id.
        waiting = await _create_waiting(session, attempt.row.object_id, attempt.account.id)
    if subscription is None or subscription.provider_account_id != attempt.account.id:
        return None
    if subscription.provider_subscription_id is None:
        if waiting:
            raise NotReadyError("waiting for the subscription to be created at the provider")
        return None  # never created there (its create failed): a manual sync sends the current state
    return subscription


async def _skip(attempt: Attempt) -> None:
    async with attempt.finish(called=False):
        return


def _update(proration: ProrationPolicy) -> Operation:
    async def update_subscription(attempt: Attempt) -> None:
        subscription = await _mirrored(attempt)
        if subscription is None or subscription.provider_subscription_id is None:
            return await _skip(attempt)
        price = await provider_price(attempt, subscription.plan_id)
        change = SubscriptionChange(provider_price_id=price, quantity=subscription.quantity, proration=proration)
        state = await attempt.account.adapter.update_subscription(
            subscription.provider_subscription_id, change, idempotency_key=attempt.key()
        )
        async with attempt.finish() as session:
            # Locked, as it is now: see ``operations.create_subscription``.
            row = await session.get(Subscription, subscription.id, with_for_update=True, populate_existing=True)
            # The provider may ask the customer to approve the change (PayPal): show its link, an
            # event when the API shows it changed (the same link again is none).
            if row is not None and state.next_action is not None:
                before = SubscriptionView.of(row)
                row.next_action_type, row.next_action_url = state.next_action.type, state.next_action.url
                await done_first(session, attempt)
                await subscription_emitted(session, row, before, ignoring=SYNC_FIELDS)
        return None

    return update_subscription


async def pause_subscription(attempt: Attempt) -> None:
    subscription = await _mirrored(attempt)
    if subscription is None or subscription.provider_subscription_id is None or subscription.status != "paused":
        return await _skip(attempt)  # resumed (or ended) again before this ran: nothing to pause
    await attempt.account.adapter.pause_subscription(
        subscription.provider_subscription_id, idempotency_key=attempt.key()
    )
    async with attempt.finish():
        pass
    return None


async def resume_subscription(attempt: Attempt) -> None:
    subscription = await _mirrored(attempt)
    if subscription is None or subscription.provider_subscription_id is None or subscription.status == "paused":
        return await _skip(attempt)
    await attempt.account.adapter.resume_subscription(
        subscription.provider_subscription_id, idempotency_key=attempt.key()
    )
    async with attempt.finish():
        pass
    return None


async def cancel_subscription(attempt: Attempt) -> None:
    """Cancel at the provider: now if billplane ended it, else at the period's end if asked to."""
    subscription = await _mirrored(attempt)
    if subscription is None or subscription.provider_subscription_id is None:
        return await _skip(attempt)
    ended = subscription.status in {"canceled", "incomplete_expired"}
    if not ended and not subscription.cancel_at_period_end:
        return await _skip(attempt)  # the cancellation was taken back before this ran
    await attempt.account.adapter.cancel_subscription(
        subscription.provider_subscription_id, at_period_end=not ended, idempotency_key=attempt.key()
    )
    async with attempt.finish():
        pass  # the local state is billplane's decision; the provider's webhooks confirm it
    return None


async def undo_cancel(attempt: Attempt) -> None:
    """Take back a cancellation at the period's end, unless it was scheduled again (or the
    subscription ended) before this ran: the ``subscription.cancel`` row queued then sends that."""
    subscription = await _mirrored(attempt)
    if subscription is None or subscription.provider_subscription_id is None:
        return await _skip(attempt)
    if subscription.cancel_at_period_end or subscription.status in {"canceled", "incomplete_expired"}:
        return await _skip(attempt)
    adapter = attempt.account.adapter
    if not isinstance(adapter, CancelUndoAdapter):  # the API refuses this for such a provider
        raise UnsupportedOperationError("undo_cancel", f"{attempt.account.provider} cannot take back a cancellation")
    await adapter.undo_cancel(subscription.provider_subscription_id, idempotency_key=attempt.key())
    async with attempt.finish():
        pass
    return None


async def update_metadata(attempt: Attempt) -> None:
    """Send the subscription's metadata as it is now (rows queued by several edits send the last)."""
    subscription = await _mirrored(attempt)
    if subscription is None or subscription.provider_subscription_id is None:
        return await _skip(attempt)
    adapter = attempt.account.adapter
    if not isinstance(adapter, SubscriptionMetadataAdapter):  # such an account gets no row
        raise UnsupportedOperationError(
            "subscription_metadata", f"{attempt.account.provider} keeps no subscription metadata"
        )
    await adapter.update_subscription_metadata(
        subscription.provider_subscription_id, dict(subscription.metadata_), idempotency_key=attempt.key()
    )
    async with attempt.finish():
        pass
    return None


OPERATIONS: dict[str, Operation] = {
    "subscription.update": _update("immediate"),
    "subscription.update_unprorated": _update("none"),
    "subscription.metadata": update_metadata,
    "subscription.pause": pause_subscription,
    "subscription.resume": resume_subscription,
    "subscription.cancel": cancel_subscription,
    "subscription.undo_cancel": undo_cancel,
}
