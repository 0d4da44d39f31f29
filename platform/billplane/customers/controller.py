"""/v1/customers"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.api.sessions import READ_ONE, provide_tenant_rows
from billplane.api.types import checked_query_times
from billplane.customers.repository import CustomerFilters
from billplane.customers.schemas import Customer, CustomerCreateBody, CustomerUpdateBody
from billplane.customers.service import CustomerService, read_customer
from billplane.sync.dependencies import sync_service_for
from billplane_tenants.database import RowReader


async def provide_customer_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> CustomerService:
    # The sync service is built only when a write asks for it: reads need neither it nor the
    # principal dependency.
    return CustomerService(tenant_session, lambda: sync_service_for(request, tenant_session, principal_of(request)))


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["customers"]
    security = [{"apiKey": []}]
    dependencies = {"customers": Provide(provide_customer_service), "tenant_rows": Provide(provide_tenant_rows)}

    @post("/", operation_id="createCustomer", status_code=201)
    async def create_customer(self, data: CustomerCreateBody, customers: NamedDependency[CustomerService]) -> Customer:
        """Create a customer. `external_id`, if given, must be unique among the tenant's customers."""
        return Customer.of(await customers.create(data))

    @get("/{customer_id:int}", operation_id="getCustomer")
    async def get_customer(self, customer_id: FromPath[int], tenant_rows: NamedDependency[RowReader]) -> Customer:
        """One customer by id; 404 if it does not exist, was deleted, or belongs to another tenant."""
        return Customer.of(await read_customer(tenant_rows, customer_id))

    @patch("/{customer_id:int}", operation_id="updateCustomer")
    async def update_customer(
        self,
        customer_id: FromPath[int],
        data: CustomerUpdateBody,
        customers: NamedDependency[CustomerService],
    ) -> Customer:
        """Change the fields sent; `null` clears one. `metadata` is replaced whole."""
        return Customer.of(await customers.update(customer_id, data))

    @delete("/{customer_id:int}", operation_id="deleteCustomer", status_code=204)
    async def delete_customer(self, customer_id: FromPath[int], customers: NamedDependency[CustomerService]) -> None:
        """Delete a customer: 409 while it has live subscriptions. Its invoices and payments are kept."""
        await customers.delete(customer_id)

    @post("/{customer_id:int}/sync", operation_id="syncCustomer", status_code=202)
    async def sync_customer(self, customer_id: FromPath[int], customers: NamedDependency[CustomerService]) -> Customer:
        """Mirror the customer to the tenant's provider accounts again, now.

        Failed provider work is retried (with new idempotency keys), waiting work skips its
        backoff, and default accounts that lack the customer get it. Answers at once (202) with
        the customer; watch `sync_status` and `last_sync_error`.
        """
        return Customer.of(await customers.sync(customer_id))

    @get("/", operation_id="listCustomers", opt=READ_ONE)
    async def list_customers(
        self,
        *,
        customers: NamedDependency[CustomerService],
        email: Annotated[str | None, QueryParameter(description="Exact email, any case.")] = None,
        external_id: Annotated[str | None, QueryParameter()] = None,
        created_gte: Annotated[datetime | None, QueryParameter(description="Created at or after.")] = None,
        created_lt: Annotated[datetime | None, QueryParameter(description="Created before.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Customer]:
        """List customers, oldest first, filtered by email, external id or creation time."""
        checked_query_times(created_gte=created_gte, created_lt=created_lt)
        filters = CustomerFilters(email, external_id, created_gte, created_lt)
        rows, next_cursor = await customers.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Customer.of(row) for row in rows], next_cursor=next_cursor)
