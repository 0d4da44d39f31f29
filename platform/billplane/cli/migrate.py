"""`billplane migrate`: the one step a deployment runs before it rolls out a new version.

The control schema first (the tenant fan-out records its runs there), then every tenant schema.
Migrations are expand/contract, so the old version keeps serving while this runs; the new version
rolls out only after it exits 0.
"""

from __future__ import annotations

import sys

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.cli.tenants import migrate_with_progress
from billplane.db.paths import control_scripts
from billplane.runtime import Runtime
from billplane_tenants.migrations import upgrade_control


@click.command("migrate")
def migrate() -> None:
    """Upgrade the control schema, then every tenant schema (`db upgrade` + `tenants migrate`).

    Exits 1 when any tenant failed (each failure is named; the others are upgraded); a rerun
    resumes. Run it once per release, before the new API and workers start.
    """

    async def work(runtime: Runtime) -> int:
        await upgrade_control(runtime.database, str(control_scripts()))
        click.echo("control schema is at head")
        return await migrate_with_progress(runtime, None)

    sys.exit(run_with_runtime(settings_for_cli(serving=False), work))
