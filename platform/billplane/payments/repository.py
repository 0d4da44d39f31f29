"""All SQL for payments and their refunds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from billplane.db.repository import TenantRepository
from billplane.payments.models import Payment


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    customer_id: int | None = None
    invoice_id: int | None = None
    status: str | None = None


class PaymentRepository(TenantRepository[Payment]):
    """Refunds come with their payments: `Payment.refunds` loads with one extra query per batch of payments."""

    model_type = Payment

    async def page_matching(self, filters: PaymentFilters, *, after: int | None, limit: int) -> list[Payment]:
        where: list[ColumnElement[bool]] = []
        if filters.customer_id is not None:
            where.append(Payment.customer_id == filters.customer_id)
        if filters.invoice_id is not None:
            where.append(Payment.invoice_id == filters.invoice_id)
        if filters.status is not None:
            where.append(Payment.status == filters.status)
        return await self.page(*where, after=after, limit=limit)
