"""All SQL for customers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from advanced_alchemy.exceptions import IntegrityError as AdvancedIntegrityError
from sqlalchemy import (
    CTE,
    ColumnElement,
    Label,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    case,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers.models import Customer
from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository, page_records
from billplane.events import types
from billplane.events.emit import WEBHOOKS_CHANNEL, endpoints_taking
from billplane.events.models import Event, WebhookDelivery, WebhookEndpoint
from billplane.events.types import MATCHES_SQL
from billplane.subscriptions.models import LIVE_STATUSES, Subscription
from billplane.sync.repository import with_outbox_rows
from billplane_tenants.database import RowReader, RowRecord, TenantSelect

# The partial unique index that keeps external_id unique among live customers.
EXTERNAL_ID_INDEX = "uq_customers_external_id_live"


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    email: str | None = None
    external_id: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


# Built once: the hottest read of the API, run on the driver (``TenantSelect``); its columns are
# labelled with the model's attribute names (``metadata_``), so rows read like entities.
_LIVE_RECORD = TenantSelect(
    select(
        *(getattr(Customer, attribute.key).label(attribute.key) for attribute in inspect(Customer).column_attrs)
    ).where(Customer.id == bindparam("customer_id"), Customer.deleted_at.is_(None))
)


class ExternalIdTakenError(Exception):
    """Another live customer has this external_id (the unique index said so, not a pre-check)."""


def json_time(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A ``timestamptz`` as the API writes it (msgspec's RFC 3339: UTC, ``Z``, microseconds only
    when there are some), or NULL."""
    utc = column.op("AT TIME ZONE")(literal("UTC", Text))
    fraction = case((func.to_char(utc, "US") == "000000", ""), else_=func.to_char(utc, ".US"))
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS').op("||")(fraction).op("||")(literal("Z", Text))


def _shown(new: CTE) -> ColumnElement[Any]:
    """The new customer as ``Customer.of`` shows it, as JSONB: the ``customer.created`` event's data
    (a test compares it with the API's answer)."""
    c = new.c
    return func.jsonb_build_object(
        *("id", c.id, "email", c.email, "name", c.name, "external_id", c.external_id, "metadata", c.metadata),
        *("sync_status", c.sync_status, "last_sync_error", c.last_sync_error, "synced_at", json_time(c.synced_at)),
        *("provider_ids", text("'[]'::jsonb")),  # a new customer is at no provider yet
        *("created_at", json_time(c.created_at), "updated_at", json_time(c.updated_at)),
    )


def _with_event(new: CTE) -> Label[int]:
    """The ``customer.created`` event of the row ``new`` inserts, fanned out to the tenant's endpoints
    as ``billplane.events.emit.emit`` does, with the deliverers' notification if it queued any: read
    it from the final SELECT (a plain SELECT CTE runs only when referenced)."""
    events = cast("Table", Event.__table__)
    deliveries = cast("Table", WebhookDelivery.__table__)
    values = select(literal(types.CUSTOMER_CREATED, Text), literal(types.CUSTOMER_OBJECT, Text), new.c.id, _shown(new))
    event = (
        insert(events)
        .from_select(["type", "object_type", "object_id", "data"], values.select_from(new))
        .returning(events.c.id, events.c.type)
        .cte("created_event")
    )
    endpoints = cast("Table", WebhookEndpoint.__table__)
    # The endpoints as emit reads them: those taking the event, locked, so that one whose delete
    # commits meanwhile is skipped instead of failing the create.
    read = text(endpoints_taking(event.name)).columns(endpoints.c.id, endpoints.c.enabled_events)
    w = read.cte("w").prefix_with("MATERIALIZED")
    e = event.alias("e")
    fanned = select(w.c.id, e.c.id).select_from(e).join(w, text(MATCHES_SQL))  # MATCHES_SQL names them e and w
    queued = insert(deliveries).from_select(["endpoint_id", "event_id"], fanned).returning(deliveries.c.id)
    queued_cte = queued.cte("delivered")
    notified = (
        select(func.pg_notify(WEBHOOKS_CHANNEL, func.current_schema()).label("sent"))
        .select_from(queued_cte)
        .limit(1)
        .cte("delivered_notified")
    )
    return select(func.count()).select_from(notified).scalar_subquery().label("delivered_notified")


def _create_statement() -> Select[Any]:
    """``INSERT INTO customers ... RETURNING`` with its outbox rows and notification, and its
    ``customer.created`` event with the event's deliveries and notification, as one statement.

    The final SELECT labels the new row's columns with the model's attribute names (like
    ``record_columns``), so ``Customer.of`` answers it (a new customer's ``provider_ids`` is ``[]``).
    """
    table = cast("Table", Customer.__table__)
    created = (
        insert(table)
        .values(
            email=bindparam("email", type_=Text),
            name=bindparam("name", type_=Text),
            external_id=bindparam("external_id", type_=Text),
            metadata=bindparam("metadata", type_=JSONB),
        )
        .returning(*table.c)
    )
    queued = with_outbox_rows(created, "customer.ensure")
    columns = [
        queued.created.c[attribute.columns[0].name].label(attribute.key) for attribute in inspect(Customer).column_attrs
    ]
    return select(*columns, queued.notified, _with_event(queued.created))


