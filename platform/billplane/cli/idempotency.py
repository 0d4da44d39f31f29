"""`billplane idempotency purge`: delete expired Idempotency-Key records in every schema."""

from __future__ import annotations

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.idempotency.models import AdminIdempotencyKey, IdempotencyKey
from billplane.idempotency.repository import purge_expired
from billplane.runtime import Runtime


@click.group()
def idempotency() -> None:
    """Stored first responses of POSTs made with an Idempotency-Key (kept 24 hours)."""


@idempotency.command("purge")
def purge() -> None:
    """Delete expired records in the control schema and every tenant schema.

    Each stored response already deletes a few expired ones; run this daily (cron, or the job
    queue when it arrives) so quiet tenants are swept too.
    """

    async def work(runtime: Runtime) -> int:
        async with runtime.database.control_session() as session:
            removed = await purge_expired(session, AdminIdempotencyKey)
            tenants = await runtime.registry.all(session)
        for tenant in tenants:
            async with runtime.database.tenant_session(tenant.schema_name) as session:
                removed += await purge_expired(session, IdempotencyKey)
        click.echo(f"removed {removed} expired idempotency records from {len(tenants)} tenants and control")
        return removed

    run_with_runtime(settings_for_cli(serving=False), work)
