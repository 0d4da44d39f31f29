"""`billplane secrets ...`: the keys that seal tenants' provider credentials and webhook signing secrets."""

from __future__ import annotations

import sys
from collections import Counter

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
from billplane.events.rotation import EndpointRotationReport, rotate_endpoints
from billplane.events.vault import EndpointVault
from billplane.provider_accounts.rotation import BATCH_SIZE, RotationReport, rotate
from billplane.provider_accounts.vault import AccountVault
from billplane.runtime import Runtime
from billplane.secrets.keys import KeyConfigError, generate_key


@click.group()
def secrets() -> None:
    """Encryption keys for secrets stored in the database (BILLPLANE_ENCRYPTION_KEYS)."""


@secrets.command("rotate")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, 10_000))
def rotate_command(batch_size: int) -> None:
    """Seal every stored secret again under the current (first) key.

    First every provider account's credentials and webhook secret (control schema), then every
    outbound webhook endpoint's signing secret (each tenant's schema); the secrets themselves do
    not change. Idempotent and resumable: what is already under the current key is left alone,
    each batch commits on its own, and a rerun continues where a stopped run ended. Once it
    reports no failures, the older keys can be removed from BILLPLANE_ENCRYPTION_KEYS. Exits 1 if
    an account or endpoint could not be opened (its key is not configured), or a tenant's endpoints
    could not be read.
    """

    async def work(runtime: Runtime) -> tuple[RotationReport, EndpointRotationReport]:
        accounts = await rotate(runtime.database, AccountVault.from_settings(runtime.settings), batch_size=batch_size)
        vault = EndpointVault.from_settings(runtime.settings)
        return accounts, await rotate_endpoints(runtime.database, vault, batch_size=batch_size)

    report, endpoints = run_with_runtime(settings_for_cli(serving=False), work)
    click.echo(_summary(report.current_key_id, "account", report.rotated, report.already_current, len(report.failed)))
    for account_id, reason in report.failed:
        click.echo(f"  FAILED account {account_id}: {reason}", err=True)
    click.echo(
        _summary(
            endpoints.current_key_id,
            "webhook endpoint",
            endpoints.rotated,
            endpoints.already_current,
            len(endpoints.failed),
        )
    )
    for slug, endpoint_id, reason in endpoints.failed:
        click.echo(f"  FAILED webhook endpoint {endpoint_id} of tenant {slug}: {reason}", err=True)
    for slug in endpoints.unread:
        click.echo(
            f"  FAILED tenant {slug}: its webhook endpoints could not be read (see the log); run again", err=True
        )
    sys.exit(1 if report.failed or endpoints.failed or endpoints.unread else 0)


def _summary(key_id: str, what: str, rotated: Counter[str], already_current: int, failed: int) -> str:
    origins = ", ".join(f"{count} from {old}" for old, count in sorted(rotated.items()))
    return (
        f"current key {key_id}: re-encrypted {sum(rotated.values())} {what}(s)"
        + (f" ({origins})" if origins else "")
        + f", {already_current} already current, {failed} failed"
    )


@secrets.command("generate-key")
@click.argument("key_id")
def generate_key_command(key_id: str) -> None:
    """Print a new random key as KEY_ID:base64, to put first in BILLPLANE_ENCRYPTION_KEYS."""
    try:
        click.echo(generate_key(key_id))
    except KeyConfigError as exc:
        raise click.ClickException(str(exc)) from exc
