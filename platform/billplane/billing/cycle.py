"""Moving subscriptions across their period ends: what happens at each boundary, and its invoice.

At each boundary up to "now" (several, when catching up after downtime), in order: a scheduled
cancellation ends it; a pause that reached ``resume_at`` ends; a pending change applies; a trial that
ended turns ``active``; then the new period is billed in advance, with the ended period's metered
usage in arrears. Each period is invoiced at most once: the invoice insert conflicts on
``uq_invoices_subscription_cycle`` (subscription, period start) if anything billed it already.

A run advances a tenant's due subscriptions together, in one transaction: the boundaries are
worked out in memory, then written with a few multi-row statements (subscriptions, invoices, their
lines, events) instead of a dozen round trips per subscription, which is what a run spent its time
on (docs/performance.md, "Billing runs").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.invoicing import Draft, Finalized, write_finalized
from billplane.billing.locked import LockedSubscription
from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan
from billplane.events.emit import WEBHOOKS_CHANNEL
from billplane.events.types import MATCHES_SQL
from billplane.pricing import LineDraft, Period, PlanPricing, UsageValue, metered_usage, period_lines, total
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.subscriptions.periods import add_interval
from billplane.subscriptions.schemas import Subscription as SubscriptionView

# States whose periods still turn over (paused ones turn over without invoices).
TURNING = ("trialing", "active", "past_due", "paused")
_MAX_CATCH_UP = 1000  # boundaries per subscription per run: a daily plan down for years stops here
# A run's locked rows, or a test clock's ORM objects: the rules below read and change the same attributes.
Turning = Subscription | LockedSubscription

# ``billplane.events.emit.emit`` for many events in one statement: events are numbered in the
# order given (webhooks are delivered per object in event order), deliveries queued likewise.
_EMIT_ALL = text(
    "WITH e AS (INSERT INTO events (type, object_type, object_id, data) "
    "SELECT t, o, i, d::jsonb FROM unnest(CAST(:types AS text[]), CAST(:objects AS text[]), "
    "CAST(:ids AS bigint[]), CAST(:data AS text[])) WITH ORDINALITY AS u(t, o, i, d, n) ORDER BY n "
    "RETURNING id, type), "
    "queued AS (INSERT INTO webhook_deliveries (endpoint_id, event_id) "
    f"SELECT w.id, e.id FROM e JOIN webhook_endpoints w ON w.status = 'enabled' AND {MATCHES_SQL} ORDER BY e.id "
    "RETURNING 1) "
    f"SELECT pg_notify('{WEBHOOKS_CHANNEL}', current_schema()) FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued"
)

# What crossing a boundary can change on a subscription (besides updated_at), and its SQL type.
_SUBSCRIPTION_COLUMNS = {
    "id": "bigint",
    "status": "text",
    "plan_id": "bigint",
    "pending_plan_id": "bigint",
    "quantity": "integer",
    "pending_quantity": "integer",
    "current_period_start": "timestamptz",
    "current_period_end": "timestamptz",
    "canceled_at": "timestamptz",
    "ended_at": "timestamptz",
    "paused_at": "timestamptz",
    "resume_at": "timestamptz",
}
_UPDATE_SUBSCRIPTIONS = text(
    "UPDATE subscriptions AS s SET "
    + ", ".join(f"{name} = u.{name}" for name in _SUBSCRIPTION_COLUMNS if name != "id")
    + ", updated_at = now() FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _SUBSCRIPTION_COLUMNS.items())
    + f") AS u({', '.join(_SUBSCRIPTION_COLUMNS)}) WHERE s.id = u.id"
)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    object_type: str
    object_id: int
    data: Any  # the object as the API shows it


async def emit_all(session: AsyncSession, events: Sequence[Event]) -> None:
    """Record ``events`` in order, in the caller's transaction, as ``emit`` records one."""
    if not events:
        return
    # Straight to JSON: the same text ``emit`` stores (msgspec.to_builtins, then the driver's json).
    encode = msgspec.json.Encoder().encode
    await session.execute(
        _EMIT_ALL,
        {
            "types": [event.type for event in events],
            "objects": [event.object_type for event in events],
            "ids": [event.object_id for event in events],
            "data": [encode(event.data).decode() for event in events],
        },
    )


@dataclass(slots=True)
class Outcome:
    invoices: list[Finalized] = field(default_factory=list)  # new, finalized, in id order
    boundaries: int = 0


