"""Expiring subscriptions left ``incomplete``: an approval (PayPal) that never came.

Stripe gives up on an incomplete subscription after 23 hours; billplane does the same for every
provider (``BILLPLANE_INCOMPLETE_EXPIRY_HOURS``, default 23). The subscription becomes
``incomplete_expired`` and, if the provider has it, a ``subscription.cancel`` outbox row cancels it
there, so a late approval cannot start billing. One read finds candidates in a batch of tenants
(like the sweep); only tenants with some are then written to, one transaction each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, text, update

from billplane.subscriptions.models import Subscription
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef
from billplane.sync.repository import OutboxRepository
from billplane_tenants import Database, Tenant
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.sync")
_BATCH = 500
_TABLES = text(
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 'subscriptions' AND n.nspname = ANY(:schemas)"
)


@dataclass(slots=True)
class IncompleteExpiry:
    database: Database
    queue: JobQueue
    hours: float = 23.0

    async def expire(self) -> int:
        """Expire every overdue incomplete subscription of every active tenant; returns how many."""
        async with self.database.control_session() as session:
            query = select(Tenant.schema_name, Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)
            tenants = {str(row[0]): int(row[1]) for row in (await session.execute(query)).all()}
        schemas = list(tenants)
        expired = 0
        for start in range(0, len(schemas), _BATCH):
            for schema in await self._with_overdue(schemas[start : start + _BATCH]):
                expired += await self._expire_in(tenants[schema], schema)
        if expired:
            logger.info("expired %d incomplete subscriptions", expired)
        return expired

    async def _with_overdue(self, schemas: list[str]) -> list[str]:
        async with self.database.engine.connect() as connection:
            present = list((await connection.execute(_TABLES, {"schemas": schemas})).scalars())
            if not present:
                return []
            parts = [
                f"(SELECT '{schema}' AS s FROM {quoted_schema(schema)}.subscriptions WHERE status = 'incomplete' "
                "AND created_at < now() - make_interval(secs => :seconds) LIMIT 1)"
                for schema in sorted(present)
            ]
            found = (await connection.execute(text(" UNION ALL ".join(parts)), {"seconds": self.hours * 3600})).all()
            await connection.rollback()  # release the read's locks on every table it touched
        return [str(row[0]) for row in found]

    async def _expire_in(self, tenant_id: int, schema: str) -> int:
        async with self.database.tenant_session(schema) as session:
            statement = (
                update(Subscription)
                .where(Subscription.status == "incomplete")
                .where(Subscription.created_at < text("now() - make_interval(secs => :seconds)"))
                .values(status="incomplete_expired", next_action_type=None, next_action_url=None)
                .returning(Subscription.id, Subscription.provider_account_id, Subscription.provider_subscription_id)
                .execution_options(synchronize_session=False)
            )
            rows = (await session.execute(statement, {"seconds": self.hours * 3600})).all()
            outbox = OutboxRepository(session)
            queued = []
            for subscription_id, account_id, provider_id in rows:
                if account_id is not None and provider_id is not None:
                    queued += await outbox.add("subscription.cancel", subscription_id, [account_id])
            refs = [OutboxRef(tenant_id, schema, row.id) for row in queued]
            if refs:
                ring_after_commit(session, self.queue, refs)
        return len(rows)
