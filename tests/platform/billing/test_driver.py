"""The billing run's statements on the driver run in the session's transaction, never outside it, and a
transaction begun on the driver is the session's: scoped to its tenant, committed or rolled back with it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.billing.driver import begin_on_driver, driver_of
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing.test_billing_run import Client


async def test_the_driver_is_given_only_inside_a_begun_transaction(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "driver")
    async with runtime.database.tenant_session(tenant.schema) as session:
        with pytest.raises(RuntimeError, match="has not begun"):
            await driver_of(session)  # nothing sent yet: BEGIN has not gone out
        await session.execute(text("SELECT 1"))
        driver = await driver_of(session)
        assert driver.is_in_transaction()
        # The tenant's scope came with the BEGIN: unqualified names are the tenant's tables.
        assert await driver.fetchval("SELECT current_schema()") == tenant.schema
        await driver.execute("INSERT INTO products (name) VALUES ('rolled back')")
        await session.rollback()
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM products")) == 0


async def test_a_transaction_begun_on_the_driver_is_scoped_and_committed_by_the_session(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "driver")
    async with runtime.database.tenant_session(tenant.schema) as session:
        driver = await begin_on_driver(session)  # nothing sent through the session first
        assert driver.is_in_transaction()
        assert await driver.fetchval("SELECT current_schema()") == tenant.schema
        await driver.execute("INSERT INTO products (name) VALUES ('committed')")
        assert await begin_on_driver(session) is driver  # begun already: nothing sent again
    # The session's commit committed it: SQLAlchemy's adapter knew its transaction had begun.
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM products WHERE name = 'committed'")) == 1
        driver = await begin_on_driver(session)
        await driver.execute("INSERT INTO products (name) VALUES ('rolled back')")
        await session.rollback()
        assert not driver.is_in_transaction()
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM products WHERE name = 'rolled back'")) == 0