@dataclass(slots=True)
class _Batch:
    session: AsyncSession
    plans: dict[int, Plan]
    pending: dict[int, list[InvoiceItem]]  # proration items not yet on an invoice, per subscription
    pricing: dict[int, PlanPricing] = field(default_factory=dict)  # per plan id, built once
    drafts: list[Draft] = field(default_factory=list)
    # What happened, in order: invoice drafts and subscription events (type, id, view).
    timeline: list[Draft | tuple[str, int, SubscriptionView]] = field(default_factory=list)
    crossed: dict[int, Turning] = field(default_factory=dict)

    def pricing_of(self, plan: Plan) -> PlanPricing:
        pricing = self.pricing.get(plan.id)
        if pricing is None:
            pricing = self.pricing[plan.id] = PlanPricing.of(plan)
        return pricing


async def advance(session: AsyncSession, subscription: Turning, now: datetime) -> Outcome:
    """Every boundary of ``subscription`` (locked by the caller) up to ``now``."""
    return await advance_all(session, [subscription], now)


async def advance_all(session: AsyncSession, subscriptions: Sequence[Turning], now: datetime) -> Outcome:
    """Every boundary of each of ``subscriptions`` (one tenant's, locked by the caller) up to ``now``,
    the transaction's ``now()``, with the new invoices finalized; returns them in id order."""
    outcome = Outcome()
    if not subscriptions:
        return outcome
    pending = await _pending_items(session, [subscription.id for subscription in subscriptions])
    batch = _Batch(session, await _plans(session, subscriptions), pending)
    # Not flushed by the unit of work on the next query: one UPDATE writes them all.
    with session.no_autoflush:
        for subscription in subscriptions:
            crossed = 0
            while (
                subscription.status in TURNING
                and subscription.current_period_start is not None
                and subscription.current_period_end is not None
                and subscription.current_period_end <= now
                and crossed < _MAX_CATCH_UP
            ):
                crossed += 1
                await _cross(batch, subscription)
                # What the column's onupdate now() writes at the flush: the event shows it without a reload.
                subscription.updated_at = now
                batch.crossed[subscription.id] = subscription
                view = SubscriptionView.of(cast("Subscription", subscription))
                batch.timeline.append((f"subscription.{_event(subscription)}", subscription.id, view))
            outcome.boundaries += crossed
        await _write_subscriptions(session, list(batch.crossed.values()))
    outcome.invoices = await write_finalized(session, batch.drafts, now)
    # In the order drafting then finalizing emitted them: the boundaries' events, then each invoice's
    # finalization in id order.
    events: list[Event] = []
    for entry in batch.timeline:
        if isinstance(entry, Draft):
            if entry.invoice_id is not None:
                events.append(Event("invoice.created", "invoice", entry.invoice_id, _invoice_data(entry)))
        else:
            events.append(Event(entry[0], "subscription", entry[1], entry[2]))
    for invoice in outcome.invoices:
        events += [Event(kind, "invoice", invoice.id, view) for kind, view in invoice.events]
    await emit_all(session, events)
    return outcome


async def _write_subscriptions(session: AsyncSession, changed: list[Turning]) -> None:
    """One UPDATE for every subscription that crossed a boundary (the unit of work would send one
    per row), after which ORM objects leave the session: it must not write them a second time."""
    if not changed:
        return
    values: dict[str, list[Any]] = {name: [] for name in _SUBSCRIPTION_COLUMNS}
    for subscription in changed:
        for name in _SUBSCRIPTION_COLUMNS:
            values[name].append(getattr(subscription, name))
    await session.execute(_UPDATE_SUBSCRIPTIONS, values)
    for subscription in changed:
        if isinstance(subscription, Subscription):
            session.expunge(subscription)


def _event(subscription: Turning) -> str:
    return "canceled" if subscription.status == "canceled" else "updated"


async def _cross(batch: _Batch, subscription: Turning) -> None:
    assert subscription.current_period_start is not None  # noqa: S101 - checked by the loop
    assert subscription.current_period_end is not None  # noqa: S101
    ended = Period(subscription.current_period_start, subscription.current_period_end)
    boundary = ended.end
    ended_plan = await _plan(batch, subscription.plan_id)
    was_trial = subscription.status == "trialing"
    was_paused = subscription.status == "paused"
    usage = None if was_trial or was_paused else await _usage(batch, subscription, ended_plan, ended)
    if subscription.cancel_at_period_end:
        subscription.status, subscription.canceled_at, subscription.ended_at = "canceled", boundary, boundary
        if usage:  # the last period's usage is still owed
            _draft(batch, subscription, ended_plan, ended, lines=usage)
        return
    if was_paused and subscription.resume_at is not None and subscription.resume_at <= boundary:
        subscription.status, subscription.paused_at, subscription.resume_at = "active", None, None
    if subscription.pending_plan_id is not None:
        subscription.plan_id, subscription.pending_plan_id = subscription.pending_plan_id, None
    if subscription.pending_quantity is not None:
        subscription.quantity, subscription.pending_quantity = subscription.pending_quantity, None
    if subscription.status == "trialing" and subscription.trial_end is not None and subscription.trial_end <= boundary:
        subscription.status = "active"
    plan = await _plan(batch, subscription.plan_id)
    following = Period(boundary, add_interval(boundary, plan.billing_interval, plan.interval_count))
    subscription.current_period_start, subscription.current_period_end = following.start, following.end
    if subscription.status == "paused":
        return  # no invoice while paused
    advance_lines = (
        []
        if plan.pricing_model == "metered"
        else period_lines(batch.pricing_of(plan), following, quantity=subscription.quantity)
    )
    if subscription.status == "trialing":
        advance_lines = []  # still in the trial: nothing billed for it
    _draft(batch, subscription, plan, following, lines=[*(usage or []), *advance_lines])


