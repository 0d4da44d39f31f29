"""Subscription sync: the service-level entry point the billing engine will call, and the manual route."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.subscriptions.models import Subscription
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.options import SyncOptions
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert, subscribed
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts, clear_jobs, drain, register_fakes

Client = AsyncTestClient[Litestar]


@pytest.fixture
def fake() -> FakeState:
    return FakeState()


@pytest.fixture
def accounts(app: Litestar, fake: FakeState) -> StaticAccounts:
    app_runtime: Runtime = app.state.runtime
    register_fakes(app_runtime.plugins, fake)
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    return accounts


@pytest.fixture
async def worker(runtime: Runtime, accounts: StaticAccounts) -> Runtime:
    runtime.accounts = accounts
    runtime.sync_options = SyncOptions(not_ready_delay=0.0, base_delay=0.01, max_delay=0.05)
    await clear_jobs(runtime)
    return runtime


async def seeded(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, runtime: Runtime
) -> tuple[CreatedTenant, int]:
    tenant = await create_tenant(client, admin_headers, "subsync")
    accounts.add(AccountRow(id=601, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with runtime.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session)
    return tenant, subscription


async def test_the_service_mirrors_customer_plan_and_subscription(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, subscription_id = await seeded(client, admin_headers, accounts, worker)
    async with worker.database.tenant_session(tenant.schema) as session:
        writer = OutboxWriter(session, tenant.id, tenant.schema, worker.jobs, accounts, DefaultAccountCache())
        subscription = await session.get(Subscription, subscription_id)
        assert subscription is not None
        assert await SyncService(writer).sync_subscription(subscription)

    await drain(worker)

    async with worker.database.tenant_session(tenant.schema) as session:
        rows = (await session.execute(text("SELECT id, kind, status FROM outbox ORDER BY id"))).all()
        plan, product = (await session.execute(text("SELECT id, product_id FROM plans"))).one()
    assert [(kind, status) for _, kind, status in rows] == [
        ("customer.ensure", "done"),
        ("subscription.create", "done"),
    ]
    sub_row = rows[1][0]
    assert sorted(fake.calls) == sorted([
        ("ensure_customer", f"billplane-{tenant.id}-{rows[0][0]}"),
        ("ensure_product", f"billplane-{tenant.id}-{sub_row}-product-{product}"),
        ("ensure_price", f"billplane-{tenant.id}-{sub_row}-price-{plan}"),
        ("create_subscription", f"billplane-{tenant.id}-{sub_row}"),
    ])  # fmt: skip
    shown = (await client.get(f"/v1/subscriptions/{subscription_id}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["provider"], shown["provider_account_id"]) == ("synced", "fake", 601)
    assert shown["provider_subscription_id"] == fake.by_key[f"billplane-{tenant.id}-{sub_row}"]
    created = fake.payloads[shown["provider_subscription_id"]]
    assert created["provider_customer_id"] == fake.by_key[f"billplane-{tenant.id}-{rows[0][0]}"]


async def test_a_failed_subscription_is_retried_by_the_manual_route(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, subscription_id = await seeded(client, admin_headers, accounts, worker)
    async with worker.database.tenant_session(tenant.schema) as session:  # the customer is already there
        await insert(
            session, "provider_customers", customer_id=1, provider="fake", provider_account_id=601,
            provider_customer_id="cus_x",
        )  # fmt: skip
    fake.failures += [("permanent", "no such price"), ("permanent", "still no such price")]

    first = await client.post(f"/v1/subscriptions/{subscription_id}/sync", headers=tenant.headers)
    assert (first.status_code, first.json()["sync_status"]) == (202, "pending")
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription_id}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("failed", "no such price (fake_error)")

    fake.failures.clear()
    again = await client.post(f"/v1/subscriptions/{subscription_id}/sync", headers=tenant.headers)
    assert again.json()["sync_status"] == "pending"
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription_id}", headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("synced", None)
    assert shown["provider_subscription_id"] is not None


async def test_a_change_while_the_create_of_a_subscription_synced_after_it_was_made_is_pending_follows_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    """Made before the tenant had an account, the subscription has none until its create (queued by
    the sync) records it. A change meanwhile queued no row: a create retried sends what its first
    attempt sent, so the provider would have kept the old quantity for good."""
    tenant, subscription_id = await seeded(client, admin_headers, accounts, worker)
    assert (await client.post(f"/v1/subscriptions/{subscription_id}/sync", headers=tenant.headers)).status_code == 202
    changed = await client.patch(
        f"/v1/subscriptions/{subscription_id}", json={"quantity": 3, "proration": "none"}, headers=tenant.headers
    )
    assert changed.status_code == 200, changed.text

    await drain(worker)

    async with worker.database.tenant_session(tenant.schema) as session:
        rows = (await session.execute(text("SELECT kind, provider_account_id, status FROM outbox ORDER BY id"))).all()
        [provider_id] = (await session.execute(text("SELECT provider_subscription_id FROM subscriptions"))).one()
    assert [tuple(row) for row in rows] == [
        ("customer.ensure", 601, "done"),
        ("subscription.create", 601, "done"),
        ("subscription.update_unprorated", 601, "done"),
    ]
    assert fake.payloads[provider_id]["quantity"] == 3


async def test_a_subscription_whose_account_was_deleted_is_not_sent_there_by_a_sync(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, subscription_id = await seeded(client, admin_headers, accounts, worker)
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET provider_account_id = 601, status = 'canceled'"))
    accounts.rows.pop(601)  # deleted: an ended subscription may keep naming it

    synced = await client.post(f"/v1/subscriptions/{subscription_id}/sync", headers=tenant.headers)

    assert synced.status_code == 202, synced.text
    async with worker.database.tenant_session(tenant.schema) as session:
        assert (await session.execute(text("SELECT kind FROM outbox"))).all() == []
