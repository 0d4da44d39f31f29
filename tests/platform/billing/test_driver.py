"""The billing run's statements on the driver run in the session's transaction, never outside it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.billing.driver import driver_of
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
