"""The `billplane` command line against a real database."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from billplane.cli.dev import is_loopback_host
from billplane.cli.devenv import DevEnvironment
from billplane.cli.main import cli
from billplane.runtime import Runtime
from billplane.settings import Settings
from tests.conftest import SECRET_KEY, unique_slug

Invoke = Callable[..., Result]


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", database_url)
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("BILLPLANE_ADMIN_KEY", raising=False)  # not needed outside the server

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def _sql(settings: Settings, statement: str) -> None:
    async def execute() -> None:
        runtime = Runtime.from_settings(settings)
        try:
            async with runtime.database.transaction() as connection:
                await connection.execute(text(statement))
        finally:
            await runtime.close()

    asyncio.run(execute())


def test_tenant_lifecycle(run: Invoke) -> None:
    slug = unique_slug("cli")
    created = run("tenants", "create", slug, "--name", "From the shell")
    assert created.exit_code == 0, created.output
    assert re.search(r"API key \(shown once, keep it now\): bpk_\S{40,}", created.output)
    assert re.search(rf"^{slug}\s+active\s+tenant_\d+", run("tenants", "list").output, re.MULTILINE)
    assert run("tenants", "suspend", slug).exit_code == 0
    assert re.search(rf"^{slug}\s+suspended", run("tenants", "list").output, re.MULTILINE)
    assert run("tenants", "resume", slug).exit_code == 0
    duplicate = run("tenants", "create", slug)
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output
    assert run("tenants", "delete", slug, "--yes").exit_code == 0
    assert slug not in run("tenants", "list").output


def test_a_tenant_with_a_pending_payment_is_deleted_only_with_force(run: Invoke, settings: Settings) -> None:
    slug = unique_slug("clim")
    assert run("tenants", "create", slug).exit_code == 0
    schema = f"tenant_{slug}"
    _sql(settings, f"INSERT INTO {schema}.customers (name) VALUES ('Ada')")
    payment = "(customer_id, amount, currency, status) VALUES (1, 500, 'USD', 'pending')"
    _sql(settings, f"INSERT INTO {schema}.payments {payment}")
    refused = CliRunner().invoke(cli, ["tenants", "delete", slug, "--yes"])
    assert refused.exit_code != 0
    assert "payments or refunds are still pending" in refused.output
    assert slug in run("tenants", "list").output
    assert run("tenants", "delete", slug, "--yes", "--force").exit_code == 0
    assert slug not in run("tenants", "list").output


def test_invalid_slug_is_refused(run: Invoke) -> None:
    result = run("tenants", "create", "Robert'); DROP TABLE tenants;--")
    assert result.exit_code != 0
    assert "slug must match" in result.output


def test_migrate_reports_a_failing_tenant_and_exits_non_zero(run: Invoke, settings: Settings) -> None:
    healthy, broken, emptied = (unique_slug("cli") for _ in range(3))
    for slug in (healthy, broken, emptied):
        assert run("tenants", "create", slug).exit_code == 0
    _sql(settings, f"UPDATE \"tenant_{broken}\".alembic_version SET version_num = 'no_such_revision'")
    _sql(settings, f'DROP SCHEMA "tenant_{emptied}" CASCADE')
    _sql(settings, f'CREATE SCHEMA "tenant_{emptied}"')
    selection = [arg for slug in (healthy, broken, emptied) for arg in ("--tenant", slug)]

    dry = run("tenants", "migrate", "--dry-run", *selection)
    assert dry.exit_code == 0
    assert f"{emptied}: (unstamped) -> tenant_" in dry.output
    assert healthy not in dry.output

    result = run("tenants", "migrate", *selection)
    assert result.exit_code == 1
    assert "1 upgraded, 1 already current, 1 failed" in result.output
    assert f"FAILED {broken} at no_such_revision" in result.stderr
    assert "Migrating tenants" in result.stderr
    listing = run("tenants", "list").output
    assert re.search(rf"^{broken}\s+active\s+\S+\s+failed", listing, re.MULTILINE)
    assert re.search(rf"^{emptied}\s+active\s+tenant_\d+\s+ok", listing, re.MULTILINE)


def test_db_upgrade_is_idempotent(run: Invoke) -> None:
    assert run("db", "upgrade").exit_code == 0
    assert "control schema is at head" in run("db", "upgrade").output


def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BILLPLANE_DATABASE_URL", raising=False)
    monkeypatch.delenv("BILLPLANE_SECRET_KEY", raising=False)
    monkeypatch.setenv("BILLPLANE_HOME", str(tmp_path))  # no embedded database to fall back on
    result = CliRunner().invoke(cli, ["tenants", "list"])
    assert result.exit_code != 0
    assert "BILLPLANE_DATABASE_URL is not set" in result.output


def test_run_with_the_database_down_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", f"postgresql://nobody@127.0.0.1:{port}/none")
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("BILLPLANE_ADMIN_KEY", SECRET_KEY)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2
    assert f"cannot reach the database at 127.0.0.1:{port}/none" in result.output
    assert "Traceback" not in result.output


def test_idempotency_purge_removes_only_expired_records(run: Invoke, settings: Settings) -> None:
    slug = unique_slug("cli")
    assert run("tenants", "create", slug).exit_code == 0
    schema = f"tenant_{slug}"
    for key, age in [("old", "2 days"), ("young", "-1 hour")]:
        _sql(
            settings,
            f'INSERT INTO "{schema}".idempotency_keys (key, fingerprint, method, path, response_status, '
            f"response_content_type, response_body, expires_at) VALUES ('{key}', 'f', 'POST', '/v1/customers', "
            f"201, 'application/json', '\\x00', now() - interval '{age}')",
        )
    result = run("idempotency", "purge")
    assert result.exit_code == 0, result.output
    assert re.search(r"removed [1-9]\d* expired idempotency records", result.output)

    async def remaining() -> list[str]:
        runtime = Runtime.from_settings(settings)
        try:
            async with runtime.database.tenant_session(schema) as session:
                return list((await session.execute(text("SELECT key FROM idempotency_keys"))).scalars())
        finally:
            await runtime.close()

    assert asyncio.run(remaining()) == ["young"]


def test_dev_refuses_a_port_in_use_before_starting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Started anyway, the server failed to bind after the embedded database had started, and
    # the process hung with that database running.
    monkeypatch.setenv("BILLPLANE_HOME", str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("BILLPLANE_PORT", str(port))
        result = CliRunner().invoke(cli, ["dev"])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "BILLPLANE_PORT" in result.output
    assert not (tmp_path / "home").exists()  # no database was started


EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - a host value under test, not a bind


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), (EVERY_INTERFACE, False), ("192.168.1.5", False)],
)
def test_dev_allows_local_webhook_receivers_only_on_a_loopback_address(host: str, *, local: bool) -> None:
    # Reached by others, a dev server's tenants could point deliveries at its machine's services.
    assert is_loopback_host(host) is local


def test_the_embedded_database_is_stopped_deaf_to_a_second_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv run forwards the terminal's SIGINT again: arriving during pg_ctl stop, it interrupted it.
    environment = DevEnvironment(tmp_path)
    during: list[object] = []
    monkeypatch.setattr(environment.postgres, "stop", lambda: during.append(signal.getsignal(signal.SIGINT)))
    before = signal.getsignal(signal.SIGINT)

    environment.stop_database()

    assert during == [signal.SIG_IGN]
    assert signal.getsignal(signal.SIGINT) is before
