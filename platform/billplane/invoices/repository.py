"""All SQL for invoices and their lines."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from billplane.db.repository import TenantRepository
from billplane.invoices.models import Invoice


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
