"""One dunning retry: charge a due invoice again, as ``POST /v1/invoices/{id}/pay`` would.

Apart from ``dunning`` because it pays through ``InvoiceLifecycle``, whose payment path leads
back to settlement, which calls ``dunning``.
"""

from __future__ import annotations

from datetime import datetime

from litestar.exceptions import HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.dunning import follow, schedule
from billplane.events.emit import emit
from billplane.invoices.lifecycle import InvoiceLifecycle
from billplane.invoices.models import Invoice
from billplane.invoices.repository import InvoiceRepository
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.invoices.schemas import InvoicePay
from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.queue import JobQueue
from billplane.sync.writer import OutboxWriter


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
    """Charge a due invoice again (``InvoiceLifecycle.pay``: a pending payment and its outbox row).

    False when it is not due any more (paid, voided, rescheduled, a payment in flight) or another
    worker holds it. A retry that cannot even be attempted (no payment method left, no account)
    counts as a failed attempt: the schedule goes on, and the final action comes as it would.
    """
    query = select(Invoice).where(Invoice.id == invoice_id).with_for_update(skip_locked=True)
    invoice = (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
    if (
        invoice is None
        or invoice.status != "open"
        or invoice.next_payment_attempt_at is None
        or invoice.next_payment_attempt_at > now
        or await InvoiceRepository(session=session).has_pending_payment(invoice.id)
    ):
        return False
    tenant_id, schema = tenant
    lifecycle = InvoiceLifecycle(session, lambda: OutboxWriter(session, tenant_id, schema, queue, accounts, defaults))
    try:
        async with session.begin_nested():
            await lifecycle.pay(invoice.id, InvoicePay())
    except HTTPException:
        await session.refresh(invoice)
        invoice.attempt_count += 1
        await schedule(session, invoice)
        await session.flush()
        await session.refresh(invoice)
        await emit(session, "invoice.payment_failed", "invoice", invoice.id, InvoiceView.of(invoice))
        await follow(session, invoice, "failed")
    return True
