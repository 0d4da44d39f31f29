"""A sync worker: runs the queue's jobs (outbox rows, provider events, the sweep) for this runtime."""

from __future__ import annotations

import asyncio
import contextlib

from billplane.billing.clocks_advance import ClockAdvancer
from billplane.billing.dunning_run import DunningRun
from billplane.billing.run import BillingRun
from billplane.events.jobs import webhook_context
from billplane.events.worker import delivery_listener, webhook_services
from billplane.payments.lookup import PaymentLookup
from billplane.payments.reconcile_run import PaymentReconciliation
from billplane.runtime import Runtime
from billplane.sync.expiry import IncompleteExpiry
from billplane.sync.jobs import WorkerServices, additional_context
from billplane.sync.listener import OutboxListener, asyncpg_dsn
from billplane.sync.performer import OutboxPerformer
from billplane.sync.queue import SYNC_QUEUE
from billplane.sync.sweep import Sweeper
from billplane.webhooks.apply import EventApplier


def provider_billed(runtime: Runtime) -> frozenset[str]:
    """Installed providers that bill the subscriptions they hold (Stripe, PayPal)."""
    return runtime.plugins.billers()


def worker_services(runtime: Runtime) -> WorkerServices:
    options = runtime.sync_options
    performer = OutboxPerformer(runtime.database, runtime.accounts, runtime.jobs, options)
    return WorkerServices(
        performer=performer,
        applier=EventApplier(runtime.database, provider_billed(runtime), defaults=runtime.accounts is not None),
        sweeper=Sweeper(runtime.database, runtime.jobs, options),
        billing=BillingRun(runtime.database, runtime.accounts, provider_billed=provider_billed(runtime)),
        dunning=DunningRun(runtime.database, runtime.jobs, runtime.accounts),
        clocks=ClockAdvancer(
            runtime.database, runtime.jobs, runtime.accounts, performer, provider_billed=provider_billed(runtime)
        ),
        expiry=IncompleteExpiry(runtime.database, runtime.jobs, runtime.settings.providers.incomplete_expiry_hours),
        reconciliation=PaymentReconciliation(
            runtime.database,
            PaymentLookup(runtime.accounts, runtime.plugins),
            runtime.settings.providers.payment_reconcile_after,
            runtime.settings.providers.payment_pending_checks,
        ),
    )


async def run_worker(
    runtime: Runtime, *, wait: bool = True, name: str = "billplane-worker", install_signal_handlers: bool = False
) -> None:
    """Run jobs until cancelled (``wait=True``) or until none is left (``wait=False``, tests, cron).

    A waiting worker also runs the outbox listener: it defers the jobs of rows that creates
    queued (they notify instead of deferring in the API process). Cancelling the task stops the
    worker gracefully: running jobs finish first. A job cut short harder than that (SIGKILL)
    leaves its outbox row pending, and the sweep retries it.
    """
    await runtime.jobs.open()
    services, webhooks = worker_services(runtime), webhook_services(runtime)
    listening: asyncio.Task[None] | None = None
    hearing: asyncio.Task[None] | None = None
    if wait:
        listener = OutboxListener(asyncpg_dsn(runtime.settings.database.listening_url), services.sweeper, runtime.jobs)
        listening = asyncio.create_task(listener.run(), name=f"{name}-outbox-listener")
        hearing = asyncio.create_task(delivery_listener(runtime, webhooks).run(), name=f"{name}-webhooks-listener")
    try:
        await runtime.jobs.app.run_worker_async(
            queues=[SYNC_QUEUE],
            name=name,
            wait=wait,
            concurrency=runtime.sync_options.concurrency,
            install_signal_handlers=install_signal_handlers,
            additional_context={**additional_context(services), **webhook_context(webhooks)},
            delete_jobs="successful",
            listen_notify=wait,
        )
    finally:
        for task in (listening, hearing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
