"""All SQL for invoices and their lines."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.dialects.postgresql import insert

from billplane.billing.models import InvoiceCounter
from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.payments.models import Payment


@dataclass(frozen=True, slots=True)
class InvoiceFilters:
    customer_id: int | None = None
    subscription_id: int | None = None
    status: str | None = None


class InvoiceRepository(TenantRepository[Invoice]):
    """Lines come with their invoices: `Invoice.lines` loads with one extra query per batch of invoices."""

    model_type = Invoice

    async def page_matching(self, filters: InvoiceFilters, *, after: int | None, limit: int) -> list[Invoice]:
        where: list[ColumnElement[bool]] = []
        if filters.customer_id is not None:
            where.append(Invoice.customer_id == filters.customer_id)
        if filters.subscription_id is not None:
            where.append(Invoice.subscription_id == filters.subscription_id)
        if filters.status is not None:
            where.append(Invoice.status == filters.status)
        return await self.page(*where, after=after, limit=limit)

    async def lock(self, invoice_id: int) -> Invoice | None:
        """The invoice, row-locked until the transaction ends: state changes of one invoice run one at a time."""
        if not 1 <= invoice_id <= MAX_ID:
            return None
        query = (
            select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def take_number(self) -> int:
        """The tenant's next invoice number, taken in the caller's transaction.

        The counter row stays locked until that transaction ends, so concurrent finalizes queue
        behind it, and a transaction that rolls back gives its number back: no gap, no duplicate
        (a sequence would leave a gap for every rollback). The row is created on first use.
        """
        statement = (
            insert(InvoiceCounter)
            .values(id=1, last_number=1)
            .on_conflict_do_update(
                index_elements=[InvoiceCounter.id], set_={"last_number": InvoiceCounter.last_number + 1}
            )
            .returning(InvoiceCounter.last_number)
        )
        number: int = (await self.session.execute(statement)).scalar_one()
        return number

    async def add_lines(self, invoice: Invoice, lines: list[InvoiceLine]) -> None:
        """Append lines and add their amounts to the invoice's subtotal and total."""
        for line in lines:
            line.invoice_id = invoice.id
        self.session.add_all(lines)
        added = sum(line.amount for line in lines)
        invoice.subtotal += added
        invoice.total += added
        await self.session.flush()
        await self.session.refresh(invoice, ["lines"])

    async def has_pending_payment(self, invoice_id: int) -> bool:
        pending = select(Payment.id).where(Payment.invoice_id == invoice_id, Payment.status == "pending")
        return bool(await self.session.scalar(select(exists(pending))))

    async def has_payment(self, invoice_id: int) -> bool:
        """Whether any payment of the invoice was ever made, whatever its outcome."""
        return bool(
            await self.session.scalar(select(exists(select(Payment.id).where(Payment.invoice_id == invoice_id))))
        )
