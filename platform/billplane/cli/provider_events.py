"""`billplane provider-events reapply`: apply a tenant's ignored provider event again.

The operator's way to what the tenant does with ``POST /v1/provider-events/{id}/reapply``: once a
release fixed what made the database refuse an event, the operator can put back every tenant's
events without asking each tenant (``GET /v1/provider-events?status=ignored`` lists them).
"""

from __future__ import annotations

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.runtime import Runtime

OPERATOR = "by the operator"


@click.group("provider-events")
def provider_events() -> None:
    """What the tenants' payment providers reported through their webhooks."""


@provider_events.command("reapply")
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.argument("event_id", type=int)
def reapply(slug: str, event_id: int) -> None:
    """Apply ignored provider event EVENT_ID (its `id` in the API) of tenant SLUG again.

    For an event the database refused, or that waited a day for what it needed, once that is put
    right. It is received again, and a worker applies it. Fails for an event that is not ignored.
    """
    # Imported here: the webhook domain brings the web stack, about a second that no other command needs.
    from litestar.exceptions import HTTPException  # noqa: PLC0415

    from billplane.db.job_owner import TenantGoneError, owned_session  # noqa: PLC0415
    from billplane.sync.refs import EventRef  # noqa: PLC0415
    from billplane.webhooks.service import reapply as reapply_event  # noqa: PLC0415

    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            tenant = await runtime.registry.get(session, slug)
        if tenant is None:
            raise click.ClickException(f"no tenant {slug!r}")
        ref = EventRef(tenant.id, tenant.schema_name, event_id)
        try:
            # Holding the tenant, as a job does: a deletion meanwhile waits, or makes this fail.
            async with owned_session(runtime.database, ref.tenant_id, ref.schema) as session:
                await reapply_event(session, runtime.jobs, ref, by=OPERATOR)
        except HTTPException as exc:
            raise click.ClickException(f"tenant {slug}: {exc.detail}") from exc
        except TenantGoneError as exc:
            raise click.ClickException(f"no tenant {slug!r}") from exc
        # The job is handed to the queue when the runtime closes (it waits for the hand-off).
        click.echo(f"provider event {event_id} of {slug} is received again: a worker applies it")

    run_with_runtime(settings_for_cli(serving=False), work)
