"""SQL of the API: events, webhook endpoints, their deliveries and replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, func, select, text, true, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository, page_records, record_columns
from billplane.events.deliveries import replay_lock
from billplane.events.emit import WEBHOOKS_CHANNEL
from billplane.events.models import Event, WebhookDelivery, WebhookEndpoint
from billplane.events.types import MATCHES_SQL

_EVENT = select(*record_columns(Event)).where(Event.id == bindparam("event_id"))

# Every transaction whose id is below the statement's snapshot xmin has ended, and every
# transaction still running has an id at or above it: events below it are the whole, final
# prefix of the list's (tx, id) order. A reader that saw an event never later finds one listed
# before it, whatever order the writers commit in.
_ENDED = Event.tx < func.pg_snapshot_xmin(func.pg_current_snapshot())

# New pending deliveries to one endpoint for every event since a time that it subscribes to,
# skipping events whose delivery to it waits for its turn (pending and due); one notification,
# even when nothing was queued: a claim skipped while the replay ran (``_REPLAYING``) is queued
# again by it. A pending delivery that is not due is in flight (leased) or waiting for a retry:
# its event is queued again, behind the replayed older events of its object, so an older event
# can never arrive after it as the last word about that object. statement_timestamp(), not now():
# the transaction may have begun before a concurrent replay it waited for (``_REPLAYING``)
# queued its rows.
_REPLAY = text(
    "WITH queued AS (INSERT INTO webhook_deliveries (endpoint_id, event_id) "
    "SELECT w.id, e.id FROM webhook_endpoints w JOIN events e ON e.created_at >= :since "
    f"WHERE w.id = :endpoint_id AND {MATCHES_SQL} "
    "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.event_id = e.id "
    "AND d.status = 'pending' AND d.next_attempt_at <= statement_timestamp()) "
    "ORDER BY e.id RETURNING 1), "
    f"notified AS (SELECT pg_notify('{WEBHOOKS_CHANNEL}', current_schema())) "
    "SELECT (SELECT count(*) FROM queued) AS queued, (SELECT count(*) FROM notified) AS notified"
)


# A replay queues under this exclusive lock, held until it commits: replays of one endpoint run one
# at a time (each sees what the one before queued), and no delivery to the endpoint is claimed
# meanwhile (``billplane.events.deliveries``). Not the endpoint's row: the worker updates it when
# it records each attempt, and every fan-out of an event it takes locks it (FOR KEY SHARE).
_REPLAYING = text(
    f"SELECT pg_advisory_xact_lock({replay_lock('w.id')}) FROM webhook_endpoints w WHERE w.id = :endpoint_id"
)


# Creating a webhook endpoint takes this transaction-scoped lock, keyed by the tenant, before it
# counts the tenant's endpoints (deleting one takes it too: ``EndpointService.delete``). There is
# no row to lock instead: FOR UPDATE on the existing endpoints does not stop two transactions from
# each inserting a new one (and a tenant with none has nothing to lock), and a table lock would
# also stall the worker's updates of the endpoints.
# pg_advisory_xact_lock(int, int): billplane_tenants.migrations uses namespace 0x6270.
_CREATING_ENDPOINT = text("SELECT pg_advisory_xact_lock(:namespace, :key)")
_CREATING_NAMESPACE = 0x6277
_INT4 = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class EventFilters:
    type: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


class EventReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, event_id: int) -> Row[Any] | None:
        if not 1 <= event_id <= MAX_ID:
            return None
        return (await self.session.execute(_EVENT, {"event_id": event_id})).one_or_none()

    async def page(self, filters: EventFilters, *, after: int | None, limit: int) -> list[Row[Any]] | None:
        """Up to ``limit + 1`` events after event ``after`` (the last of the page before); None
        when there is no event ``after``. One statement (the route reads outside a transaction).

        In (tx, id) order, or in id order for one object's events: one object's events are
        written under its row lock, so their ids follow their commits, and its history reads in
        the order it happened. Across objects the two orders can differ: a transaction that took
        its id early (locking rows), then waited for another, writes its event after the
        other's with a lower tx (ADR 0007).

        One object's list is not cut at the snapshot's xmin: that cut is a final prefix of the
        (tx, id) order only, and in id order it can show an event while hiding an earlier one
        (written by a transaction that took its id after a still running one), which a cursor
        would then skip for good. The lock is what makes the id order final: an event of the
        object still being written comes after every committed one.
        """
        one_object = filters.object_id is not None
        where: list[ColumnElement[bool]] = [] if one_object else [_ENDED]
        if filters.type is not None:
            if filters.type.endswith(".*"):
                where.append(Event.type.startswith(filters.type[:-1], autoescape=True))
            else:
                where.append(Event.type == filters.type)
        if filters.object_type is not None:
            where.append(Event.object_type == filters.object_type)
        if filters.object_id is not None:
            where.append(Event.object_id == filters.object_id)
        if filters.created_gte is not None:
            where.append(Event.created_at >= filters.created_gte)
        if filters.created_lt is not None:
            where.append(Event.created_at < filters.created_lt)
        key: tuple[Any, ...] = (Event.id,) if one_object else (Event.tx, Event.id)
        if after is None:
            query = select(*record_columns(Event)).where(*where).order_by(*key).limit(limit + 1)
            return list(await self.session.execute(query))
        if not 1 <= after <= MAX_ID:
            return None
        # The cursor's event, and the page after it joined to it: no row at all if it is gone.
        last = select(Event.tx, Event.id).where(Event.id == after).subquery("last_event")
        since = Event.id > last.c.id if one_object else tuple_(Event.tx, Event.id) > tuple_(last.c.tx, last.c.id)
        page = select(*record_columns(Event)).where(*where, since).order_by(*key).limit(limit + 1).lateral("page")
        query = select(last.c.id.label("cursor_event"), page).select_from(last).outerjoin(page, true())
        rows = list(await self.session.execute(query))
        return None if not rows else [row for row in rows if row.id is not None]


class EndpointReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, *, after: int | None, limit: int) -> list[Row[Any]]:
        return await page_records(self.session, WebhookEndpoint, after=after, limit=limit)

    async def deliveries(
        self, endpoint_id: int, status: str | None, *, after: int | None, limit: int
    ) -> list[Row[Any]]:
        where = [WebhookDelivery.endpoint_id == endpoint_id]
        if status is not None:
            where.append(WebhookDelivery.status == status)
        return await page_records(self.session, WebhookDelivery, *where, after=after, limit=limit)


# The endpoint's waiting deliveries of events its filter no longer takes (it was narrowed).
_UNSUBSCRIBED = text(
    "UPDATE webhook_deliveries d SET status = 'failed', last_error = :reason FROM events e, webhook_endpoints w "
    "WHERE d.endpoint_id = :endpoint_id AND d.status = 'pending' AND e.id = d.event_id AND w.id = d.endpoint_id "
    f"AND NOT {MATCHES_SQL}"
)


class EndpointRepository(TenantRepository[WebhookEndpoint]):
    model_type = WebhookEndpoint

    async def fail_pending(self, endpoint_id: int, reason: str) -> None:
        """A disabled endpoint gets nothing more: its waiting deliveries fail (a replay re-sends them)."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
            .values(status="failed", last_error=reason)
        )

    async def fail_unsubscribed(self, endpoint_id: int, reason: str) -> None:
        """Its waiting deliveries of events the endpoint's (flushed) filter no longer takes fail:
        retried, a receiver that refuses them would count failures toward disabling it for
        events it unsubscribed from."""
        await self.session.execute(_UNSUBSCRIBED, {"endpoint_id": endpoint_id, "reason": reason})

    async def one_at_a_time(self, tenant_id: int) -> None:
        """Serialize endpoint creations (and deletions) of this tenant until the transaction ends,
        so that a count taken now stays true until this transaction's insert commits (READ
        COMMITTED: the waiter's next statement sees what the first committed)."""
        # The key is an int4: a tenant id beyond that range shares a lock with another tenant's,
        # which only makes their creations and deletions wait for each other.
        parameters = {"namespace": _CREATING_NAMESPACE, "key": tenant_id & _INT4}
        await self.session.execute(_CREATING_ENDPOINT, parameters)

    async def total(self) -> int:
        """The tenant's endpoints, enabled or not (a deleted endpoint's row is gone)."""
        return int(await self.session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)

    async def locked(self, endpoint_id: int) -> WebhookEndpoint | None:
        """The endpoint, fresh from the database, kept from being deleted until the transaction ends.

        FOR KEY SHARE only: the worker's updates of the endpoint (each attempt's outcome) and the
        fan-outs of events go on while a replay runs; replays exclude each other with their own
        lock (``replay``)."""
        if not 1 <= endpoint_id <= MAX_ID:
            return None
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .with_for_update(read=True, key_share=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def replay(self, endpoint_id: int, since: datetime) -> int:
        """Queue the replay of an endpoint the caller holds (``locked``). Under the replay lock,
        taken first: a second replay waits for this one to commit, so the two do not both see an
        event as not yet queued and queue it twice."""
        parameters = {"endpoint_id": endpoint_id}
        await self.session.execute(_REPLAYING, parameters)
        row = (await self.session.execute(_REPLAY, {**parameters, "since": since})).one()
        return int(row.queued)
