"""The invoice that opens a subscription's first period.

A billing run invoices each period in advance when the one before it ends (``billplane.billing.cycle``);
the first period has none before it, so creating the subscription invoices it, in the create's
transaction: the subscription, its invoice and its charge commit together or not at all, and the
charge is an outbox row performed with its own idempotency key (``billplane.invoices.paying``), so
a crash charges at most once. ``billing_reason`` is ``subscription_create``; the run's invoices,
keyed by the period they open, start at the first period's end.

Not invoiced at creation: a trial (nothing is owed until it ends, when the run bills the first paid
period), a metered plan (its usage is billed in arrears when the period ends), and a subscription
whose provider bills it (Stripe and PayPal invoice their own: billplane would charge twice).
"""

from __future__ import annotations

from billplane.api.problems import InvalidFieldError
from billplane.catalog.models import Plan
from billplane.invoices.lines import MAX_AMOUNT
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.pricing import LineDraft, Period, PlanPricing, PricingError, period_lines, total
from billplane.subscriptions.models import Subscription


def first_period_lines(plan: Plan, period: Period, quantity: int) -> list[LineDraft]:
    """What ``period`` bills in advance at ``quantity``; a 422 naming ``quantity`` for an amount no
    invoice may hold, before anything is written (the run would refuse the invoice every period)."""
    if plan.pricing_model == "metered":
        return []
    try:
        lines = period_lines(PlanPricing.of(plan), period, quantity=quantity)
    except PricingError as exc:
        raise InvalidFieldError("quantity", str(exc)) from exc
    amount = total(lines)
    if amount > MAX_AMOUNT or any(line.amount > MAX_AMOUNT for line in lines):
        raise InvalidFieldError(
            "quantity",
            f"a period of plan {plan.id} at quantity {quantity} comes to {amount} {plan.currency}: "
            f"over the {MAX_AMOUNT} minor units an invoice may",
        )
    return lines


def first_invoice(subscription: Subscription, lines: list[LineDraft]) -> tuple[Invoice, list[InvoiceLine]]:
    """The draft invoice of the subscription's first period, and its lines, to issue."""
    invoice = Invoice(
        customer_id=subscription.customer_id,
        subscription_id=subscription.id,
        currency=lines[0].currency,
        status="draft",
        billing_reason="subscription_create",
        subtotal=0,  # the lines add their amounts (InvoiceRepository.add_lines)
        total=0,
        amount_paid=0,
        attempt_count=0,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        metadata_={},
    )
    rows = [
        InvoiceLine(
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
        for line in lines
    ]
    return invoice, rows
