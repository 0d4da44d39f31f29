"""The webhook tasks (deliver one delivery; the periodic sweep) and how their jobs are deferred.

Like provider sync's jobs, a job only names a row: ``webhook_deliveries`` is the truth, so a
lost, doubled or late job costs time, never a delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from procrastinate import JobContext

from billplane.observability.context import job_context
from billplane.sync.queue import SYNC_QUEUE, JobQueue

if TYPE_CHECKING:
    import procrastinate

    from billplane.events.deliverer import WebhookDeliverer
    from billplane.events.sweep import DeliverySweeper

logger = logging.getLogger("billplane.webhooks")
DELIVER = "billplane.deliver_webhook"
SWEEP = "billplane.sweep_webhooks"
CONTEXT_KEY = "billplane_webhooks"
# How often the sweep runs (its cron, below).
SWEEP_SECONDS = 60.0
_WAITING_LOCKS = "SELECT queueing_lock FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = ANY(%(locks)s)"


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    tenant_id: int
    schema: str
    delivery_id: int

    def job_args(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "schema": self.schema, "delivery_id": self.delivery_id}

    @property
    def queueing_lock(self) -> str:
        return f"webhook:{self.tenant_id}:{self.schema}:{self.delivery_id}"


@dataclass(frozen=True, slots=True)
class WebhookServices:
    deliverer: WebhookDeliverer
    sweeper: DeliverySweeper


def _services(context: JobContext) -> WebhookServices:
    services: WebhookServices = context.additional_context[CONTEXT_KEY]
    return services


def register_webhook_tasks(app: procrastinate.App) -> None:
    @app.task(name=DELIVER, queue=SYNC_QUEUE, pass_context=True)
    async def deliver_webhook(context: JobContext, tenant_id: int, schema: str, delivery_id: int) -> None:
        job_id = context.job.id if context.job is not None else None
        with job_context(DELIVER, job_id, tenant_id=tenant_id, schema=schema):
            outcome = await _services(context).deliverer.deliver(DeliveryRef(tenant_id, schema, delivery_id))
            logger.debug("webhook delivery %s of %s: %s", delivery_id, schema, outcome)

    @app.periodic(cron="* * * * *", periodic_id="webhooks-sweep")
    @app.task(name=SWEEP, queue=SYNC_QUEUE, pass_context=True, queueing_lock=SWEEP)
    async def sweep_webhooks(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        await _services(context).sweeper.sweep()


def webhook_context(services: WebhookServices) -> dict[str, Any]:
    return {CONTEXT_KEY: services}


async def defer(queue: JobQueue, ref: DeliveryRef, *, at: datetime | None = None, lock: bool = True) -> bool:
    """Defer one job; with ``lock``, not if one for the same delivery is already waiting (False then).

    Scheduled retries go without the lock, as in provider sync: a job waiting for a later time
    must not keep the sweep from queueing a delivery that became due sooner (a replay).
    """
    from procrastinate.exceptions import AlreadyEnqueued  # noqa: PLC0415 - procrastinate loads lazily

    await queue.open()
    deferrer = queue.app.tasks[DELIVER].configure(queueing_lock=ref.queueing_lock if lock else None, schedule_at=at)
    try:
        await deferrer.defer_async(**ref.job_args())
    except AlreadyEnqueued:
        return False
    return True


async def defer_missing(queue: JobQueue, refs: Sequence[DeliveryRef]) -> int:
    """``defer`` each ref with no job waiting, one query to find those that have one."""
    if not refs:
        return 0
    await queue.open()
    locks = [ref.queueing_lock for ref in refs]
    rows = await queue.app.connector.execute_query_all_async(_WAITING_LOCKS, locks=locks)
    waiting = {row["queueing_lock"] for row in rows}
    deferred = 0
    for ref in refs:
        if ref.queueing_lock not in waiting:
            deferred += await defer(queue, ref)
    return deferred