async def _plans(session: AsyncSession, subscriptions: Sequence[Turning]) -> dict[int, Plan]:
    """Every plan the batch may bill, in one query."""
    ids = {s.plan_id for s in subscriptions} | {s.pending_plan_id for s in subscriptions if s.pending_plan_id}
    return {plan.id: plan for plan in (await session.execute(select(Plan).where(Plan.id.in_(ids)))).scalars()}


async def _plan(batch: _Batch, plan_id: int) -> Plan:
    plan = batch.plans.get(plan_id) or await batch.session.get(Plan, plan_id)
    if plan is None:  # plans.id is a foreign key of subscriptions.plan_id
        raise LookupError(f"plan {plan_id} does not exist")
    return plan


async def _usage(batch: _Batch, subscription: Turning, plan: Plan, period: Period) -> list[LineDraft]:
    if plan.pricing_model != "metered":
        return []
    session = batch.session
    query = select(UsageRecord.timestamp, UsageRecord.quantity).where(
        UsageRecord.subscription_id == subscription.id,
        UsageRecord.timestamp >= period.start,
        UsageRecord.timestamp < period.end,
    )
    values = [UsageValue(timestamp, quantity) for timestamp, quantity in (await session.execute(query)).all()]
    pricing = batch.pricing_of(plan)
    return period_lines(pricing, period, usage=metered_usage(pricing, values, period))


def _draft(batch: _Batch, subscription: Turning, plan: Plan, period: Period, *, lines: list[LineDraft]) -> None:
    pending = batch.pending.get(subscription.id, [])
    items = _attachable(pending, total(lines))
    # Taken now, so a later boundary of the same subscription does not take them again. The insert
    # can only skip an invoice whose period is billed already: a subscription locked here crosses
    # each boundary once, so that is a canceled one's last usage invoice, and nothing follows it.
    batch.pending[subscription.id] = [item for item in pending if item not in items]
    draft = Draft(
        subscription.customer_id,
        subscription.id,
        subscription.provider_account_id,
        subscription.payment_method_id,
        plan.currency,
        period,
        lines,
        items,
    )
    batch.drafts.append(draft)
    batch.timeline.append(draft)


async def _pending_items(session: AsyncSession, subscription_ids: list[int]) -> dict[int, list[InvoiceItem]]:
    query = (
        select(InvoiceItem)
        .where(InvoiceItem.subscription_id.in_(subscription_ids), InvoiceItem.invoice_id.is_(None))
        .order_by(InvoiceItem.id)
        .with_for_update()
    )
    pending: dict[int, list[InvoiceItem]] = {}
    for item in (await session.execute(query)).scalars():
        assert item.subscription_id is not None  # noqa: S101 - selected by it
        pending.setdefault(item.subscription_id, []).append(item)
    return pending


def _attachable(items: list[InvoiceItem], base: int) -> list[InvoiceItem]:
    """Every pending charge, and the credits that keep the invoice from going below zero: a credit
    larger than what is due waits, whole, for the invoice after (nothing is paid out)."""
    taken = [item for item in items if item.amount >= 0]
    running = base + sum(item.amount for item in taken)
    for credit in (item for item in items if item.amount < 0):
        if running + credit.amount >= 0:
            taken.append(credit)
            running += credit.amount
    return taken


def _invoice_data(draft: Draft) -> dict[str, object]:
    return {
        "id": draft.invoice_id,
        "customer_id": draft.customer_id,
        "subscription_id": draft.subscription_id,
        "status": "draft",
        "currency": draft.currency,
        "total": draft.amount,
        "period_start": draft.period.start,
        "period_end": draft.period.end,
        "billing_reason": "subscription_cycle",
    }


def billed_by_billplane(provider_billed: frozenset[str]) -> ColumnElement[bool]:
    """Subscriptions billplane bills itself: not held by a provider that bills its own."""
    return or_(Subscription.provider.is_(None), Subscription.provider.not_in(sorted(provider_billed)))
