"""A provisioned schema (models + stamp) equals one built by running every tenant migration."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane_tenants import Tenant, TenantExistsError
from tests.conftest import unique_slug
from tests.tenants.schema_snapshot import schema_snapshot


async def _migrated_from_empty(runtime: Runtime) -> str:
    slug = unique_slug("mig")
    async with runtime.database.control_session() as session:
        tenant = Tenant(slug=slug, name=slug, schema_name=f"tenant_{slug}")
        session.add(tenant)
        await session.flush()
        await session.execute(text(f'CREATE SCHEMA "tenant_{slug}"'))
    report = await runtime.migrator.migrate([slug])
    assert not report.failed, report.failed
    assert [outcome.from_revision for outcome in report.upgraded] == [None]
    return f"tenant_{slug}"


async def _provisioned(runtime: Runtime) -> str:
    async with runtime.database.control_session() as session:
        tenant, _ = await runtime.registry.create(session, unique_slug("prov"), "Provisioned")
    return tenant.schema_name


async def test_provisioned_schema_equals_migrated_schema(runtime: Runtime) -> None:
    provisioned, migrated = await _provisioned(runtime), await _migrated_from_empty(runtime)
    async with runtime.database.transaction() as connection:
        left = await schema_snapshot(connection, provisioned)
        right = await schema_snapshot(connection, migrated)
        versions = [
            await connection.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))
            for schema in (provisioned, migrated)
        ]
    assert left["columns"], "the snapshot must see the tenant tables"
    assert left == right
    assert versions == [runtime.migrator.head] * 2


async def test_snapshot_notices_a_difference(runtime: Runtime) -> None:
    first, second = await _provisioned(runtime), await _provisioned(runtime)
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'CREATE INDEX extra_idx ON "{second}".audit_log (actor)'))
        assert await schema_snapshot(connection, first) != await schema_snapshot(connection, second)


async def test_provisioning_is_all_or_nothing(runtime: Runtime) -> None:
    slug = unique_slug("atomic")
    async with runtime.database.transaction() as connection:  # a schema squatting on the name
        await connection.execute(text(f'CREATE SCHEMA "tenant_{slug}"'))
    async with runtime.database.control_session() as session:
        with pytest.raises(TenantExistsError, match="already exists"):
            await runtime.registry.create(session, slug, "Atomic")
        # The caller swallowed the error and its transaction commits: still no half-made tenant.
    async with runtime.database.control_session() as session:
        assert await runtime.registry.get(session, slug) is None
