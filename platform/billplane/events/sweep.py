"""The periodic sweep: defers a job for every due delivery in every tenant.

It is what makes delivery crash-safe: a notification nobody heard, a job lost with its worker,
a retry whose scheduled job vanished - the delivery row is still pending and due, and the next
sweep queues it. One UNION ALL query reads ``sweep_batch`` tenant schemas (at most 100 due
deliveries each); deliveries behind an earlier pending one of the same object are left for
the job that finishes that one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text

from billplane.events.deliveries import no_earlier_pending
from billplane.events.jobs import DeliveryRef, defer_missing
from billplane.events.options import WebhookOptions
from billplane.sync.queue import JobQueue
from billplane_tenants import Database, Tenant
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.webhooks")
_PER_TENANT = 100
_TABLES = text(
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 'webhook_deliveries' AND n.nspname = ANY(:schemas)"
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

    async def _due_in(self, tenants: list[tuple[int, str]]) -> list[DeliveryRef]:
        ids = {schema: tenant_id for tenant_id, schema in tenants}
        async with self.database.engine.connect() as connection:
            present = sorted((await connection.execute(_TABLES, {"schemas": list(ids)})).scalars())
            parts = []
            for schema in present:
                quoted = quoted_schema(schema)
                parts.append(
                    f"(SELECT {int(ids[schema])} AS t, '{schema}' AS s, d.id FROM {quoted}.webhook_deliveries d "
                    f"JOIN {quoted}.events e ON e.id = d.event_id "
                    f"WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND {no_earlier_pending(quoted)} "
                    f"ORDER BY d.next_attempt_at LIMIT {_PER_TENANT})"
                )
            if not parts:
                return []
            rows = (await connection.execute(text(" UNION ALL ".join(parts)))).all()
            # End the read: it holds a lock on every table it touched (max_locks_per_transaction).
            await connection.rollback()
        return [DeliveryRef(int(tenant_id), str(schema), int(row_id)) for tenant_id, schema, row_id in rows]
