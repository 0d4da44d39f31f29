"""/v1/invoices: manual drafts and their lines, and the lifecycle draft -> open -> paid / void / uncollectible."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.invoices.lifecycle import InvoiceLifecycle
from billplane.invoices.models import INVOICE_STATUSES
from billplane.invoices.repository import InvoiceFilters, InvoiceRepository
from billplane.invoices.schemas import (
    Invoice,
    InvoiceCreateBody,
    InvoiceFinalize,
    InvoiceFinalizeBody,
    InvoicePay,
    InvoicePayBody,
    LinesAddBody,
)
from billplane.invoices.service import InvoiceService
from billplane.sync.dependencies import sync_service_for


async def provide_invoice_service(tenant_session: NamedDependency[AsyncSession]) -> InvoiceService:
    return InvoiceService(InvoiceRepository(session=tenant_session))


async def provide_invoice_lifecycle(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> InvoiceLifecycle:
    return InvoiceLifecycle(
        tenant_session, lambda: sync_service_for(request, tenant_session, principal_of(request)).writer
    )


class InvoiceController(Controller):
    path = "/v1/invoices"
    tags = ["invoices"]
    security = [{"apiKey": []}]
    dependencies = {
        "invoices": Provide(provide_invoice_service),
        "lifecycle": Provide(provide_invoice_lifecycle),
    }

    @post("/", operation_id="createInvoice", status_code=201)
    async def create_invoice(self, data: InvoiceCreateBody, lifecycle: NamedDependency[InvoiceLifecycle]) -> Invoice:
        """Create a draft invoice for a customer, with lines (`amount` = quantity x unit price, half-even).

        422 for a customer that does not exist (or is another tenant's) and for a currency that is not ISO 4217.
        """
        return Invoice.of(await lifecycle.create(data))

    @post("/{invoice_id:int}/lines", operation_id="addInvoiceLines", status_code=200)
    async def add_invoice_lines(
        self, invoice_id: FromPath[int], data: LinesAddBody, lifecycle: NamedDependency[InvoiceLifecycle]
    ) -> Invoice:
        """Add lines to a draft invoice (in its currency); 409 once it is finalized."""
        return Invoice.of(await lifecycle.add_lines(invoice_id, data))

    @post("/{invoice_id:int}/finalize", operation_id="finalizeInvoice", status_code=200)
    async def finalize_invoice(
        self,
        invoice_id: FromPath[int],
        lifecycle: NamedDependency[InvoiceLifecycle],
        data: InvoiceFinalizeBody = None,
    ) -> Invoice:
        """draft -> open: takes the tenant's next gapless number and sets `finalized_at` and `due_at`.

        An invoice with nothing due is paid at once. 409 unless the invoice is a draft.
        """
        return Invoice.of(await lifecycle.finalize(invoice_id, data or InvoiceFinalize()))

    @post("/{invoice_id:int}/pay", operation_id="payInvoice", status_code=202)
    async def pay_invoice(
        self,
        invoice_id: FromPath[int],
        lifecycle: NamedDependency[InvoiceLifecycle],
        data: InvoicePayBody = None,
    ) -> Invoice:
        """Charge the amount due through the provider account, asynchronously (202, the invoice still open).

        A pending payment is created at once (`GET /v1/payments?invoice_id=`); when the provider
        answers, the invoice becomes `paid`, or stays open with `attempt_count` + 1 and a failed
        payment carrying the decline code. 409 for a draft, paid or void invoice, or while a payment
        is in progress; 422 when no usable payment method can be found.
        """
        return Invoice.of(await lifecycle.pay(invoice_id, data or InvoicePay()))

    @post("/{invoice_id:int}/void", operation_id="voidInvoice", status_code=200)
    async def void_invoice(self, invoice_id: FromPath[int], lifecycle: NamedDependency[InvoiceLifecycle]) -> Invoice:
        """open or uncollectible -> void (final); 409 otherwise, or while a payment is in progress."""
        return Invoice.of(await lifecycle.void(invoice_id))

    @post("/{invoice_id:int}/mark-uncollectible", operation_id="markInvoiceUncollectible", status_code=200)
    async def mark_invoice_uncollectible(
        self, invoice_id: FromPath[int], lifecycle: NamedDependency[InvoiceLifecycle]
    ) -> Invoice:
        """open -> uncollectible (it may still be paid or voided later); 409 otherwise."""
        return Invoice.of(await lifecycle.mark_uncollectible(invoice_id))

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
