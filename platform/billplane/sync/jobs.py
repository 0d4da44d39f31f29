"""The procrastinate tasks. Each only says which row to look at; the row says what to do."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import JobContext

from billplane.billing.dunning_tasks import ADVANCE_CLOCKS, DUNNING_RUN, RECONCILE_PAYMENTS
from billplane.events.jobs import register_webhook_tasks
from billplane.observability.context import job_context
from billplane.sync.queue import APPLY_EVENT, BILLING_RUN, PERFORM_OUTBOX, SWEEP, SYNC_QUEUE
from billplane.sync.refs import EventRef, OutboxRef

if TYPE_CHECKING:
    from billplane.billing.clocks_advance import ClockAdvancer
    from billplane.billing.dunning_run import DunningRun
    from billplane.billing.run import BillingRun
    from billplane.payments.reconcile_run import PaymentReconciliation
    from billplane.sync.expiry import IncompleteExpiry
    from billplane.sync.performer import OutboxPerformer
    from billplane.sync.sweep import Sweeper
    from billplane.webhooks.apply import EventApplier

logger = logging.getLogger("billplane.sync")
CONTEXT_KEY = "billplane"


@dataclass(frozen=True, slots=True)
class WorkerServices:
    """What the tasks of one worker use; handed to procrastinate as additional context."""

    performer: OutboxPerformer
    applier: EventApplier
    sweeper: Sweeper
    expiry: IncompleteExpiry
    billing: BillingRun
    dunning: DunningRun
    clocks: ClockAdvancer
    reconciliation: PaymentReconciliation


def _job_id(context: JobContext) -> int | None:
    return context.job.id if context.job is not None else None


def _services(context: JobContext) -> WorkerServices:
    services: WorkerServices = context.additional_context[CONTEXT_KEY]
    return services


def register_tasks(app: procrastinate.App) -> None:
    """Declare billplane's tasks on one procrastinate App (one per JobQueue, so one per runtime:
    a shared Blueprint cannot serve several Apps in one process, it renames its tasks in place)."""

    @app.task(name=PERFORM_OUTBOX, queue=SYNC_QUEUE, pass_context=True)
    async def perform_outbox(context: JobContext, tenant_id: int, schema: str, outbox_id: int) -> None:
        with job_context(PERFORM_OUTBOX, _job_id(context), tenant_id=tenant_id, schema=schema):
            outcome = await _services(context).performer.perform(OutboxRef(tenant_id, schema, outbox_id))
            logger.debug("outbox row %s of %s: %s", outbox_id, schema, outcome)

    @app.task(name=APPLY_EVENT, queue=SYNC_QUEUE, pass_context=True)
    async def apply_event(context: JobContext, tenant_id: int, schema: str, event_id: int) -> None:
        with job_context(APPLY_EVENT, _job_id(context), tenant_id=tenant_id, schema=schema):
            outcome = await _services(context).applier.apply(EventRef(tenant_id, schema, event_id))
            logger.debug("provider event %s of %s: %s", event_id, schema, outcome)

    @app.periodic(cron="* * * * *", periodic_id="sweep")
    @app.task(name=SWEEP, queue=SYNC_QUEUE, pass_context=True, queueing_lock=SWEEP)
    async def sweep(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        services = _services(context)
        await services.sweeper.sweep()
        await services.expiry.expire()

    register_billing_tasks(app)
    register_webhook_tasks(app)


def register_billing_tasks(app: procrastinate.App) -> None:
    @app.periodic(cron="* * * * *", periodic_id="billing-run")
    @app.task(name=BILLING_RUN, queue=SYNC_QUEUE, pass_context=True, queueing_lock=BILLING_RUN)
    async def billing_run(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        await _services(context).billing.run()

    @app.periodic(cron="* * * * *", periodic_id="dunning-run")
    @app.task(name=DUNNING_RUN, queue=SYNC_QUEUE, pass_context=True, queueing_lock=DUNNING_RUN)
    async def dunning_run(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        await _services(context).dunning.run()

    # Every 5 minutes: a payment is reconciled minutes after its charge gave up, never sooner.
    @app.periodic(cron="*/5 * * * *", periodic_id="payment-reconciliation")
    @app.task(name=RECONCILE_PAYMENTS, queue=SYNC_QUEUE, pass_context=True, queueing_lock=RECONCILE_PAYMENTS)
    async def reconcile_payments(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        await _services(context).reconciliation.run()

    @app.periodic(cron="* * * * *", periodic_id="test-clocks")
    @app.task(name=ADVANCE_CLOCKS, queue=SYNC_QUEUE, pass_context=True, queueing_lock=ADVANCE_CLOCKS)
    async def advance_clocks(context: JobContext, timestamp: int) -> None:  # noqa: ARG001 - procrastinate passes the tick
        await _services(context).clocks.run()


def additional_context(services: WorkerServices) -> dict[str, Any]:
    return {CONTEXT_KEY: services}
