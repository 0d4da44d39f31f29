"""Provider sync through the API and a real worker: outbox rows, keys, retries, statuses, manual sync."""

from __future__ import annotations

import dataclasses

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.sync.sweep import Sweeper
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.provider_accounts_fake import FakeProvider, good_body
from tests.platform.sync_fakes import (
    FAST,
    AccountRow,
    FakeState,
    StaticAccounts,
    drain,
    wait_for_jobs,
)

Client = AsyncTestClient[Litestar]


async def work(runtime: Runtime, *, sweep: bool = True) -> None:
    """Run every job that is due now (sweep first: finds rows whatever happened to their jobs)."""
    await drain(runtime, sweep=sweep)


async def outbox(runtime: Runtime, tenant: CreatedTenant) -> list[dict[str, object]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        rows = await session.execute(text("SELECT * FROM outbox ORDER BY id"))
        return [dict(row._mapping) for row in rows]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def tenant_with_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, account_id: int = 101
) -> tuple[CreatedTenant, AccountRow]:
    tenant = await create_tenant(client, admin_headers, "sync")
    return tenant, accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema))


async def test_create_writes_one_outbox_row_per_default_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account = await tenant_with_account(client, admin_headers, accounts)
    accounts.add(AccountRow(id=102, tenant_id=tenant.id, tenant_schema=tenant.schema, is_default=False))
    other = await create_tenant(client, admin_headers, "sync")
    accounts.add(AccountRow(id=103, tenant_id=other.id, tenant_schema=other.schema))

    response = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["sync_status"], body["last_sync_error"], body["provider_ids"]) == ("pending", None, [])
    rows = await outbox(worker, tenant)
    assert [(row["kind"], row["object_id"], row["provider_account_id"], row["status"]) for row in rows] == [
        ("customer.ensure", body["id"], account.id, "pending")
    ]
    assert await outbox(worker, other) == []


