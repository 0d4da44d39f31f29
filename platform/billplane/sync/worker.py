"""A sync worker: runs the queue's jobs (outbox rows, provider events, the sweep) for this runtime."""

from __future__ import annotations

from billplane.runtime import Runtime
from billplane.sync.jobs import WorkerServices, additional_context
from billplane.sync.performer import OutboxPerformer
from billplane.sync.queue import SYNC_QUEUE
from billplane.sync.sweep import Sweeper
from billplane.webhooks.apply import EventApplier


def worker_services(runtime: Runtime) -> WorkerServices:
    options = runtime.sync_options
    return WorkerServices(
        performer=OutboxPerformer(runtime.database, runtime.accounts, runtime.jobs, options),
        applier=EventApplier(runtime.database),
        sweeper=Sweeper(runtime.database, runtime.jobs, options),
    )


async def run_worker(
    runtime: Runtime, *, wait: bool = True, name: str = "billplane-worker", install_signal_handlers: bool = False
) -> None:
    """Run jobs until cancelled (``wait=True``) or until none is left (``wait=False``, tests, cron).

    Cancelling the task stops the worker gracefully: running jobs finish first. A job cut short
    harder than that (SIGKILL) leaves its outbox row pending, and the sweep retries it.
    """
    await runtime.jobs.open()
    await runtime.jobs.app.run_worker_async(
        queues=[SYNC_QUEUE],
        name=name,
        wait=wait,
        concurrency=runtime.sync_options.concurrency,
        install_signal_handlers=install_signal_handlers,
        additional_context=additional_context(worker_services(runtime)),
        delete_jobs="successful",
        listen_notify=wait,
    )
