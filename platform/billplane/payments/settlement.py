"""Recording a payment's outcome, whoever learned it: the worker that made the provider call, or
the applier of the provider's later webhook. The invoice a payment pays follows it, and every
change is an event in the same transaction. Refunds: ``billplane.payments.refund_settlement``.

Settled money only moves forward: callers pass only payments still pending (or, for a provider's
own retry, failed payments that now succeeded).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing import dunning
from billplane.billing.clock import now_of_customer
from billplane.events.emit import emit
from billplane.invoices.failures import PaymentFailure, payment_failed
from billplane.invoices.models import Invoice
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.payments import attention
from billplane.payments.models import Payment
from billplane.payments.schemas import Payment as PaymentView
from billplane.plugins.contract import ChargeStatus


async def payment_settled(
    session: AsyncSession,
    payment: Payment,
    status: ChargeStatus,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    """The payment succeeded or failed (``pending`` records nothing); its invoice follows."""
    if status == "pending":
        return
    payment.status = status
    payment.action_required = None
    payment.failure_code = failure_code if status == "failed" else None
    payment.failure_message = failure_message if status == "failed" else None
    await session.flush()
    await session.refresh(payment)
    await emit(session, f"payment.{status}", "payment", payment.id, PaymentView.of(payment))
    await invoice_follows(session, payment, status)


async def invoice_follows(session: AsyncSession, payment: Payment, status: ChargeStatus) -> None:
    """The invoice the payment pays, if billplane issued it, after the payment ``status``: paid (in
    part), or one more failed attempt for dunning."""
    if payment.invoice_id is None:
        return
    invoice = await session.get(Invoice, payment.invoice_id, with_for_update=True, populate_existing=True)
    # A provider's own invoice (a subscription it bills) follows the provider's invoice events instead.
    if invoice is None or invoice.provider_invoice_id is not None:
        return
    owed = invoice.total - invoice.amount_paid if invoice.status in {"open", "uncollectible"} else 0
    if status == "succeeded" and invoice.status not in {"open", "uncollectible"}:
        # Paid already, or voided: the invoice stays as it is (a void one takes no payment), and the
        # money that moved for it is the tenant's to refund or keep.
        if payment.amount > 0:
            await attention.flag(session, payment, paid_twice(invoice, payment, owed))
        return
    if status == "succeeded":
        # Capped: amount_paid never exceeds the total (the table checks it too).
        invoice.amount_paid = min(invoice.total, invoice.amount_paid + payment.amount)
        settled = invoice.amount_paid == invoice.total and invoice.status in {"open", "uncollectible"}
        if settled:
            paid_at = await now_of_customer(session, invoice.customer_id)  # a clocked customer's: its clock's
            invoice.status, invoice.paid_at, invoice.next_payment_attempt_at = "paid", paid_at, None
        change = "invoice.paid" if settled else "invoice.updated"
    else:
        # Dunning decides from attempt_count when (and whether) to try again: next_payment_attempt_at is its own.
        invoice.attempt_count += 1
        await dunning.schedule(session, invoice)
        change = "invoice.payment_failed"
    await session.flush()
    await session.refresh(invoice)
    shown: InvoiceView = InvoiceView.of(invoice)
    if change == "invoice.payment_failed":
        failure = PaymentFailure(code=payment.failure_code, message=payment.failure_message, payment_id=payment.id)
        shown = payment_failed(invoice, failure)
    await emit(session, change, "invoice", invoice.id, shown)
    await dunning.follow(session, invoice, status)
    if status == "succeeded" and payment.amount > owed:
        await attention.flag(session, payment, paid_twice(invoice, payment, owed))


def paid_twice(invoice: Invoice, payment: Payment, owed: int) -> str:
    """Money that moved for an invoice already paid (in part, or voided): a charge thought failed
    that cleared after the invoice was charged again. It is recorded; the tenant decides."""
    return (
        f"invoice {invoice.id} was already paid or closed when this payment succeeded: it owed {owed} and this "
        f"payment took {payment.amount} {payment.currency}, so the customer paid {payment.amount - owed} more "
        "than owed. Refund it (POST /v1/refunds) or keep it by agreement with the customer."
    )
