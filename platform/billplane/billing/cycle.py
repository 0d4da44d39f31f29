"""Moving one subscription across its period ends: what happens at each boundary, and its invoice.

At each boundary up to "now" (several, when catching up after downtime), in order: a scheduled
cancellation ends it; a pause that reached ``resume_at`` ends; a pending change applies; a trial that
ended turns ``active``; then the new period is billed in advance, with the ended period's metered
usage in arrears. Each period is invoiced at most once: the invoice insert conflicts on
``uq_invoices_subscription_cycle`` (subscription, period start) if anything billed it already.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan
from billplane.events.emit import emit
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.pricing import LineDraft, Period, PlanPricing, UsageValue, metered_usage, period_lines, total
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.subscriptions.periods import add_interval
from billplane.subscriptions.schemas import Subscription as SubscriptionView

# States whose periods still turn over (paused ones turn over without invoices).
TURNING = ("trialing", "active", "past_due", "paused")
_MAX_CATCH_UP = 1000  # boundaries per subscription per run: a daily plan down for years stops here


@dataclass(slots=True)
class Outcome:
    invoices: list[int] = field(default_factory=list)
    boundaries: int = 0


async def advance(session: AsyncSession, subscription: Subscription, now: datetime) -> Outcome:
    """Every boundary of ``subscription`` (locked by the caller) up to ``now``."""
    outcome = Outcome()
    while (
        subscription.status in TURNING
        and subscription.current_period_start is not None
        and subscription.current_period_end is not None
        and subscription.current_period_end <= now
        and outcome.boundaries < _MAX_CATCH_UP
    ):
        outcome.boundaries += 1
        await _cross(session, subscription, outcome)
        await session.flush()
        await session.refresh(subscription)
        await emit(
            session,
            f"subscription.{_event(subscription)}",
            "subscription",
            subscription.id,
            SubscriptionView.of(subscription),
        )
    return outcome


def _event(subscription: Subscription) -> str:
    return "canceled" if subscription.status == "canceled" else "updated"


async def _cross(session: AsyncSession, subscription: Subscription, outcome: Outcome) -> None:
    assert subscription.current_period_start is not None  # noqa: S101 - checked by the loop
    assert subscription.current_period_end is not None  # noqa: S101
    ended = Period(subscription.current_period_start, subscription.current_period_end)
    boundary = ended.end
    ended_plan = await _plan(session, subscription.plan_id)
    was_trial = subscription.status == "trialing"
    was_paused = subscription.status == "paused"
    usage = None if was_trial or was_paused else await _usage(session, subscription, ended_plan, ended)
    if subscription.cancel_at_period_end:
        subscription.status, subscription.canceled_at, subscription.ended_at = "canceled", boundary, boundary
        if usage:  # the last period's usage is still owed
            await _invoice(session, subscription, ended_plan, ended, lines=usage, outcome=outcome)
        return
    if was_paused and subscription.resume_at is not None and subscription.resume_at <= boundary:
        subscription.status, subscription.paused_at, subscription.resume_at = "active", None, None
    if subscription.pending_plan_id is not None:
        subscription.plan_id, subscription.pending_plan_id = subscription.pending_plan_id, None
    if subscription.pending_quantity is not None:
        subscription.quantity, subscription.pending_quantity = subscription.pending_quantity, None
    if subscription.status == "trialing" and subscription.trial_end is not None and subscription.trial_end <= boundary:
        subscription.status = "active"
    plan = await _plan(session, subscription.plan_id)
    following = Period(boundary, add_interval(boundary, plan.billing_interval, plan.interval_count))
    subscription.current_period_start, subscription.current_period_end = following.start, following.end
    if subscription.status == "paused":
        return  # no invoice while paused
    advance_lines = (
        []
        if plan.pricing_model == "metered"
        else period_lines(PlanPricing.of(plan), following, quantity=subscription.quantity)
    )
    if subscription.status == "trialing":
        advance_lines = []  # still in the trial: nothing billed for it
    await _invoice(session, subscription, plan, following, lines=[*(usage or []), *advance_lines], outcome=outcome)


async def _plan(session: AsyncSession, plan_id: int) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None:  # plans.id is a foreign key of subscriptions.plan_id
        raise LookupError(f"plan {plan_id} does not exist")
    return plan


async def _usage(session: AsyncSession, subscription: Subscription, plan: Plan, period: Period) -> list[LineDraft]:
    if plan.pricing_model != "metered":
        return []
    query = select(UsageRecord.timestamp, UsageRecord.quantity).where(
        UsageRecord.subscription_id == subscription.id,
        UsageRecord.timestamp >= period.start,
        UsageRecord.timestamp < period.end,
    )
    values = [UsageValue(timestamp, quantity) for timestamp, quantity in (await session.execute(query)).all()]
    pricing = PlanPricing.of(plan)
    return period_lines(pricing, period, usage=metered_usage(pricing, values, period))


async def _invoice(
    session: AsyncSession,
    subscription: Subscription,
    plan: Plan,
    period: Period,
    *,
    lines: list[LineDraft],
    outcome: Outcome,
) -> None:
    items = _attachable(await _pending_items(session, subscription.id), total(lines))
    amount = total(lines) + sum(item.amount for item in items)
    values = {
        "customer_id": subscription.customer_id,
        "subscription_id": subscription.id,
        "status": "draft",
        "currency": plan.currency,
        "subtotal": amount,
        "total": amount,
        "period_start": period.start,
        "period_end": period.end,
        "billing_reason": "subscription_cycle",
    }
    statement = (
        insert(Invoice)
        .values(values)
        .on_conflict_do_nothing(
            index_elements=["subscription_id", "period_start"],
            index_where=Invoice.billing_reason == "subscription_cycle",
        )
        .returning(Invoice.id)
    )
    invoice_id = (await session.execute(statement)).scalar_one_or_none()
    if invoice_id is None:
        return  # billed already (another worker, or an earlier run that crashed after its commit)
    for line in lines:
        session.add(
            InvoiceLine(
                invoice_id=invoice_id,
                plan_id=line.plan_id,
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                tier=line.tier,
                amount=line.amount,
                currency=line.currency,
                period_start=line.period_start,
                period_end=line.period_end,
                proration=line.proration,
            )
        )
    for item in items:
        item.invoice_id = invoice_id
        session.add(
            InvoiceLine(
                invoice_id=invoice_id,
                plan_id=item.plan_id,
                description=item.description,
                quantity=item.quantity,
                unit_amount=item.unit_amount,
                tier=None,
                amount=item.amount,
                currency=item.currency,
                period_start=item.period_start,
                period_end=item.period_end,
                proration=item.proration,
            )
        )
    await session.flush()
    invoice = await session.get(Invoice, invoice_id)
    await emit(session, "invoice.created", "invoice", invoice_id, _invoice_data(invoice))
    outcome.invoices.append(invoice_id)


async def _pending_items(session: AsyncSession, subscription_id: int) -> list[InvoiceItem]:
    query = (
        select(InvoiceItem)
        .where(InvoiceItem.subscription_id == subscription_id, InvoiceItem.invoice_id.is_(None))
        .order_by(InvoiceItem.id)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


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


def _invoice_data(invoice: Invoice | None) -> dict[str, object]:
    if invoice is None:
        return {}
    return {
        "id": invoice.id,
        "customer_id": invoice.customer_id,
        "subscription_id": invoice.subscription_id,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": invoice.total,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "billing_reason": invoice.billing_reason,
    }
