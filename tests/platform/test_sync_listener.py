"""The workers' outbox listener: a create's notification becomes a job, once, and it survives a lost connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.sync import worker as sync_worker
from billplane.sync.channel import OUTBOX_CHANNEL
from billplane.sync.listener import APPLICATION_NAME, OutboxListener, asyncpg_dsn
from billplane.sync.sweep import Sweeper
from billplane.sync.worker import run_worker
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.listening import running_listener
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts

Client = AsyncTestClient[Litestar]
_SWEEP_GRACE = 120.0  # seconds: see the waiting worker's test


@pytest.fixture
async def listener(worker: Runtime) -> AsyncIterator[OutboxListener]:
    """A listener on the test's loop, with no worker running: what it defers stays in the queue."""
    async with running_listener(worker) as listening:
        yield listening


async def jobs_of(runtime: Runtime, schema: str) -> list[int]:
    """Outbox ids of the jobs waiting for one tenant (other tests' tenants share the queue)."""
    async with runtime.database.transaction() as connection:
        result = await connection.execute(
            text(
                "SELECT (args->>'outbox_id')::bigint FROM billplane_jobs.procrastinate_jobs "
                "WHERE status = 'todo' AND args->>'schema' = :schema ORDER BY 1"
            ),
            {"schema": schema},
        )
        return [int(row[0]) for row in result]


async def wait_for_jobs_of(runtime: Runtime, schema: str, count: int, *, within: float = 5.0) -> list[int]:
    with anyio.fail_after(within):
        while True:
            found = await jobs_of(runtime, schema)
            if len(found) >= count:
                return found
            await anyio.sleep(0.02)


async def tenant_with_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, account_id: int
) -> CreatedTenant:
    tenant = await create_tenant(client, admin_headers, "listen")
    accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema))
    return tenant


async def notify(runtime: Runtime, payload: str) -> None:
    async with runtime.database.transaction() as connection:
        await connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": OUTBOX_CHANNEL, "payload": payload}
        )


async def test_the_listener_defers_a_job_for_each_created_customer_once(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, listener: OutboxListener
) -> None:
    tenant = await tenant_with_account(client, admin_headers, accounts, 801)

    assert (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).status_code == 201
    assert await wait_for_jobs_of(worker, tenant.schema, 1) == [1]
    # A second create notifies again: its row gets a job, the first row's waiting job is not doubled.
    assert (await client.post("/v1/customers", json={"name": "Bob"}, headers=tenant.headers)).status_code == 201
    assert await wait_for_jobs_of(worker, tenant.schema, 2) == [1, 2]
    await notify(worker, f"{tenant.id}:{tenant.schema}")
    await notify(worker, "not a tenant")  # ignored; the listener keeps going
    assert (await client.post("/v1/customers", json={"name": "Cy"}, headers=tenant.headers)).status_code == 201
    assert await wait_for_jobs_of(worker, tenant.schema, 3) == [1, 2, 3]
    app_runtime: Runtime = client.app.state.runtime
    assert not app_runtime.jobs.opened  # the API itself did no queue work


async def test_a_notification_must_name_an_active_tenant_and_its_own_schema(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, listener: OutboxListener
) -> None:
    tenant = await tenant_with_account(client, admin_headers, accounts, 811)
    other = await create_tenant(client, admin_headers, "listen")
    async with worker.database.tenant_session(tenant.schema) as session:  # a row nobody announced
        customer = await session.scalar(text("INSERT INTO customers (name) VALUES ('Quiet') RETURNING id"))
        await session.execute(
            text("INSERT INTO outbox (kind, object_id, provider_account_id) VALUES ('customer.ensure', :c, 811)"),
            {"c": customer},
        )

    await notify(worker, f"{other.id}:{tenant.schema}")  # another tenant's id with this schema
    await notify(worker, f"{other.id}:{other.schema}")  # a real pair with nothing due
    await notify(worker, f"{tenant.id}:{tenant.schema}")

    assert await wait_for_jobs_of(worker, tenant.schema, 1) == [1]
    assert await jobs_of(worker, other.schema) == []


async def test_the_listener_reconnects_after_losing_its_connection(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, listener: OutboxListener
) -> None:
    tenant = await tenant_with_account(client, admin_headers, accounts, 821)
    connection = await asyncpg.connect(asyncpg_dsn(worker.database.url))
    try:
        killed = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
    finally:
        await connection.close()
    assert killed == 1

    with anyio.fail_after(10):
        while True:  # a second connection, listening again
            if listener.connections == 2 and listener.listening.is_set():
                break
            await anyio.sleep(0.02)
    assert (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).status_code == 201
    assert await wait_for_jobs_of(worker, tenant.schema, 1) == [1]


@pytest.fixture
def long_sweep_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's sweeps leave rows younger than ``_SWEEP_GRACE`` alone (10 s in production)."""
    monkeypatch.setattr(sync_worker, "Sweeper", functools.partial(Sweeper, grace_seconds=_SWEEP_GRACE))


@pytest.mark.usefixtures("long_sweep_grace")
async def test_a_waiting_worker_mirrors_a_new_customer_through_the_listener(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # With a sweep grace longer than the wait below, only the listener can queue the second create
    # (made after the worker's catch-up sweep) in time.
    tenant = await tenant_with_account(client, admin_headers, accounts, 831)
    running = asyncio.create_task(run_worker(worker, wait=True, name="test-listener-worker"))
    try:
        for name in ("Ada", "Bob"):
            created = (await client.post("/v1/customers", json={"name": name}, headers=tenant.headers)).json()
            # Seconds, and more on a loaded machine: the worker's periodic jobs over every tenant of
            # the test database may hold its slots for a while (8 s failed once so, 5 s before).
            with anyio.fail_after(_SWEEP_GRACE / 4):
                while True:
                    shown = await client.get(f"/v1/customers/{created['id']}", headers=tenant.headers)
                    if shown.json()["sync_status"] == "synced":
                        break
                    await anyio.sleep(0.05)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert sorted(fake.creations) == [f"billplane-{tenant.id}-1", f"billplane-{tenant.id}-2"]