_CREATE = _create_statement()  # built once, like _LIVE_RECORD


async def create_customer(session: AsyncSession, values: Mapping[str, Any], outbox: Mapping[str, Any]) -> Row[Any]:
    """Insert a customer (``email``, ``name``, ``external_id``, ``metadata``) and queue its mirroring.

    ``outbox``: ``SyncService.created_object_params()``. One statement, the same SQL whether the
    tenant has no provider account or several.
    """
    try:
        row: Row[Any] = (await session.execute(_CREATE, {**values, **outbox})).one()
    except IntegrityError as exc:
        if getattr(exc.driver_exception, "constraint_name", None) == EXTERNAL_ID_INDEX:
            raise ExternalIdTakenError(values["external_id"]) from exc
        raise
    return row


def locked_live(query: Select[Customer]) -> Select[Customer]:
    """``query`` of one customer, locking its row (``FOR NO KEY UPDATE``) and reading it again
    after waiting for the lock.

    What a request checks of a customer before writing for it (no live subscription before a
    delete; the currency it is billed in before a subscription, an item or an invoice) holds only
    while nobody else writes for the customer: every such request takes this lock first. Not
    ``FOR UPDATE``: the foreign keys of rows that merely point at the customer (``KEY SHARE``) do
    not wait for it.
    """
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


async def live_customer(rows: RowReader, customer_id: int) -> RowRecord | None:
    """A live customer as a read-only row, or None: one statement on the driver (``RowReader``)."""
    if not 1 <= customer_id <= MAX_ID:
        return None
    return await rows.one(_LIVE_RECORD, customer_id=customer_id)


class CustomerReads:
    """Read-only SQL for customers: rows to answer with, never entities to change.

    Kept apart from the advanced-alchemy repository so that a read builds nothing it does not
    use (a repository costs a measurable share of a GET to construct).
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page_live(self, filters: CustomerFilters, *, after: int | None, limit: int) -> list[Row[Any]]:
        where: list[ColumnElement[bool]] = [Customer.deleted_at.is_(None)]
        if filters.email is not None:
            where.append(func.lower(Customer.email) == filters.email.lower())  # the lower(email) index
        if filters.external_id is not None:
            where.append(Customer.external_id == filters.external_id)
        if filters.created_gte is not None:
            where.append(Customer.created_at >= filters.created_gte)
        if filters.created_lt is not None:
            where.append(Customer.created_at < filters.created_lt)
        return await page_records(self.session, Customer, *where, after=after, limit=limit)


class CustomerRepository(TenantRepository[Customer]):
    model_type = Customer

    async def update_live(self, customer: Customer) -> Customer:
        """Write the customer's changes; ``ExternalIdTakenError`` when the unique index refuses its
        ``external_id`` (taken by a concurrent request after the service's check)."""
        wanted = customer.external_id  # the object expires with the failed transaction: read it now
        try:
            return await self.update(customer)
        except AdvancedIntegrityError as exc:
            cause = exc.__cause__
            driver = getattr(cause, "driver_exception", None) if isinstance(cause, IntegrityError) else None
            if getattr(driver, "constraint_name", None) == EXTERNAL_ID_INDEX:
                raise ExternalIdTakenError(wanted) from exc
            raise

    async def get_live(self, customer_id: int, *, locked: bool = False) -> Customer | None:
        """The customer unless deleted; ``locked``: its row held to the end of the transaction
        (``locked_live``), read again after the wait."""
        if not 1 <= customer_id <= MAX_ID:
            return None
        query = select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
        if locked:
            query = locked_live(query)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_email(self, email: str) -> list[Customer]:
        """Live customers with this email, any case (emails are not unique: people share them)."""
        query = (
            select(Customer)
            .where(func.lower(Customer.email) == email.lower(), Customer.deleted_at.is_(None))
            .order_by(Customer.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def external_id_taken(self, external_id: str, *, other_than: int | None = None) -> bool:
        query = select(Customer.id).where(Customer.external_id == external_id, Customer.deleted_at.is_(None))
        if other_than is not None:
            query = query.where(Customer.id != other_than)
        return (await self.session.execute(query.limit(1))).first() is not None

    async def has_live_subscriptions(self, customer_id: int) -> bool:
        live = select(Subscription.id).where(
            Subscription.customer_id == customer_id, Subscription.status.in_(LIVE_STATUSES)
        )
        return bool(await self.session.scalar(select(exists(live))))
