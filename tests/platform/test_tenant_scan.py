"""The reads across tenant schemas: a schema that cannot answer is left out, not the whole batch."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from billplane.db import tenant_scan
from billplane.runtime import Runtime
from billplane_tenants.naming import quoted_schema
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert


def _customers(schema: str) -> str:
    return f"(SELECT '{schema}' AS s, c.id FROM {quoted_schema(schema)}.customers c WHERE c.name IS NOT NULL)"


async def _tenant_with_customer(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> tuple[str, int]:
    schema = (await create_tenant(client, admin_headers, "scan")).schema
    async with runtime.database.tenant_session(schema) as session:
        return schema, await insert(session, "customers", name="Ada")


async def test_a_schema_that_refuses_the_read_is_left_out_and_named(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> None:
    first, first_customer = await _tenant_with_customer(client, admin_headers, runtime)
    broken, _ = await _tenant_with_customer(client, admin_headers, runtime)
    last, last_customer = await _tenant_with_customer(client, admin_headers, runtime)
    async with runtime.database.tenant_session(broken) as session:
        await session.execute(text("ALTER TABLE customers RENAME COLUMN name TO full_name"))
    failed: list[str] = []

    found = await tenant_scan.ids_by_schema(
        runtime.database, [first, broken, last], table="customers", part=_customers, failed=failed
    )

    assert found == {first: [first_customer], last: [last_customer]}
    assert failed == [broken]


async def test_a_read_every_schema_answers_names_no_failure(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> None:
    schema, customer = await _tenant_with_customer(client, admin_headers, runtime)
    failed: list[str] = []

    found = await tenant_scan.ids_by_schema(
        runtime.database, [schema], table="customers", part=_customers, failed=failed
    )

    assert (found, failed) == ({schema: [customer]}, [])


async def test_a_read_the_database_refuses_is_not_blamed_on_a_schema(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> None:
    schema, _ = await _tenant_with_customer(client, admin_headers, runtime)

    def terminated(name: str) -> str:  # the server ends the read's own connection (SQLSTATE 57P01)
        return f"(SELECT '{name}' AS s, pg_terminate_backend(pg_backend_pid())::int)"

    with pytest.raises(DBAPIError):
        await tenant_scan.ids_by_schema(runtime.database, [schema], table="customers", part=terminated, failed=[])
