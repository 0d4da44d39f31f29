"""Entry point of the `billplane` command."""

from __future__ import annotations

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.cli.dev import dev
from billplane.cli.idempotency import idempotency
from billplane.cli.migrate import migrate
from billplane.cli.provider_events import provider_events
from billplane.cli.providers import providers
from billplane.cli.secrets import secrets
from billplane.cli.tenants import tenants
from billplane.cli.worker import worker
from billplane.db.paths import control_scripts
from billplane.runtime import Runtime
from billplane_tenants.migrations import upgrade_control


@click.group()
@click.version_option(package_name="billplane")
def cli() -> None:
    """billplane: self-hosted multi-tenant billing."""


@cli.command()
@click.option("--host", help="Interface to bind (default: BILLPLANE_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: BILLPLANE_PORT or 8000).")
@click.option("--workers", type=int, help="Worker processes (default: BILLPLANE_WORKERS or 1).")
@click.option(
    "--worker/--no-worker",
    "sync_worker",
    default=True,
    show_default=True,
    help="Run a provider sync worker inside each server process (else run `billplane worker` apart).",
)
def run(host: str | None, port: int | None, workers: int | None, *, sync_worker: bool) -> None:
    """Serve the API with the database named by BILLPLANE_DATABASE_URL."""
    # Imported here: the web stack costs about a second to import, which no other command needs.
    import uvicorn  # noqa: PLC0415

    from billplane.observability.logs import configure_logging  # noqa: PLC0415
    from billplane.observability.multiprocess import prepare_metrics_dir  # noqa: PLC0415

    settings = settings_for_cli(serving=True)
    observed = settings.observability
    configure_logging(observed.log_level, observed.log_format or "json")
    run_with_runtime(settings, _check_database)
    workers = workers or settings.server.workers
    # Before the app (and prometheus_client) is imported: server processes share this directory.
    prepare_metrics_dir(observed.metrics_dir, workers)
    from billplane.app import create_app  # noqa: PLC0415

    factory = "billplane.app:create_app_with_worker" if sync_worker else "billplane.app:create_app_without_worker"
    uvicorn.run(
        factory if workers > 1 else create_app(settings, worker=sync_worker),
        factory=workers > 1,
        host=host or settings.server.host,
        port=port or settings.server.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # billplane's own access line has the route, tenant and request id
        log_config=None,  # keep the logging configured above: uvicorn's lines come out as JSON too
    )


async def _check_database(runtime: Runtime) -> None:
    async with runtime.database.engine.connect():
        pass


@cli.group()
def db() -> None:
    """The shared control schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the control schema to the newest revision (tenant schemas: `tenants migrate`)."""

    async def work(runtime: Runtime) -> None:
        await upgrade_control(runtime.database, str(control_scripts()))

    run_with_runtime(settings_for_cli(serving=False), work)
    click.echo("control schema is at head")


cli.add_command(dev)
cli.add_command(tenants)
cli.add_command(idempotency)
cli.add_command(providers)
cli.add_command(provider_events)
cli.add_command(secrets)
cli.add_command(worker)
cli.add_command(migrate)
