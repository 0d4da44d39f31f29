"""`billplane tenants ...`: tenant administration and the migration fan-out."""

from __future__ import annotations

import sys
from typing import Any

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.runtime import Runtime
from billplane.tenancy.deletion import money_left
from billplane_tenants import InvalidSlugError, RunReport, TenantExistsError, TenantOutcome, TenantPlan


@click.group()
def tenants() -> None:
    """Create, list, suspend, resume, delete and migrate tenants."""


@tenants.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def create(slug: str, name: str | None) -> None:
    """Create tenant SLUG and print its first API key (shown once)."""

    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            tenant, key = await runtime.registry.create(session, slug, name or slug)
        click.echo(f"created tenant {tenant.slug} (schema {tenant.schema_name} at {tenant.schema_revision})")
        click.echo(f"API key (shown once, keep it now): {key.key}")

    try:
        run_with_runtime(settings_for_cli(serving=False), work)
    except (InvalidSlugError, TenantExistsError) as exc:
        raise click.ClickException(str(exc)) from exc


@tenants.command("list")
def list_tenants() -> None:
    """List every tenant with its status and schema revision."""

    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            rows = await runtime.registry.all(session)
        click.echo(f"{'SLUG':<24} {'STATUS':<10} {'REVISION':<16} MIGRATION")
        for tenant in rows:
            migration = tenant.migration_status or "-"
            click.echo(f"{tenant.slug:<24} {tenant.status:<10} {tenant.schema_revision or '-':<16} {migration}")

    run_with_runtime(settings_for_cli(serving=False), work)


def _set_status(slug: str, status: str) -> None:
    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            tenant = await runtime.registry.get(session, slug)
            if tenant is None:
                raise click.ClickException(f"no tenant {slug!r}")
            await runtime.registry.set_status(session, tenant, status)
        click.echo(f"tenant {slug} is {status}")

    run_with_runtime(settings_for_cli(serving=False), work)


@tenants.command("suspend")
@click.argument("slug")
def suspend(slug: str) -> None:
    """Suspend tenant SLUG: its API keys get 403 (within the auth cache bound)."""
    _set_status(slug, "suspended")


@tenants.command("resume")
@click.argument("slug")
def resume(slug: str) -> None:
    """Resume a suspended tenant."""
    _set_status(slug, "active")


@tenants.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete even while providers bill its subscriptions or money is pending.")
def delete(slug: str, yes: bool, force: bool) -> None:  # noqa: FBT001 - click passes flags positionally
    """Delete tenant SLUG and drop its schema with all its data."""
    if not yes:
        click.confirm(f"Drop tenant {slug!r} and all of its data?", abort=True)

    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            tenant = await runtime.registry.get(session, slug)
            if tenant is None:
                raise click.ClickException(f"no tenant {slug!r}")
            left = None if force else await money_left(session, runtime.plugins, tenant)
            if left is not None:
                raise click.ClickException(f"tenant {slug!r} cannot be deleted yet: {left} (or use --force)")
            await runtime.registry.delete(session, tenant)
        click.echo(f"deleted tenant {slug}")

    run_with_runtime(settings_for_cli(serving=False), work)


@tenants.command("migrate")
@click.option("--tenant", "slugs", multiple=True, help="Only this tenant (repeatable). Default: all.")
@click.option("--dry-run", is_flag=True, help="List what would change, change nothing.")
def migrate(slugs: tuple[str, ...], dry_run: bool) -> None:  # noqa: FBT001 - click passes flags positionally
    """Upgrade tenant schemas to the newest revision.

    One tenant's failure is recorded and reported and the others go on; the exit code is 1 when any
    tenant failed. Rerunning resumes: tenants already at the head are skipped.
    """
    selected = list(slugs) or None

    async def work(runtime: Runtime) -> int:
        if dry_run:
            _print_plan(await runtime.migrator.plan(selected), runtime.migrator.head)
            return 0
        return await migrate_with_progress(runtime, selected)

    sys.exit(run_with_runtime(settings_for_cli(serving=False), work))


async def migrate_with_progress(runtime: Runtime, selected: list[str] | None) -> int:
    """Migrate the ``selected`` tenants (None: all) with a progress bar and a report; the exit code."""
    progress = _Progress()
    try:
        report = await runtime.migrator.migrate(selected, on_plan=progress.start, on_tenant=progress.advance)
    finally:
        progress.finish()
    _print_report(report)
    return 1 if report.failed else 0


class _Progress:
    """A click progress bar on stderr, opened once the number of tenants to migrate is known."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, todo: list[TenantPlan]) -> None:
        if todo:
            self._bar = click.progressbar(length=len(todo), label="Migrating tenants", file=sys.stderr, show_pos=True)
            self._bar.__enter__()

    def advance(self, outcome: TenantOutcome) -> None:
        if self._bar is not None:
            self._bar.update(1, outcome.slug)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _print_plan(plans: list[TenantPlan], head: str) -> None:
    pending = [plan for plan in plans if plan.pending]
    click.echo(f"head: {head}; {len(pending)} of {len(plans)} tenants would be upgraded")
    for plan in pending:
        click.echo(f"  {plan.slug}: {plan.current or '(unstamped)'} -> {' -> '.join(plan.pending)}")


def _print_report(report: RunReport) -> None:
    click.echo(
        f"head {report.head}: {len(report.upgraded)} upgraded, {len(report.current)} already current, "
        f"{len(report.failed)} failed" + (f" (run {report.run_id})" if report.run_id else "")
    )
    for outcome in report.failed:
        click.echo(f"  FAILED {outcome.slug} at {outcome.from_revision or '(unstamped)'}: {outcome.error}", err=True)
