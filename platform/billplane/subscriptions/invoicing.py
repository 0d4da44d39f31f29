"""The invoices a subscription's own requests issue: its first period's, when it is created, and
its last usage's, when it is canceled now with ``invoice_now``. Every other period is the billing
run's (``billplane.billing.cycle``).

The first period has no period before it whose end could invoice it, so creating the subscription
invoices it in advance (``billing_reason`` ``subscription_create``). Not invoiced at creation: a
trial (nothing is owed until it ends, when the run bills the first paid period), a metered plan (its
usage is billed in arrears when the period ends), and a subscription whose provider bills it (Stripe
and PayPal invoice their own: billplane would charge twice).

An immediate cancellation bills nothing more unless asked (as Stripe's ``invoice_now``): then the
current period's metered usage up to now and the pending proration charges, with the credits that
fit (one of them in part), go on a last invoice (``subscription_update``).

Either way the invoice is written in the request's transaction with the subscription's change and
charged through the outbox (``InvoiceLifecycle.issue``): all of it commits or none, and a crash
charges at most once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import InvalidFieldError
from billplane.billing.credit_split import split_credit
from billplane.billing.driver import driver_of
from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan
from billplane.db.mixins import MAX_ID
from billplane.invoices.lines import MAX_AMOUNT
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.pricing import LineDraft, Period, PlanPricing, PricingError, UsageValue, metered_usage, period_lines
from billplane.pricing import total as lines_total
from billplane.pricing.credits import attachable
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.subscriptions.periods import usage_start


def advance_lines(plan: Plan, period: Period, quantity: int, *, field: str = "quantity") -> list[LineDraft]:
    """What ``period`` bills in advance at ``quantity``; a 422 naming ``field`` for an amount no
    invoice may hold, before anything is written (the run would refuse the invoice every period)."""
    if plan.pricing_model == "metered":
        return []
    try:
        lines = period_lines(PlanPricing.of(plan), period, quantity=quantity)
    except PricingError as exc:
        raise InvalidFieldError(field, str(exc)) from exc
    _check_limit(lines_total(lines), lines, field, f"a period of plan {plan.id} at quantity {quantity}")
    return lines


async def last_usage(
    session: AsyncSession, subscription: Subscription, plan: Plan, now: datetime
) -> tuple[list[LineDraft], list[InvoiceItem]]:
    """What canceling ``subscription`` at ``now`` leaves owed: the metered usage of its current
    period up to ``now`` (a trial's is free), or up to the period's end when that has passed (an
    ``unpaid`` or ``incomplete`` subscription, which the billing run does not move on: nothing
    else bills that period), and its pending invoice items the invoice can take, locked. A 422
    naming ``invoice_now`` when that comes to more than an invoice may hold."""
    start, end = subscription.current_period_start, subscription.current_period_end
    lines: list[LineDraft] = []
    # The part of the period before the trial's end is free, whatever the status says now (a
    # subscription paused during its trial is ``paused``, its trial usage still free), and the part
    # before a change made the plan metered was the plan before's (``periods.usage_start``).
    if start is not None:
        start = usage_start(start, trial_end=subscription.trial_end, metered_since=subscription.metered_since)
    # From the period's very start on (``start <= now``): a test clock stops exactly there, with
    # usage stamped then or a little ahead of it, which nothing else would bill after this.
    if plan.pricing_model == "metered" and start is not None and end is not None and start <= now and start < end:
        # Read to the period's end: ingestion takes a record stamped a little ahead of its clock
        # (usage.rules.CLOCK_SKEW), and after the cancellation nothing else will bill it.
        whole = Period(start, end)
        pricing = PlanPricing.of(plan)
        query = (
            select(UsageRecord.timestamp, UsageRecord.quantity)
            .where(
                UsageRecord.subscription_id == subscription.id,
                UsageRecord.timestamp >= whole.start,
                UsageRecord.timestamp < whole.end,
            )
            .order_by(UsageRecord.timestamp, UsageRecord.id)  # as the billing run reads them ("last")
        )
        values = [UsageValue(timestamp, quantity) for timestamp, quantity in await session.execute(query)]
        # Priced over the whole period (a metered line's amount is its usage's, whatever the span)
        # and shown as the span billed, [start, now]: empty when canceled at the period's start.
        usage = metered_usage(pricing, values, whole)
        lines = [replace(line, period_end=min(now, end)) for line in period_lines(pricing, whole, usage=usage)]
    taken = await take_pending(session, subscription, plan.currency, lines)
    amount = lines_total(lines) + sum(item.amount for item in taken)
    _check_limit(amount, lines, "invoice_now", f"subscription {subscription.id}'s last usage")
    return lines, taken


async def take_pending(
    session: AsyncSession, subscription: Subscription, currency: str, lines: list[LineDraft]
) -> list[InvoiceItem]:
    """The pending items an invoice of ``lines`` for ``subscription`` takes, locked: its own, and
    its customer's own items in ``currency`` (credits left by subscriptions that ended,
    ``billing.customer_credit``; one-off items, ``billing.items_service``); the charges that keep
    it within what an invoice may hold, and credits as far as they bring it to zero (one in part:
    split, the rest stays pending). The caller marks them taken."""
    released = and_(
        InvoiceItem.subscription_id.is_(None),
        InvoiceItem.customer_id == subscription.customer_id,
        InvoiceItem.currency == currency,
    )
    pending = select(InvoiceItem).where(
        InvoiceItem.invoice_id.is_(None), or_(InvoiceItem.subscription_id == subscription.id, released)
    )
    # A customer's item another transaction holds is being taken by another invoice: not this one's.
    query = pending.order_by(InvoiceItem.id).with_for_update(skip_locked=True)
    items = list((await session.scalars(query)).all())
    attached = attachable(items, lines_total(lines), MAX_AMOUNT)
    taken = attached.whole
    if attached.part is not None:  # the part of a credit that brings the invoice to zero; the rest waits
        credit = attached.part
        await session.flush()
        await split_credit(await driver_of(session), credit.id, credit.amount, attached.applied)
        await session.refresh(credit)
        taken = [*taken, credit]
    return taken


def subscription_invoice(
    subscription: Subscription,
    reason: str,
    period: tuple[datetime, datetime],
    lines: list[LineDraft],
    items: list[InvoiceItem],
) -> tuple[Invoice, list[InvoiceLine]]:
    """A draft invoice of the subscription for ``period`` (start, end) and its lines (``lines``, then
    the pending ``items`` it takes), to issue; the caller marks the items taken."""
    invoice = Invoice(
        customer_id=subscription.customer_id,
        subscription_id=subscription.id,
        currency=(lines or items)[0].currency,
        status="draft",
        billing_reason=reason,
        subtotal=0,  # the lines add their amounts (InvoiceRepository.add_lines)
        total=0,
        amount_paid=0,
        attempt_count=0,
        period_start=period[0],
        period_end=period[1],
        metadata_={},
    )
    rows = [_row(line, line.tier) for line in lines] + [_row(item, None) for item in items]
    return invoice, rows


def _row(line: LineDraft | InvoiceItem, tier: int | None) -> InvoiceLine:
    """An invoice line of ``line`` (an invoice item has no tier: prorations are not tiered lines)."""
    return InvoiceLine(
        plan_id=line.plan_id,
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        tier=tier,
        amount=line.amount,
        currency=line.currency,
        period_start=line.period_start,
        period_end=line.period_end,
        proration=line.proration,
    )


def _check_limit(amount: int, lines: list[LineDraft], field: str, what: str) -> None:
    if abs(amount) > MAX_AMOUNT or any(abs(line.amount) > MAX_AMOUNT for line in lines):
        currency = lines[0].currency if lines else ""
        raise InvalidFieldError(
            field, f"{what} comes to {amount} {currency}: over the {MAX_AMOUNT} minor units an invoice may"
        )
    # A line's quantity is a BIGINT column too: written, a larger one would fail the whole request.
    if (quantity := max((abs(line.quantity) for line in lines), default=0)) > MAX_ID:
        raise InvalidFieldError(field, f"{what} has a line of quantity {quantity}: over the {MAX_ID} a line may hold")
