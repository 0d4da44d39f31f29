"""One dunning retry: charge a due invoice again, as ``POST /v1/invoices/{id}/pay`` would.

Apart from ``dunning`` because it pays through ``InvoiceLifecycle``, whose payment path leads
back to settlement, which calls ``dunning``.
"""

from __future__ import annotations

from datetime import datetime

from litestar.exceptions import HTTPException
from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.dunning import charge_refused
from billplane.invoices.lifecycle import InvoiceLifecycle
from billplane.invoices.models import Invoice
from billplane.invoices.repository import InvoiceRepository
from billplane.invoices.schemas import InvoicePay
from billplane.payments.models import Payment
from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.queue import JobQueue
from billplane.sync.writer import OutboxWriter


def due(invoice: Invoice, now: datetime) -> bool:
    """Whether dunning charges the open invoice now: its retry is due, or it was never attempted.

    Never attempted: a subscription's invoice with no payment, no failed attempt and no retry
    scheduled, left open because its first charge could not be made (the billing run finalizes
    and charges in one transaction, so an invoice it could charge always has a payment). Its
    first attempt is due at once. Provider-issued invoices are the provider's to collect.
    """
    if invoice.status != "open":
        return False
    if invoice.next_payment_attempt_at is not None:
        return invoice.next_payment_attempt_at <= now
    return invoice.attempt_count == 0 and invoice.subscription_id is not None and invoice.provider_invoice_id is None


def never_attempted() -> ColumnElement[bool]:
    """``due``'s never attempted invoices, in SQL, with no payment of any kind (an attempt made by
    hand is an attempt): what a clock's step charges for the first time, and what deleting a
    clock settles (``clocks_service``)."""
    return and_(
        Invoice.next_payment_attempt_at.is_(None),
        Invoice.attempt_count == 0,
        Invoice.subscription_id.is_not(None),
        Invoice.provider_invoice_id.is_(None),
        ~exists().where(Payment.invoice_id == Invoice.id),
    )


async def retry(
    session: AsyncSession,
    invoice_id: int,
    now: datetime,
    *,
    tenant: tuple[int, str],
    queue: JobQueue,
    accounts: AccountSource | None,
    defaults: DefaultAccountCache,
) -> bool:
    """Charge a due invoice (``InvoiceLifecycle.pay``: a pending payment and its outbox row).

    False when it is not due any more (paid, voided, rescheduled, a payment in flight, a payment
    made meanwhile) or another worker holds it. A charge that cannot even be attempted (no payment
    method, no account) counts as a failed attempt (``dunning.charge_refused``): the schedule goes
    on, and the final action comes as it would.
    """
    query = select(Invoice).where(Invoice.id == invoice_id).with_for_update(skip_locked=True)
    invoice = (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
    if invoice is None or not due(invoice, now):
        return False
    repository = InvoiceRepository(session=session)
    if await repository.has_pending_payment(invoice.id):
        return False
    if invoice.next_payment_attempt_at is None and await repository.has_payment(invoice.id):
        return False  # attempted after all (a payment made by hand): not a first attempt
    tenant_id, schema = tenant
    lifecycle = InvoiceLifecycle(session, lambda: OutboxWriter(session, tenant_id, schema, queue, accounts, defaults))
    try:
        async with session.begin_nested():
            await lifecycle.pay(invoice.id, InvoicePay())
    except HTTPException as refused:
        await charge_refused(session, invoice.id, reason(refused))
    return True


def reason(refused: HTTPException) -> str:
    """Why a charge was refused, as the API would have said it (the field's own message if any)."""
    errors = getattr(refused, "errors", None)
    if isinstance(errors, list) and len(errors) == 1 and isinstance(errors[0], dict):
        return str(errors[0].get("message", refused.detail))
    return str(refused.detail)
