"""Invoice writes: manual drafts, their lines, and the state machine's actions (``states``).

Never commits: the request owns the transaction. Every action locks the invoice's row first, so
two concurrent actions on one invoice run one after the other and the second sees the first's
result (a second finalize is a 409, not a second number).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property

from litestar.exceptions import HTTPException, NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.api.types import checked_currency
from billplane.billing.clock import now_of_customer
from billplane.billing.dunning import release
from billplane.customers.repository import CustomerRepository
from billplane.events.emit import emit
from billplane.invoices import states
from billplane.invoices.lines import line_rows
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.invoices.paying import charge_invoice
from billplane.invoices.repository import InvoiceRepository
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.invoices.schemas import InvoiceCreate, InvoiceFinalize, InvoicePay, LinesAdd
from billplane.sync.writer import OutboxWriter

logger = logging.getLogger("billplane.invoices")


class InvoiceLifecycle:
    def __init__(self, session: AsyncSession, writer: Callable[[], OutboxWriter]) -> None:
        self.session = session
        self.repository = InvoiceRepository(session=session)
        self._writer = writer

    @cached_property
    def writer(self) -> OutboxWriter:
        # Built on first use: only paying queues provider work.
        return self._writer()

    async def create(self, data: InvoiceCreate) -> Invoice:
        currency = checked_currency(data.currency)
        if await CustomerRepository(session=self.session).get_live(data.customer_id, locked=True) is None:
            # Another tenant's customer looks exactly like one that does not exist.
            raise InvalidFieldError("customer_id", f"no customer {data.customer_id}")
        lines = line_rows(data.lines, currency) if data.lines else []
        invoice = Invoice(
            customer_id=data.customer_id,
            currency=currency,
            status="draft",
            billing_reason="manual",
            subtotal=0,
            total=0,
            amount_paid=0,
            attempt_count=0,
            metadata_=data.metadata,
        )
        self.session.add(invoice)
        await self.session.flush()
        await self.repository.add_lines(invoice, lines)
        return await self._changed(invoice, "invoice.created")

    async def issue(self, invoice: Invoice, lines: list[InvoiceLine]) -> Invoice:
        """Draft, finalize and charge an invoice billplane bills on its own (a subscription's first
        period, its last usage: ``billplane.subscriptions.invoicing``), as a billing run issues
        one: ``invoice.created``, ``invoice.finalized`` (and ``invoice.paid`` for an invoice of 0),
        and a queued charge. A charge that cannot be made now (no provider account, no payment
        method) leaves it open, never attempted: dunning makes its first attempt
        (``billing.dunning_retry.due``), as for a run's invoice."""
        self.session.add(invoice)
        await self.session.flush()
        await self.repository.add_lines(invoice, lines)
        await self._changed(invoice, "invoice.created")
        await self.finalize(invoice.id, InvoiceFinalize())
        if invoice.status == "open":
            try:
                async with self.session.begin_nested():
                    await charge_invoice(self.session, self.writer, invoice, None)
            except HTTPException as refused:
                logger.info("invoice %s stays open for dunning: %s", invoice.id, refused.detail)
        return invoice

    async def add_lines(self, invoice_id: int, data: LinesAdd) -> Invoice:
        invoice = await self._locked(invoice_id)
        if invoice.status != "draft":
            raise ConflictError(f"lines can be added to draft invoices only; this one is {invoice.status}")
        await self.repository.add_lines(invoice, line_rows(data.lines, invoice.currency, invoice))
        return await self._changed(invoice, "invoice.updated")

    async def finalize(self, invoice_id: int, data: InvoiceFinalize) -> Invoice:
        """draft -> open with the next gapless number; an invoice of 0 is paid at once (nothing to collect)."""
        invoice = await self._locked(invoice_id)
        invoice.status = states.target("finalize", invoice.status)
        now = await now_of_customer(self.session, invoice.customer_id)  # a clocked customer's: its clock's
        invoice.number = f"INV-{await self.repository.take_number()}"
        invoice.finalized_at, invoice.due_at = now, now + timedelta(days=data.days_until_due)
        await self._changed(invoice, "invoice.finalized")
        if invoice.amount_due == 0:
            invoice.status, invoice.paid_at = states.target("pay", invoice.status), now
            await self._changed(invoice, "invoice.paid")
        return invoice

    async def pay(self, invoice_id: int, data: InvoicePay) -> Invoice:
        """Charge what is due through the provider, asynchronously; the invoice is returned still open.

        Nothing is due (a credit covered it): paid at once, nothing charged.
        """
        invoice = await self._locked(invoice_id)
        paid = states.target("pay", invoice.status)
        if await self.repository.has_pending_payment(invoice.id):
            raise ConflictError("a payment of this invoice is in progress; wait for its outcome")
        if invoice.amount_due == 0:
            invoice.status, invoice.paid_at = paid, await now_of_customer(self.session, invoice.customer_id)
            return await self._changed(invoice, "invoice.paid")
        await charge_invoice(self.session, self.writer, invoice, data.payment_method_id)
        return invoice

    async def void(self, invoice_id: int) -> Invoice:
        invoice = await self._locked(invoice_id)
        voided = states.target("void", invoice.status)
        if await self.repository.has_pending_payment(invoice.id):
            raise ConflictError("a payment of this invoice is in progress; wait for its outcome before voiding")
        now = await now_of_customer(self.session, invoice.customer_id)
        invoice.status, invoice.voided_at, invoice.next_payment_attempt_at = voided, now, None
        await self._changed(invoice, "invoice.voided")
        await release(self.session, invoice)  # its dunning ends (after the invoice's own event)
        return invoice

    async def mark_uncollectible(self, invoice_id: int) -> Invoice:
        invoice = await self._locked(invoice_id)
        invoice.status = states.target("mark_uncollectible", invoice.status)
        invoice.next_payment_attempt_at = None
        await self._changed(invoice, "invoice.marked_uncollectible")
        await release(self.session, invoice)
        return invoice

    async def _locked(self, invoice_id: int) -> Invoice:
        invoice = await self.repository.lock(invoice_id)
        if invoice is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no invoice {invoice_id}")
        if invoice.provider_invoice_id is not None:
            raise ConflictError(
                f"this invoice was issued by the {invoice.provider} account {invoice.provider_account_id}: "
                "it changes there, and billplane mirrors it"
            )
        return invoice

    async def _changed(self, invoice: Invoice, event: str) -> Invoice:
        """Write the change, reload what the database set (updated_at, lines) and record the event."""
        await self.session.flush()
        await self.session.refresh(invoice)
        await emit(self.session, event, "invoice", invoice.id, InvoiceView.of(invoice))
        return invoice