async def test_a_rolled_back_create_leaves_no_outbox_row(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    first = await client.post("/v1/customers", json={"external_id": "x1"}, headers=tenant.headers)
    again = await client.post("/v1/customers", json={"external_id": "x1"}, headers=tenant.headers)
    assert (first.status_code, again.status_code) == (201, 409)
    assert [row["object_id"] for row in await outbox(worker, tenant)] == [first.json()["id"]]


async def test_without_an_account_nothing_is_queued(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "sync")
    response = await client.post("/v1/customers", json={"name": "Solo"}, headers=tenant.headers)
    assert response.json()["sync_status"] == "none"
    assert await outbox(worker, tenant) == []


async def test_a_create_queues_no_job_in_the_api_and_the_worker_mirrors_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, account = await tenant_with_account(client, admin_headers, accounts)
    created = (await client.post("/v1/customers", json={"email": "a@example.com"}, headers=tenant.headers)).json()
    [row] = await outbox(worker, tenant)

    # The create notified the workers instead of deferring a job: the API never opened the queue.
    app_runtime: Runtime = client.app.state.runtime
    assert not app_runtime.jobs.opened
    assert await wait_for_jobs(worker, 0) == []
    await work(worker)  # the sweep stands in for the listener here (tests/platform/test_sync_listener.py)

    key = f"billplane-{tenant.id}-{row['id']}"
    assert fake.calls == [("ensure_customer", key)]
    customer = (await client.get(f"/v1/customers/{created['id']}", headers=tenant.headers)).json()
    assert customer["sync_status"] == "synced"
    assert customer["synced_at"] is not None
    assert customer["provider_ids"] == [{"provider": "fake", "provider_account_id": account.id, "id": fake.by_key[key]}]
    [done] = await outbox(worker, tenant)
    assert (done["status"], done["done_at"] is not None, done["last_error"]) == ("done", True, None)


async def test_update_and_delete_follow_the_create_in_order(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    # Before the create ran: the update must wait for it, not overtake it.
    patched = await client.patch(f"/v1/customers/{customer['id']}", json={"name": "Ada K"}, headers=tenant.headers)
    assert patched.json()["sync_status"] == "pending"
    await work(worker)
    assert [method for method, _ in fake.calls] == ["ensure_customer", "update_customer"]
    provider_id = next(iter(fake.by_key.values()))
    assert fake.payloads[provider_id]["name"] == "Ada K"

    # external_id is billplane's own business: no provider call.
    await client.patch(f"/v1/customers/{customer['id']}", json={"external_id": "u1"}, headers=tenant.headers)
    assert (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()["sync_status"] == (
        "synced"
    )
    assert await client.delete(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    await work(worker)
    assert [method for method, _ in fake.calls] == ["ensure_customer", "update_customer", "delete_customer"]
    assert [row["kind"] for row in await outbox(worker, tenant)] == [
        "customer.ensure",
        "customer.update",
        "customer.delete",
    ]
    assert {row["status"] for row in await outbox(worker, tenant)} == {"done"}


async def test_retryable_errors_back_off_and_then_succeed(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    fake.failures.append(("retryable", "provider is down", 3600.0))
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    await work(worker)

    [row] = await outbox(worker, tenant)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "provider is down")
    async with worker.database.transaction() as connection:  # Retry-After (an hour) is a floor of the delay
        wait = await connection.scalar(
            text(f'SELECT next_attempt_at - now() FROM "{tenant.schema}".outbox WHERE id = :id'), {"id": row["id"]}
        )
    assert wait.total_seconds() > 3500
    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("pending", "provider is down")

    await work(worker)  # not due yet: nothing happens
    assert len(fake.calls) == 1
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE outbox SET next_attempt_at = now()"))
    await work(worker)
    assert [key for _, key in fake.calls] == [f"billplane-{tenant.id}-{row['id']}"] * 2  # same key on retry
    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("synced", None)


async def test_retries_stop_after_max_attempts(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    # A backoff of a minute: each retry waits for its time (drain runs only what is due within a second).
    worker.sync_options = dataclasses.replace(FAST, base_delay=60.0, max_delay=60.0)
    fake.failures += [("retryable", f"timeout {n}") for n in range(FAST.max_attempts)]
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    for attempt in range(1, FAST.max_attempts + 1):
        async with worker.database.tenant_session(tenant.schema) as session:
            await session.execute(text("UPDATE outbox SET next_attempt_at = now() WHERE status = 'pending'"))
        await work(worker)
        assert len(fake.calls) == attempt  # one attempt per time it came due
    [row] = await outbox(worker, tenant)
    assert (row["status"], row["attempts"]) == ("failed", FAST.max_attempts)
    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert shown["sync_status"] == "failed"
    assert shown["last_sync_error"] == f"gave up after {FAST.max_attempts} attempts: timeout 2"


async def test_a_permanent_error_fails_and_manual_sync_retries_with_a_new_key(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    fake.failures.append(("permanent", "email address is invalid"))
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    await work(worker)
    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("failed", "email address is invalid (fake_error)")

    response = await client.post(f"/v1/customers/{customer['id']}/sync", headers=tenant.headers)

    assert response.status_code == 202, response.text
    assert response.json()["sync_status"] == "pending"
    await work(worker)
    first, second = await outbox(worker, tenant)
    assert (first["status"], second["status"]) == ("failed", "done")
    assert [key for _, key in fake.calls] == [
        f"billplane-{tenant.id}-{first['id']}",
        f"billplane-{tenant.id}-{second['id']}",
    ]
    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("synced", None)


async def test_manual_sync_mirrors_a_customer_made_before_the_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant = await create_tenant(client, admin_headers, "sync")
    customer = (await client.post("/v1/customers", json={"name": "Early"}, headers=tenant.headers)).json()
    accounts.add(AccountRow(id=111, tenant_id=tenant.id, tenant_schema=tenant.schema))
    client.app.state.runtime.default_accounts.invalidate(tenant.id)

    synced = await client.post(f"/v1/customers/{customer['id']}/sync", headers=tenant.headers)
    assert synced.json()["sync_status"] == "pending"
    await work(worker)
    again = await client.post(f"/v1/customers/{customer['id']}/sync", headers=tenant.headers)

    assert again.status_code == 202
    assert again.json()["sync_status"] == "synced"  # nothing left to do: no new row
    assert len(await outbox(worker, tenant)) == 1
    assert len(fake.creations) == 1


async def test_the_sweep_finds_rows_whose_job_was_lost_in_every_active_tenant(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenants = [await tenant_with_account(client, admin_headers, accounts, 120 + n) for n in range(3)]
    for tenant, account in tenants:  # rows committed without any job: as if the process died right after
        async with worker.database.tenant_session(tenant.schema) as session:
            customer = await session.scalar(text("INSERT INTO customers (name) VALUES ('Lost') RETURNING id"))
            await session.execute(
                text("INSERT INTO outbox (kind, object_id, provider_account_id) VALUES ('customer.ensure', :c, :a)"),
                {"c": customer, "a": account.id},
            )
    suspended = tenants[2][0]
    await client.post(f"/v1/admin/tenants/{suspended.slug}/suspend", headers=admin_headers)

    due = await Sweeper(worker.database, worker.jobs, FAST, grace_seconds=0).due()
    mine = {tenant.schema for tenant, _ in tenants}  # earlier tests' tenants share this database
    found = sorted((ref.schema, ref.job_args().get("outbox_id")) for ref in due if ref.schema in mine)
    assert found == sorted((tenant.schema, 1) for tenant, _ in tenants[:2])
    await work(worker)

    assert len(fake.creations) == 2
    assert [row["status"] for row in await outbox(worker, tenants[0][0])] == ["done"]
    assert [row["status"] for row in await outbox(worker, suspended)] == ["pending"]


async def test_the_sweep_does_not_queue_a_waiting_job_twice(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, _ = await tenant_with_account(client, admin_headers, accounts)
    await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    sweeper = Sweeper(worker.database, worker.jobs, FAST, grace_seconds=0)
    assert await sweeper.sweep() >= 1  # earlier tests' tenants share this database
    assert await sweeper.sweep() == 0  # every job is still waiting: its queueing lock holds
    assert [job["outbox_id"] for job in await wait_for_jobs(worker, 1) if job["schema"] == tenant.schema] == [1]


async def test_another_tenants_deleted_account_of_the_same_id_decides_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    """An outbox row's account is its tenant's own: a control row of that id marked deleted but of
    another tenant (in the test suite, a real account whose id a fake account took) is not it."""
    other = await create_tenant(client, admin_headers, "syncother")
    FakeProvider().install(client.app)
    made = await client.post("/v1/provider-accounts", json=good_body(), headers=other.headers)
    assert made.status_code == 201, made.text
    account_id = made.json()["id"]
    assert (await client.delete(f"/v1/provider-accounts/{account_id}", headers=other.headers)).status_code == 204

    tenant = await create_tenant(client, admin_headers, "sync")
    accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema))
    client.app.state.runtime.default_accounts.invalidate(tenant.id)
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    await work(worker)

    shown = (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).json()
    assert shown["sync_status"] == "synced"
