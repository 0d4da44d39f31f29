"""`billplane worker`: run sync workers without the API (scale them apart from the API servers)."""

from __future__ import annotations

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.runtime import Runtime


@click.command()
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit (cron, checks).")
@click.option("--concurrency", type=int, help="Jobs run at once (default 4).")
@click.option(
    "--metrics-port", type=int, help="Serve Prometheus metrics on this port (default: BILLPLANE_WORKER_METRICS_PORT)."
)
def worker(*, once: bool, concurrency: int | None, metrics_port: int | None) -> None:
    """Run provider sync jobs (outbox rows, provider webhook events, the periodic sweep).

    Stops gracefully on Ctrl-C or SIGTERM: running jobs finish first. Any number of workers
    may run at once, on any machines, against the same database.
    """
    from dataclasses import replace  # noqa: PLC0415

    from billplane.observability.logs import configure_logging  # noqa: PLC0415
    from billplane.observability.multiprocess import leave_metrics_dir  # noqa: PLC0415

    # The worker keeps its metrics in memory and serves them itself (never in the API's directory).
    leave_metrics_dir()
    settings = settings_for_cli(serving=False)
    observed = settings.observability
    configure_logging(observed.log_level, observed.log_format or "json")
    from billplane.observability.worker_metrics import serve_worker_metrics  # noqa: PLC0415
    from billplane.sync.worker import run_worker  # noqa: PLC0415 - psycopg and procrastinate load here only

    port = metrics_port or observed.worker_metrics_port
    if port is not None:
        serve_worker_metrics(port, settings.server.host)

    async def work(runtime: Runtime) -> None:
        if concurrency is not None:
            runtime.sync_options = replace(runtime.sync_options, concurrency=max(concurrency, 1))
        await run_worker(runtime, wait=not once, name="billplane-worker", install_signal_handlers=not once)

    run_with_runtime(settings, work)
