"""Collecting a billing run's invoice: finalize it (its number), then charge it automatically.

The charge is queued like ``POST /v1/invoices/{id}/pay`` queues it (a pending payment and its
outbox row, in the run's transaction). An invoice that cannot be charged now (no provider account,
no payment method) stays open for the tenant to pay or for dunning to retry; that is not an error
of the run.
"""

from __future__ import annotations

import logging

from litestar.exceptions import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.invoices.lifecycle import InvoiceLifecycle
from billplane.invoices.schemas import InvoiceFinalize, InvoicePay
from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.queue import JobQueue
from billplane.sync.writer import OutboxWriter

logger = logging.getLogger("billplane.billing")


async def collect(
    session: AsyncSession,
    invoice_ids: list[int],
    *,
    tenant: tuple[int, str],
    queue: JobQueue,
    accounts: AccountSource | None,
    defaults: DefaultAccountCache,
) -> None:
    tenant_id, schema = tenant
    lifecycle = InvoiceLifecycle(session, lambda: OutboxWriter(session, tenant_id, schema, queue, accounts, defaults))
    for invoice_id in invoice_ids:
        invoice = await lifecycle.finalize(invoice_id, InvoiceFinalize())
        if invoice.status != "open":
            continue  # nothing due: paid at finalization
        try:
            await lifecycle.pay(invoice_id, InvoicePay())
        except HTTPException as refused:  # refused before anything was written: it stays open
            logger.info("invoice %s of %s stays open: %s", invoice_id, schema, refused.detail)
