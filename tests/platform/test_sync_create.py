"""A customer create is one statement: the customer, its outbox rows and the workers' notification.

The statement is the same with no provider account as with several, it notifies exactly once and
only if it commits, and the unique index (not a pre-check) answers duplicate external ids, also
between two concurrent creates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.app import create_app
from billplane.customers.schemas import CustomerCreate
from billplane.customers.service import CustomerService
from billplane.runtime import Runtime
from billplane.settings import Settings
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.channel import OUTBOX_CHANNEL
from billplane.sync.listener import asyncpg_dsn
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from tests.conftest import CreatedTenant, create_tenant, unique_slug
from tests.platform.heard import Channel, listening
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts, register_fakes

Client = AsyncTestClient[Litestar]


@pytest.fixture
def accounts(app: Litestar) -> StaticAccounts:
    app_runtime: Runtime = app.state.runtime
    register_fakes(app_runtime.plugins, FakeState(), ("fake", "fake2"))
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    return accounts


@pytest.fixture
async def notifications(database_url: str) -> AsyncIterator[Channel]:
    async with listening(database_url, OUTBOX_CHANNEL) as heard:
        yield heard


async def rows(runtime: Runtime, schema: str, table: str) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(schema) as session:
        result = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
        return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def test_one_statement_writes_the_customer_and_an_outbox_row_per_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, statements: list[str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "cte")
    for account_id, provider in ((701, "fake"), (702, "fake2")):
        accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema, provider=provider))
    plain = await create_tenant(client, admin_headers, "cte")
    for target in (tenant, plain):  # warm the key and default-account caches
        assert (await client.post("/v1/customers", json={}, headers=target.headers)).status_code == 201

    statements.clear()
    response = await client.post(
        "/v1/customers", json={"name": "Ada", "external_id": "a1", "metadata": {"k": "v"}}, headers=tenant.headers
    )

    assert response.status_code == 201, response.text
    [create] = statements
    assert "INSERT INTO customers" in create
    assert "INSERT INTO outbox" in create
    assert "pg_notify" in create
    body = response.json()
    assert (body["name"], body["external_id"], body["metadata"]) == ("Ada", "a1", {"k": "v"})
    assert (body["sync_status"], body["last_sync_error"], body["provider_ids"]) == ("pending", None, [])
    queued = [row for row in await rows(runtime, tenant.schema, "outbox") if row["object_id"] == body["id"]]
    assert sorted((row["kind"], row["provider_account_id"], row["status"]) for row in queued) == [
        ("customer.ensure", 701, "pending"),
        ("customer.ensure", 702, "pending"),
    ]
    # The response is the inserted row: what a read answers afterwards.
    assert (await client.get(f"/v1/customers/{body['id']}", headers=tenant.headers)).json() == body

    statements.clear()
    without = await client.post("/v1/customers", json={"name": "Bob"}, headers=plain.headers)

    assert without.status_code == 201, without.text
    assert statements == [create]  # the same SQL text with no account
    assert without.json()["sync_status"] == "none"
    assert await rows(runtime, plain.schema, "outbox") == []


async def test_a_create_notifies_once_on_commit_and_never_on_rollback(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    runtime: Runtime,
    notifications: Channel,
) -> None:
    tenant = await create_tenant(client, admin_headers, "cte")
    accounts.add(AccountRow(id=711, tenant_id=tenant.id, tenant_schema=tenant.schema))

    class Abandon(Exception):  # noqa: N818 - not an error: the test's way to roll back
        pass

    async def create_then_roll_back() -> None:
        async with runtime.database.tenant_session(tenant.schema) as session:
            writer = OutboxWriter(session, tenant.id, tenant.schema, runtime.jobs, accounts, DefaultAccountCache())
            created = await CustomerService(session, lambda: SyncService(writer)).create(CustomerCreate(name="Gone"))
            assert created.sync_status == "pending"  # the statement ran; the transaction rolls back
            raise Abandon

    with pytest.raises(Abandon):
        await create_then_roll_back()
    assert await rows(runtime, tenant.schema, "customers") == []
    assert await rows(runtime, tenant.schema, "outbox") == []
    assert await notifications.until_now() == []

    committed = await client.post("/v1/customers", json={"name": "Kept"}, headers=tenant.headers)
    assert committed.status_code == 201
    assert await notifications.until_now() == [f"{tenant.id}:{tenant.schema}"]

    plain = await create_tenant(client, admin_headers, "cte")  # no account: no outbox row, no notification
    assert (await client.post("/v1/customers", json={"name": "Solo"}, headers=plain.headers)).status_code == 201
    assert await notifications.until_now() == []


async def test_a_duplicate_external_id_is_409_and_leaves_nothing(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    runtime: Runtime,
    notifications: Channel,
) -> None:
    tenant = await create_tenant(client, admin_headers, "cte")
    accounts.add(AccountRow(id=721, tenant_id=tenant.id, tenant_schema=tenant.schema))
    first = await client.post("/v1/customers", json={"external_id": "x1"}, headers=tenant.headers)
    again = await client.post("/v1/customers", json={"external_id": "x1", "name": "B"}, headers=tenant.headers)

    assert (first.status_code, again.status_code) == (201, 409)
    assert again.json()["detail"] == "a customer with external_id 'x1' already exists"
    assert [row["object_id"] for row in await rows(runtime, tenant.schema, "outbox")] == [first.json()["id"]]
    assert await notifications.until_now() == [f"{tenant.id}:{tenant.schema}"]


async def _blocked_on_customers(monitor: asyncpg.Connection, schema: str) -> int:
    count: int = await monitor.fetchval(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)", f'"{schema}".customers'
    )
    return count


async def test_two_concurrent_creates_with_one_external_id_are_201_and_409(
    settings: Settings, admin_headers: dict[str, str], database_url: str
) -> None:
    # The app on this test's own loop (not the test client's thread), so two requests really overlap.
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type] # Litestar types its ASGI scope narrower
    monitor = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            slug = unique_slug("race")
            made = await http.post("/v1/admin/tenants", json={"slug": slug, "name": "Race"}, headers=admin_headers)
            tenant = CreatedTenant(made.json()["tenant"]["id"], slug, made.json()["api_key"]["key"], 0)
            gate = await asyncpg.connect(asyncpg_dsn(database_url))
            try:
                # Hold both creates at their INSERT until both are there: a pre-check would have
                # passed for each; only the unique index can tell them apart.
                await gate.execute(f'BEGIN; LOCK TABLE "{tenant.schema}".customers IN SHARE MODE')
                body = {"external_id": "same", "name": "Racer"}
                racers = [
                    asyncio.create_task(http.post("/v1/customers", json=body, headers=tenant.headers)) for _ in range(2)
                ]
                with anyio.fail_after(10):
                    while True:
                        if await _blocked_on_customers(monitor, tenant.schema) == 2:
                            break
                        await asyncio.sleep(0.01)
                await gate.execute("COMMIT")
                responses = await asyncio.gather(*racers)
            finally:
                await gate.close()
        assert sorted(response.status_code for response in responses) == [201, 409]
        conflict = next(response for response in responses if response.status_code == 409)
        assert conflict.json()["detail"] == "a customer with external_id 'same' already exists"
        assert await monitor.fetchval(f'SELECT count(*) FROM "{tenant.schema}".customers') == 1
    finally:
        await monitor.close()
        await app.state.runtime.close()
