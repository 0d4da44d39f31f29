"""/v1/invoice-items: what waits for a customer's next invoice, and what invoices took. A change
with prorations writes items, the tenant adds one-off charges and credits (``items_service``),
and invoices take them (docs/concepts/invoice-items.md)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of
from billplane.api.sessions import READ_ONE
from billplane.billing.items_repository import ItemFilters, ItemReads
from billplane.billing.items_schemas import InvoiceItem, InvoiceItemCreateBody
from billplane.billing.items_service import ItemService
from billplane.db.mixins import MAX_ID
from billplane.sync.dependencies import sync_service_for
from billplane_tenants import KeyPrincipal


async def provide_item_reads(tenant_session: NamedDependency[AsyncSession]) -> ItemReads:
    return ItemReads(tenant_session)


async def provide_item_service(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> ItemService:
    return ItemService(tenant_session, sync_service_for(request, tenant_session, principal))


class InvoiceItemController(Controller):
    path = "/v1/invoice-items"
    tags = ["invoice items"]
    security = [{"apiKey": []}]
    dependencies = {"items": Provide(provide_item_reads), "changes": Provide(provide_item_service)}

    @post("/", operation_id="createInvoiceItem", status_code=201)
    async def create_item(self, data: InvoiceItemCreateBody, changes: NamedDependency[ItemService]) -> InvoiceItem:
        """Add a one-off charge (`amount` > 0) or credit (< 0) for the customer's next invoice in
        `currency`, or, with `subscription_id`, for that subscription's next invoice.

        422 for a customer or subscription that does not exist (or is another tenant's), a
        subscription that has ended or that its provider bills, an amount of 0, and a currency the
        customer or subscription is not billed in.
        """
        return InvoiceItem.of(await changes.create(data))

    @delete("/{item_id:int}", operation_id="deleteInvoiceItem", status_code=204)
    async def delete_item(self, item_id: FromPath[int], changes: NamedDependency[ItemService]) -> None:
        """Delete an item that still waits for an invoice (proration items too); 409 once an invoice took it."""
        await changes.delete(item_id)

    @get("/{item_id:int}", operation_id="getInvoiceItem", opt=READ_ONE)
    async def get_item(self, item_id: FromPath[int], items: NamedDependency[ItemReads]) -> InvoiceItem:
        """One invoice item by id; 404 if it does not exist or belongs to another tenant."""
        row = await items.get(item_id)
        if row is None:
            raise NotFoundException(f"no invoice item {item_id}")
        return InvoiceItem.of(row)

    @get("/", operation_id="listInvoiceItems", opt=READ_ONE)
    async def list_items(
        self,
        *,
        items: NamedDependency[ItemReads],
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This customer's only.")] = None,
        subscription_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="This subscription's only.")
        ] = None,
        pending: Annotated[
            bool | None, QueryParameter(description="Only those waiting for an invoice (true) or taken (false).")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[InvoiceItem]:
        """List invoice items, oldest first. A customer's waiting credit is
        `?customer_id=...&pending=true`: the items with `subscription_id` null are credits left by
        subscriptions that ended, for the customer's next invoice in their currency."""
        filters = ItemFilters(customer_id, subscription_id, pending)
        rows, next_cursor = page_of(await items.page(filters, after=decode_cursor(cursor), limit=limit), limit)
        return Page(data=[InvoiceItem.of(row) for row in rows], next_cursor=next_cursor)
