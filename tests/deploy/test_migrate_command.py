"""`billplane migrate`, the deployments' pre-rollout step: control schema, then every tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from billplane.cli.main import cli
from tests.conftest import SECRET_KEY, unique_slug

Invoke = Callable[..., Result]
# Creating and dropping a database waits for a checkpoint, which takes minutes when other suites
# load the shared server; the suite's 120 s per test is too tight for that (~5 s when idle).
pytestmark = pytest.mark.timeout(360)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sql(url: str, statement: str) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(_dsn(url))
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture
def run(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("BILLPLANE_ADMIN_KEY", raising=False)  # the migrate Job holds no admin key

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_migrate_builds_the_control_schema_then_upgrades_every_tenant(run: Invoke, empty_database_url: str) -> None:
    invoke = run
    first = invoke("migrate")
    assert first.exit_code == 0, first.output
    assert "control schema is at head" in first.output
    assert "0 upgraded, 0 already current, 0 failed" in first.output
    assert _sql(empty_database_url, "SELECT count(*) FROM control.tenants") == 0

    current, emptied = unique_slug("dep"), unique_slug("dep")
    for slug in (current, emptied):
        assert invoke("tenants", "create", slug).exit_code == 0
    _sql(empty_database_url, f'DROP SCHEMA "tenant_{emptied}" CASCADE')
    _sql(empty_database_url, f'CREATE SCHEMA "tenant_{emptied}"')
    second = invoke("migrate")
    assert second.exit_code == 0, second.output
    assert "1 upgraded, 1 already current, 0 failed" in second.output
    assert _sql(empty_database_url, f'SELECT count(*) FROM "tenant_{emptied}".invoices') == 0

    _sql(empty_database_url, f"UPDATE \"tenant_{current}\".alembic_version SET version_num = 'no_such_revision'")
    failed = invoke("migrate")
    assert failed.exit_code == 1  # the Job fails, so the rollout stops
    assert f"FAILED {current} at no_such_revision" in failed.stderr
