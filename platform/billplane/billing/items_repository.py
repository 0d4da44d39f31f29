"""SQL of the invoice items API: read only (items are written by changes and taken by invoices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.models import InvoiceItem
from billplane.db.mixins import MAX_ID
from billplane.db.repository import page_records, record_columns

_ITEM = select(*record_columns(InvoiceItem)).where(InvoiceItem.id == bindparam("item_id"))


@dataclass(frozen=True, slots=True)
class ItemFilters:
    customer_id: int | None = None
    subscription_id: int | None = None
    pending: bool | None = None


class ItemReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, item_id: int) -> Row[Any] | None:
        if not 1 <= item_id <= MAX_ID:
            return None
        return (await self.session.execute(_ITEM, {"item_id": item_id})).one_or_none()

    async def page(self, filters: ItemFilters, *, after: int | None, limit: int) -> list[Row[Any]]:
        where: list[ColumnElement[bool]] = []
        if filters.customer_id is not None:
            where.append(InvoiceItem.customer_id == filters.customer_id)
        if filters.subscription_id is not None:
            where.append(InvoiceItem.subscription_id == filters.subscription_id)
        if filters.pending is not None:
            where.append(InvoiceItem.invoice_id.is_(None) if filters.pending else InvoiceItem.invoice_id.is_not(None))
        return await page_records(self.session, InvoiceItem, *where, after=after, limit=limit)
