"""Expiring subscriptions left ``incomplete``: an approval (PayPal) that never came.

Stripe gives up on an incomplete subscription after 23 hours; billplane does the same for every
provider (``BILLPLANE_INCOMPLETE_EXPIRY_HOURS``, default 23). The subscription becomes
``incomplete_expired`` and, if the provider has it, a ``subscription.cancel`` outbox row cancels it
there, so a late approval cannot start billing; each expiry is a ``subscription.incomplete_expired``
event in the same transaction. One read finds candidates in a batch of tenants (like the sweep);
only tenants with some are then written to, one transaction each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text, update

from billplane.db import tenant_scan
from billplane.events import types
from billplane.events.emit import emit
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef
from billplane.sync.repository import OutboxRepository
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.sync")


@dataclass(slots=True)
class IncompleteExpiry:
    database: Database
    queue: JobQueue
    hours: float = 23.0

    async def expire(self) -> int:
        """Expire every overdue incomplete subscription of every active tenant; returns how many."""
        tenants = await tenant_scan.active_tenants(self.database)
        expired = 0
        for batch in tenant_scan.batches(list(tenants)):
            for schema in await self._with_overdue(batch):
                expired += await self._expire_in(tenants[schema], schema)
        if expired:
            logger.info("expired %d incomplete subscriptions", expired)
        return expired

    async def _with_overdue(self, schemas: list[str]) -> list[str]:
        def part(schema: str) -> str:
            return (
                f"(SELECT '{schema}' AS s, id FROM {quoted_schema(schema)}.subscriptions WHERE status = 'incomplete' "
                "AND created_at < now() - make_interval(secs => :seconds) LIMIT 1)"
            )

        params = {"seconds": self.hours * 3600}
        return list(
            await tenant_scan.ids_by_schema(self.database, schemas, table="subscriptions", part=part, params=params)
        )

    async def _expire_in(self, tenant_id: int, schema: str) -> int:
        async with self.database.tenant_session(schema) as session:
            statement = (
                update(Subscription)
                .where(Subscription.status == "incomplete")
                .where(Subscription.created_at < text("now() - make_interval(secs => :seconds)"))
                .values(status="incomplete_expired", next_action_type=None, next_action_url=None)
                .returning(Subscription)
                .execution_options(synchronize_session=False)
            )
            rows = list((await session.scalars(statement, {"seconds": self.hours * 3600})).all())
            outbox = OutboxRepository(session)
            queued = []
            for subscription in rows:
                account_id, provider_id = subscription.provider_account_id, subscription.provider_subscription_id
                if account_id is not None and provider_id is not None:
                    queued += await outbox.add("subscription.cancel", subscription.id, [account_id])
                change = types.subscription_change("incomplete", subscription.status)
                shown = SubscriptionView.of(subscription)
                await emit(session, change, types.SUBSCRIPTION_OBJECT, subscription.id, shown)
            refs = [OutboxRef(tenant_id, schema, row.id) for row in queued]
            if refs:
                ring_after_commit(session, self.queue, refs)
        return len(rows)
