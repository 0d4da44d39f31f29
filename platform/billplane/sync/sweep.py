"""The periodic sweep: re-defers jobs for due outbox rows and unapplied events in every tenant.

Nothing is lost if a job is: the sweep reads every active tenant's due work in a few UNION ALL
queries (``sweep_batch`` schemas each, like the migration planner), not one round trip per tenant,
and defers a job for each row with a queueing lock so a job already waiting is not doubled. The
outbox listener (``billplane.sync.listener``) runs the same query for the few tenants it was
notified of, with no grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
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
    # Work younger than this is left alone: its own job (or a create's notification) is on its way.
    grace_seconds: float = 10.0

    async def due(self, *, grace_seconds: float | None = None) -> list[JobRef]:
        """Every due outbox row and unapplied event, up to 100 of each per tenant."""
        async with self.database.control_session() as session:
            query = select(Tenant.id, Tenant.schema_name).where(Tenant.status == "active").order_by(Tenant.id)
            tenants = [(row[0], row[1]) for row in (await session.execute(query)).all()]
        return await self._due_in_batches(tenants, self._grace(grace_seconds), events=True)

    async def sweep(self, *, grace_seconds: float | None = None) -> int:
        """Defer a job for each due row; returns how many were deferred (not already waiting)."""
        deferred = await self.queue.defer_missing(await self.due(grace_seconds=grace_seconds))
        if deferred:
            logger.info("sweep deferred %d sync jobs", deferred)
        return deferred

    async def due_outbox_of(self, tenants: Iterable[tuple[int, str]]) -> list[OutboxRef]:
        """Due outbox rows of these (tenant id, schema) pairs, no grace period, up to 100 per tenant.

        Pairs are checked against the tenants table (active, same schema): they come from
        notifications, which anyone with the database role could send.
        """
        wanted = set(tenants)
        if not wanted:
            return []
        async with self.database.control_session() as session:
            query = select(Tenant.id, Tenant.schema_name).where(
                Tenant.status == "active", Tenant.id.in_(sorted({tenant_id for tenant_id, _ in wanted}))
            )
            known = sorted((row[0], row[1]) for row in (await session.execute(query)).all() if tuple(row) in wanted)
        found = await self._due_in_batches(known, 0.0, events=False)
        return [ref for ref in found if isinstance(ref, OutboxRef)]

    def _grace(self, grace_seconds: float | None) -> float:
        return self.grace_seconds if grace_seconds is None else grace_seconds

    async def _due_in_batches(self, tenants: list[tuple[int, str]], grace: float, *, events: bool) -> list[JobRef]:
        found: list[JobRef] = []
        for start in range(0, len(tenants), self.options.sweep_batch):
            found += await self._due_in(tenants[start : start + self.options.sweep_batch], grace, events=events)
        return found

    async def _due_in(self, tenants: list[tuple[int, str]], grace: float, *, events: bool) -> list[JobRef]:
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
                elif events:
                    parts.append(
                        f"(SELECT 'e' AS k, {tenant_id} AS t, '{schema}' AS s, id FROM {quoted}.provider_events "
                        "WHERE status = 'received' AND received_at <= now() - make_interval(secs => :grace) "
                        f"ORDER BY received_at LIMIT {_PER_TENANT})"
                    )
            if not parts:
                return []
            rows = (await connection.execute(text(" UNION ALL ".join(parts)), {"grace": grace})).all()
            # End the read: it holds a lock on every table it touched (max_locks_per_transaction).
            await connection.rollback()
        return [
            OutboxRef(int(tenant_id), schema, int(row_id))
            if kind == "o"
            else EventRef(int(tenant_id), schema, int(row_id))
            for kind, tenant_id, schema, row_id in rows
        ]
