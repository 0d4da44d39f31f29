"""The periodic sweep: defers a job for every due delivery in every tenant.

It is what makes delivery crash-safe: a notification nobody heard, a job lost with its worker,
a retry whose scheduled job vanished - the delivery row is still pending and due, and the next
sweep queues it. One UNION ALL query reads ``sweep_batch`` tenant schemas (at most
``due_per_tenant`` due deliveries each); deliveries behind an earlier pending one of the same
object are left for the job that finishes that one.

A tenant with more due deliveries than that (a billing run's burst) is not left for the next
sweep: every finished job tops its tenant back up (``top_up``), reading the same bounded page
again and deferring those without a waiting job. As jobs claim deliveries (the lease takes them
out of the due set), the next ones enter the page, so a burst drains at the workers' pace while
one tenant never has more than about a page of jobs waiting ahead of the other tenants'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text

from billplane.events.deliveries import no_earlier_pending
from billplane.events.jobs import DeliveryRef, defer_missing
from billplane.events.options import WebhookOptions
from billplane.sync.queue import JobQueue
from billplane_tenants import Database, Tenant
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.webhooks")
_TABLES = text(
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 'webhook_deliveries' AND n.nspname = ANY(:schemas)"
)


def _due_part(tenant_id: int, schema: str, limit: int) -> str:
    """SQL: (tenant id, schema, delivery id) of up to ``limit`` due deliveries of one schema."""
    quoted = quoted_schema(schema)  # validates the name, so the literal below is safe too
    return (
        f"(SELECT {int(tenant_id)} AS t, '{schema}' AS s, d.id FROM {quoted}.webhook_deliveries d "
        f"JOIN {quoted}.events e ON e.id = d.event_id "
        f"WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND {no_earlier_pending(quoted)} "
        f"ORDER BY d.next_attempt_at LIMIT {int(limit)})"
    )


@dataclass(slots=True)
class DeliverySweeper:
    database: Database
    queue: JobQueue
    options: WebhookOptions

    async def sweep(self) -> int:
        """Defer a job for each due delivery of every active tenant; returns how many were deferred."""
        async with self.database.control_session() as session:
            query = select(Tenant.id, Tenant.schema_name).where(Tenant.status == "active").order_by(Tenant.id)
            tenants = [(int(row[0]), str(row[1])) for row in (await session.execute(query)).all()]
        deferred = await defer_missing(self.queue, await self.due(tenants))
        if deferred:
            logger.info("webhook sweep deferred %d deliveries", deferred)
        return deferred

    async def due_of_schemas(self, schemas: Iterable[str]) -> list[DeliveryRef]:
        """Due deliveries of these schemas (from notifications: checked against the tenants table)."""
        wanted = sorted(set(schemas))
        if not wanted:
            return []
        async with self.database.control_session() as session:
            query = select(Tenant.id, Tenant.schema_name).where(
                Tenant.status == "active", Tenant.schema_name.in_(wanted)
            )
            tenants = [(int(row[0]), str(row[1])) for row in (await session.execute(query)).all()]
        return await self.due(tenants)

    async def due(self, tenants: list[tuple[int, str]]) -> list[DeliveryRef]:
        found: list[DeliveryRef] = []
        for start in range(0, len(tenants), self.options.sweep_batch):
            found += await self._due_in(tenants[start : start + self.options.sweep_batch])
        return found

    async def top_up(self, tenant_id: int, schema: str) -> int:
        """Defer jobs for one tenant's first page of due deliveries that have none waiting.

        A job calls it when it is done with a delivery of that tenant (whose schema it has just
        checked); one bounded read, and one more query only if anything is due.
        """
        async with self.database.engine.connect() as connection:
            part = _due_part(tenant_id, schema, self.options.due_per_tenant)
            rows = (await connection.execute(text(part))).all()
            await connection.rollback()
        return await defer_missing(self.queue, _refs(rows))

    async def _due_in(self, tenants: list[tuple[int, str]]) -> list[DeliveryRef]:
        ids = {schema: tenant_id for tenant_id, schema in tenants}
        async with self.database.engine.connect() as connection:
            present = sorted((await connection.execute(_TABLES, {"schemas": list(ids)})).scalars())
            parts = [_due_part(ids[schema], schema, self.options.due_per_tenant) for schema in present]
            if not parts:
                return []
            rows = (await connection.execute(text(" UNION ALL ".join(parts)))).all()
            # End the read: it holds a lock on every table it touched (max_locks_per_transaction).
            await connection.rollback()
        return _refs(rows)


def _refs(rows: Iterable[Sequence[Any]]) -> list[DeliveryRef]:
    return [DeliveryRef(int(row[0]), str(row[1]), int(row[2])) for row in rows]
