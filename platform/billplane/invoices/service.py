"""Invoice reads. Never commits: the request owns the transaction. Writes are in ``lifecycle``."""

from __future__ import annotations

from litestar.exceptions import NotFoundException

from billplane.api.pagination import page_of
from billplane.api.problems import InvalidFieldError
from billplane.invoices.models import INVOICE_STATUSES, Invoice
from billplane.invoices.repository import InvoiceFilters, InvoiceRepository


class InvoiceService:
    def __init__(self, repository: InvoiceRepository) -> None:
        self.repository = repository

    async def get(self, invoice_id: int) -> Invoice:
        invoice = await self.repository.find(invoice_id)
        if invoice is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no invoice {invoice_id}")
        return invoice

    async def page(self, filters: InvoiceFilters, *, after: int | None, limit: int) -> tuple[list[Invoice], str | None]:
        if filters.status is not None and filters.status not in INVOICE_STATUSES:
            raise InvalidFieldError("status", f"must be one of {', '.join(INVOICE_STATUSES)}", source="query")
        rows = await self.repository.page_matching(filters, after=after, limit=limit)
        return page_of(rows, limit)
