"""/v1/invoices (read-only: the billing engine writes them)"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.invoices.models import INVOICE_STATUSES
from billplane.invoices.repository import InvoiceFilters, InvoiceRepository
from billplane.invoices.schemas import Invoice
from billplane.invoices.service import InvoiceService


async def provide_invoice_service(tenant_session: NamedDependency[AsyncSession]) -> InvoiceService:
    return InvoiceService(InvoiceRepository(session=tenant_session))


class InvoiceController(Controller):
    path = "/v1/invoices"
    tags = ["invoices"]
    security = [{"apiKey": []}]
    dependencies = {"invoices": Provide(provide_invoice_service)}

    @get("/{invoice_id:int}", operation_id="getInvoice")
    async def get_invoice(self, invoice_id: FromPath[int], invoices: NamedDependency[InvoiceService]) -> Invoice:
        """One invoice with its lines; 404 if it does not exist or belongs to another tenant.

        `amount_due` is `total - amount_paid`. A line's `unit_amount_decimal` is its exact unit price in minor
        units (it may be fractional); `unit_amount` repeats it as an integer only when it is whole.
        """
        return Invoice.of(await invoices.get(invoice_id))

    @get("/", operation_id="listInvoices")
    async def list_invoices(
        self,
        *,
        invoices: NamedDependency[InvoiceService],
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This customer's only.")] = None,
        subscription_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="Billed for this subscription only.")
        ] = None,
        status: Annotated[str | None, QueryParameter(enum=INVOICE_STATUSES, description="In this state only.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Invoice]:
        """List invoices with their lines, oldest first, filtered by customer, subscription or status."""
        filters = InvoiceFilters(customer_id, subscription_id, status)
        rows, next_cursor = await invoices.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Invoice.of(row) for row in rows], next_cursor=next_cursor)
