"""The periodic sweep: re-defers jobs for due outbox rows and unapplied events in every tenant.

Nothing is lost if a job is: the sweep reads every active tenant's due work in a few UNION ALL
queries (``sweep_batch`` schemas each, like the migration planner), not one round trip per tenant,
and defers a job for each row with a queueing lock so a job already waiting is not doubled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, text

from billplane.sync.options import SyncOptions
from billplane.sync.queue import JobQueue
from billplane.sync.refs import EventRef, JobRef, OutboxRef
from billplane_tenants import Database, Tenant
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.sync")
_PER_TENANT = 100
_TABLES = text(
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname IN ('outbox', 'provider_events') AND n.nspname = ANY(:schemas)"
)


@dataclass(slots=True)
class Sweeper:
    database: Database
    queue: JobQueue
    options: SyncOptions
    # Work younger than this is left alone: its own job was deferred moments ago.
    grace_seconds: float = 10.0

    async def due(self) -> list[JobRef]:
        """Every due outbox row and unapplied event, up to 100 of each per tenant."""
        async with self.database.control_session() as session:
            query = select(Tenant.id, Tenant.schema_name).where(Tenant.status == "active").order_by(Tenant.id)
            tenants = [(row[0], row[1]) for row in (await session.execute(query)).all()]
        found: list[JobRef] = []
        for start in range(0, len(tenants), self.options.sweep_batch):
            found += await self._due_in(tenants[start : start + self.options.sweep_batch])
        return found

    async def sweep(self) -> int:
        """Defer a job for each due row; returns how many were deferred (not already waiting)."""
        deferred = 0
        for ref in await self.due():
            deferred += await self.queue.defer(ref)
        if deferred:
            logger.info("sweep deferred %d sync jobs", deferred)
        return deferred

    async def _due_in(self, tenants: list[tuple[int, str]]) -> list[JobRef]:
        ids = {schema: tenant_id for tenant_id, schema in tenants}
        async with self.database.engine.connect() as connection:
            present = (await connection.execute(_TABLES, {"schemas": list(ids)})).all()
            parts = []
            for schema, table in sorted(present):
                tenant_id, quoted = int(ids[schema]), quoted_schema(schema)
                if table == "outbox":
                    parts.append(
                        f"(SELECT 'o' AS k, {tenant_id} AS t, '{schema}' AS s, id FROM {quoted}.outbox "
                        "WHERE status = 'pending' AND next_attempt_at <= now() - make_interval(secs => :grace) "
                        f"ORDER BY next_attempt_at LIMIT {_PER_TENANT})"
                    )
                else:
                    parts.append(
                        f"(SELECT 'e' AS k, {tenant_id} AS t, '{schema}' AS s, id FROM {quoted}.provider_events "
                        "WHERE status = 'received' AND received_at <= now() - make_interval(secs => :grace) "
                        f"ORDER BY received_at LIMIT {_PER_TENANT})"
                    )
            if not parts:
                return []
            rows = (await connection.execute(text(" UNION ALL ".join(parts)), {"grace": self.grace_seconds})).all()
            # End the read: it holds a lock on every table it touched (max_locks_per_transaction).
            await connection.rollback()
        return [
            OutboxRef(int(tenant_id), schema, int(row_id))
            if kind == "o"
            else EventRef(int(tenant_id), schema, int(row_id))
            for kind, tenant_id, schema, row_id in rows
        ]
