"""`billplane worker`: run sync workers without the API (scale them apart from the API servers)."""

from __future__ import annotations

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.runtime import Runtime


@click.command()
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit (cron, checks).")
@click.option("--concurrency", type=int, help="Jobs run at once (default 4).")
def worker(*, once: bool, concurrency: int | None) -> None:
    """Run provider sync jobs (outbox rows, provider webhook events, the periodic sweep).

    Stops gracefully on Ctrl-C or SIGTERM: running jobs finish first. Any number of workers
    may run at once, on any machines, against the same database.
    """
    from dataclasses import replace  # noqa: PLC0415

    from billplane.sync.worker import run_worker  # noqa: PLC0415 - psycopg and procrastinate load here only

    async def work(runtime: Runtime) -> None:
        if concurrency is not None:
            runtime.sync_options = replace(runtime.sync_options, concurrency=max(concurrency, 1))
        await run_worker(runtime, wait=not once, name="billplane-worker", install_signal_handlers=not once)

    run_with_runtime(settings_for_cli(serving=False), work)
