"""`billplane dev`: what `make run` calls. One command from a fresh checkout to a working API."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path

import click

from billplane.cli.context import run_with_runtime
from billplane.cli.devenv import DevEnvironment
from billplane.db.paths import control_scripts
from billplane.embedded.postgres import EmbeddedPostgresError
from billplane.events.options import ALLOW_HTTP_LOOPBACK_VARIABLE
from billplane.runtime import Runtime
from billplane.settings import SettingsError, load_settings
from billplane_tenants import Tenant
from billplane_tenants.migrations import upgrade_control

DEMO_SLUG = "demo"
SANDBOX = "sandbox"
SANDBOX_DEMO_API_KEY = "sk_sandbox_demo"  # the sandbox simulates a processor: no real secret
WEBHOOK_ENTRY = "demo_sandbox_webhook_secret"  # where dev-secrets.json keeps it


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="BILLPLANE_HOST")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), envvar="BILLPLANE_PORT")
def dev(host: str, port: int) -> None:
    """Start billplane for development.

    With no BILLPLANE_DATABASE_URL, an embedded PostgreSQL keeps its data in .billplane/ (stopped
    again on Ctrl-C). Upgrades every schema, creates the `demo` tenant on first start and prints
    the URL and keys. The address also comes from BILLPLANE_HOST and BILLPLANE_PORT
    (`BILLPLANE_PORT=8001 make run`).
    """
    # Before anything starts: a server that cannot bind leaves the database it started running.
    taken = port_in_use(host, port)
    if taken is not None:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({taken}): stop what uses it, or choose another port "
            "with --port or BILLPLANE_PORT (BILLPLANE_PORT=8001 make run)"
        )
    environment = DevEnvironment.at(Path.cwd())
    external_url = os.environ.get("BILLPLANE_DATABASE_URL")
    if external_url is None:
        click.echo("Starting the embedded PostgreSQL in " + str(environment.postgres_dir))
        try:
            notes = environment.start_database(stop_at_exit=True)
        except EmbeddedPostgresError as exc:
            raise click.ClickException(str(exc)) from exc
        for note in notes:
            click.echo(f"  note: {note}")
    env = {**os.environ, **environment.environment(external_url)}
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc

    from billplane.observability.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings.observability.log_level, settings.observability.log_format or "text")
    demo_key = run_with_runtime(settings, lambda runtime: _prepare(runtime, environment))
    # Imported here: the web stack costs about a second to import, which no other command needs.
    import uvicorn  # noqa: PLC0415

    from billplane.app import create_app  # noqa: PLC0415

    base = f"http://{host}:{port}"
    click.echo(
        f"""
billplane is starting at {base}
  API docs:        {base}/schema
  admin key:       {settings.security.admin_key}
  demo tenant key: {demo_key}

Try:
  curl -H 'Authorization: Bearer {demo_key}' {base}/v1/tenant
Stop with Ctrl-C.
"""
    )
    # The sandbox settles pending payments with signed webhooks to this very server, through the
    # real inbound path, unless the developer pointed it elsewhere.
    os.environ.setdefault("BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL", base)
    # A developer's webhook receiver runs on this machine too: http to loopback is allowed here
    # (never by default elsewhere), unless the developer said otherwise. Not on a server others
    # reach: any of its tenants could then point deliveries at this machine's own services.
    if is_loopback_host(host):
        os.environ.setdefault(ALLOW_HTTP_LOOPBACK_VARIABLE, "1")
    # With the in-process sync worker, as `billplane run` does by default.
    uvicorn.run(
        create_app(settings, worker=True),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,  # billplane's own access line replaces uvicorn's
        log_config=None,
    )


def is_loopback_host(host: str) -> bool:
    """Whether only this machine reaches a server listening on ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (the OS's words), or None if it can now."""
    # The address family uvicorn binds: IPv6 only for a host written with a colon.
    wanted = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, wanted, socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


async def _prepare(runtime: Runtime, environment: DevEnvironment) -> str:
    """Bring every schema to head and make sure `demo` exists with a key we can print."""
    await upgrade_control(runtime.database, str(control_scripts()))
    report = await runtime.migrator.migrate()
    if report.upgraded:
        click.echo(f"  upgraded {len(report.upgraded)} tenant schema(s) to {report.head}")
    for outcome in report.failed:
        click.echo(f"  warning: tenant {outcome.slug} did not migrate: {outcome.error}", err=True)
    demo, key = await _demo_tenant(runtime, environment)
    await ensure_sandbox_account(runtime, environment, demo.id, demo.schema_name)
    return key


async def _demo_tenant(runtime: Runtime, environment: DevEnvironment) -> tuple[Tenant, str]:
    async with runtime.database.control_session() as session:
        demo: Tenant | None = await runtime.registry.get(session, DEMO_SLUG)
        if demo is None:
            demo, issued = await runtime.registry.create(session, DEMO_SLUG, "Demo")
            environment.remember("demo_key", issued.key)
            return demo, issued.key
        known = environment.secrets().get("demo_key")
        if known is not None and await runtime.registry.resolve_key(session, known) is not None:
            return demo, known
        # The stored key was revoked or lost: issue another rather than print nothing usable.
        issued = await runtime.registry.issue_key(session, demo)
        environment.remember("demo_key", issued.key)
        return demo, issued.key


async def ensure_sandbox_account(
    runtime: Runtime, environment: DevEnvironment, tenant_id: int, schema: str
) -> int | None:
    """Give the demo tenant a default `sandbox` account in test mode, once; the id if one was made.

    Skipped when the sandbox provider is not installed. Its webhook secret is generated once and
    kept in dev-secrets.json beside the demo key, so the same secret signs sandbox webhooks after
    a restart. A failure is a warning: `make run` still starts. Made as `POST
    /v1/provider-accounts` makes one, in a session of the tenant's ``schema``, so that it records
    the same `provider_account.created` event.
    """
    if SANDBOX not in runtime.plugins.names():
        return None
    # Imported here: the service speaks HTTP errors, and the web stack is slow to import (see above).
    from litestar.exceptions import HTTPException  # noqa: PLC0415

    from billplane.provider_accounts.repository import ProviderAccountRepository  # noqa: PLC0415
    from billplane.provider_accounts.schemas import ProviderAccountCreate  # noqa: PLC0415
    from billplane.provider_accounts.service import ProviderAccountService  # noqa: PLC0415
    from billplane.provider_accounts.vault import AccountVault  # noqa: PLC0415

    webhook_secret = environment.secrets().get(WEBHOOK_ENTRY)
    if webhook_secret is None:
        webhook_secret = "whsec_" + secrets.token_urlsafe(24)
        environment.remember(WEBHOOK_ENTRY, webhook_secret)
    request = ProviderAccountCreate(
        provider=SANDBOX,
        mode="test",
        label="Sandbox (demo)",
        credentials={"api_key": SANDBOX_DEMO_API_KEY},
        webhook_secret=webhook_secret,
        is_default=True,
    )
    try:
        async with runtime.database.tenant_session(schema) as session:
            repository = ProviderAccountRepository(session, tenant_id)
            if await repository.has_live_account(SANDBOX):
                return None
            service = ProviderAccountService(
                repository, plugins=runtime.plugins, vault=AccountVault.from_settings(runtime.settings)
            )
            account = await service.create(request)
    except HTTPException as exc:
        click.echo(f"  warning: the demo tenant got no sandbox account: {exc.detail}", err=True)
        return None
    click.echo(f"  demo tenant: sandbox account {account.id} (test mode, default); webhook secret in dev-secrets.json")
    return account.id
