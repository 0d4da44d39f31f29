"""Customer rules. Never commits: the request owns the transaction, so a change and its event
(``customer.created``, ``.updated``, ``.deleted``) commit together or not at all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError
from billplane.customers.models import Customer
from billplane.customers.repository import (
    CustomerFilters,
    CustomerReads,
    CustomerRepository,
    ExternalIdTakenError,
    create_customer,
    live_customer,
)
from billplane.customers.schemas import Customer as CustomerView
from billplane.customers.schemas import CustomerCreate, CustomerUpdate
from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.sync.service import SyncService
from billplane_tenants.database import RowReader, RowRecord


async def read_customer(rows: RowReader, customer_id: int) -> RowRecord:
    """A customer to show, as a read-only row; 404 like ``CustomerService.get``.

    A function, not a service method: the GET needs no session, so no service is built for it.
    """
    record = await live_customer(rows, customer_id)
    if record is None:  # another tenant's id looks exactly like an id that never existed
        raise NotFoundException(f"no customer {customer_id}")
    return record


class CustomerService:
    def __init__(self, session: AsyncSession, sync: Callable[[], SyncService]) -> None:
        self.reads = CustomerReads(session)
        self._session = session
        self._sync = sync

    @cached_property
    def repository(self) -> CustomerRepository:
        # Built on first use: reads never need it.
        return CustomerRepository(session=self._session)

    @cached_property
    def sync_service(self) -> SyncService:
        return self._sync()

    async def create(self, data: CustomerCreate) -> Row[Any]:
        """The new customer as a row. It, its outbox rows and its ``customer.created`` event are one
        statement: they commit together or not at all, and a create costs the same with provider
        accounts (or webhook endpoints) as without."""
        values = {"email": data.email, "name": data.name, "external_id": data.external_id, "metadata": data.metadata}
        try:
            return await create_customer(self._session, values, await self.sync_service.created_object_params())
        except ExternalIdTakenError:
            # No pre-check: the unique index decides, also between two concurrent creates. The
            # failed statement aborted the transaction; the request rolls it back.
            raise ConflictError(f"a customer with external_id {data.external_id!r} already exists") from None

    async def get(self, customer_id: int) -> Customer:
        customer = await self.repository.get_live(customer_id)
        if customer is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no customer {customer_id}")
        return customer

    async def update(self, customer_id: int, data: CustomerUpdate) -> Customer:
        customer = await self.get(customer_id)
        before = CustomerView.of(customer)
        changes = data.changes()
        external_id = changes.get("external_id")
        if external_id is not None and await self.repository.external_id_taken(external_id, other_than=customer_id):
            raise ConflictError(f"a customer with external_id {external_id!r} already exists")
        for field, value in changes.items():
            setattr(customer, "metadata_" if field == "metadata" else field, value)
        await self.sync_service.customer_changed(customer, set(changes))
        try:
            customer = await self.repository.update_live(customer)
        except ExternalIdTakenError as exc:  # taken by a concurrent request after the check above
            raise ConflictError(f"a customer with external_id {external_id!r} already exists") from exc
        shown = CustomerView.of(customer)
        if changed(before, shown):  # else: no change, no event
            await emit(self._session, types.CUSTOMER_UPDATED, types.CUSTOMER_OBJECT, customer.id, shown)
        return customer

    async def delete(self, customer_id: int) -> None:
        """Delete a customer without live subscriptions; its invoices and payments keep pointing at it.
        Locked first: a subscription created meanwhile is seen (``repository.locked_live``)."""
        customer = await self.repository.get_live(customer_id, locked=True)
        if customer is None:
            raise NotFoundException(f"no customer {customer_id}")
        if await self.repository.has_live_subscriptions(customer_id):
            raise ConflictError("the customer has live subscriptions: cancel them first")
        shown = CustomerView.of(customer)  # the event's data: the customer as last shown
        customer.deleted_at = datetime.now(UTC)
        customer.external_id = None  # frees the tenant's id for a new customer
        await self.sync_service.customer_deleted(customer)
        await self.repository.update(customer)
        await emit(self._session, types.CUSTOMER_DELETED, types.CUSTOMER_OBJECT, customer.id, shown)

    async def sync(self, customer_id: int) -> Customer:
        """Retry failed provider work, hurry waiting work, mirror to accounts that lack the customer."""
        customer = await self.get(customer_id)
        await self.sync_service.sync_customer(customer)
        return await self.repository.update(customer)

    async def page(
        self, filters: CustomerFilters, *, after: int | None, limit: int
    ) -> tuple[list[Row[Any]], str | None]:
        rows = await self.reads.page_live(filters, after=after, limit=limit)
        return page_of(rows, limit)
