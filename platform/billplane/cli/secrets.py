"""`billplane secrets ...`: the keys that seal tenants' provider credentials."""

from __future__ import annotations

import sys

import click

from billplane.cli.context import run_with_runtime, settings_for_cli
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
    """Seal every provider account's secrets again under the current (first) key.

    Idempotent and resumable: accounts already under the current key are left alone, each batch
    commits on its own, and a rerun continues where a stopped run ended. Once it reports no
    failures, the older keys can be removed from BILLPLANE_ENCRYPTION_KEYS. Exits 1 if an account
    could not be opened (its key is not configured).
    """

    async def work(runtime: Runtime) -> RotationReport:
        return await rotate(runtime.database, AccountVault.from_settings(runtime.settings), batch_size=batch_size)

    report = run_with_runtime(settings_for_cli(serving=False), work)
    moved = sum(report.rotated.values())
    origins = ", ".join(f"{count} from {key_id}" for key_id, count in sorted(report.rotated.items()))
    click.echo(
        f"current key {report.current_key_id}: re-encrypted {moved} account(s)"
        + (f" ({origins})" if origins else "")
        + f", {report.already_current} already current, {len(report.failed)} failed"
    )
    for account_id, reason in report.failed:
        click.echo(f"  FAILED account {account_id}: {reason}", err=True)
    sys.exit(1 if report.failed else 0)


@secrets.command("generate-key")
@click.argument("key_id")
def generate_key_command(key_id: str) -> None:
    """Print a new random key as KEY_ID:base64, to put first in BILLPLANE_ENCRYPTION_KEYS."""
    try:
        click.echo(generate_key(key_id))
    except KeyConfigError as exc:
        raise click.ClickException(str(exc)) from exc
