"""Applying stored provider events to local state, in a job, each exactly once.

Events of one object can arrive in any order and more than once. Each event row is applied under
a row lock and only while ``received``. Every event is kept: one that changes nothing (stale, an
object billplane does not know, a type it does not act on) is marked ``ignored`` with the reason,
which ``GET /v1/provider-events`` shows the tenant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from billplane.db.job_owner import still_owned
from billplane.plugins.contract import ProviderEvent
from billplane.sync.refs import EventRef
from billplane.webhooks import money_events, object_events
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.object_events import Applier, Outcome
from billplane.webhooks.repository import EventRepository
from billplane_tenants import Database

logger = logging.getLogger("billplane.webhooks")

APPLIERS: dict[str, Applier] = {
    "subscription.updated": object_events.subscription_changed,
    "subscription.canceled": object_events.subscription_changed,
    "customer.created": object_events.customer_written_at_provider,
    "customer.updated": object_events.customer_written_at_provider,
    "customer.deleted": object_events.customer_deleted,
    "invoice.finalized": money_events.invoice_changed,
    "invoice.paid": money_events.invoice_changed,
    "invoice.payment_failed": money_events.invoice_changed,
    "payment.succeeded": money_events.payment_settled,
    "payment.failed": money_events.payment_settled,
    "refund.updated": money_events.refund_changed,
}


async def _not_handled(_events: EventRepository, row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", f"billplane does not act on {row.type} events"


@dataclass(slots=True)
class EventApplier:
    database: Database
    # Providers that bill the subscriptions they hold (ProviderPlugin.bills_subscriptions): their
    # events set a subscription's period; others' do not (``provider_state``).
    provider_billed: frozenset[str] = frozenset()

    async def apply(self, ref: EventRef) -> str:
        """Apply one stored event; returns applied, ignored, or skipped (already handled)."""
        async with self.database.tenant_session(ref.schema) as session:
            if not await still_owned(session, ref.tenant_id, ref.schema):
                logger.warning(
                    "provider event job %s of %s dropped: tenant %s is gone", ref.event_id, ref.schema, ref.tenant_id
                )
                return "skipped"
            events = EventRepository(session, self.provider_billed)
            row = await events.lock(ref.event_id)
            if row is None or row.status != "received":
                return "skipped"  # replayed or duplicated jobs are no-ops
            event = msgspec.convert(row.event, ProviderEvent)
            status, detail = await APPLIERS.get(row.type, _not_handled)(events, row, event)
            row.status, row.detail, row.applied_at = status, detail, datetime.now(UTC)
        if status == "ignored":
            logger.info("%s event %s of %s ignored: %s", row.provider, row.event_id, ref.schema, detail)
        return status
