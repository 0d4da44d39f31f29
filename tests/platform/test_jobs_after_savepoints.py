"""A request's sync jobs are deferred at its commit even when a savepoint of it rolled back.

Creating a subscription charges its first invoice in a savepoint: a charge that cannot be made now
(no payment method) rolls back only that, and the invoice stays open for dunning. The rollback of
the savepoint dropped every job the request had rung before it, the subscription's create at its
provider among them, which then waited for the sweep (up to a minute) instead of going at once.
"""

from __future__ import annotations

from billplane.runtime import Runtime
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.refs import OutboxRef
from tests.platform.sync_fakes import StaticAccounts
from tests.platform.test_sync_listener import Client, jobs_of, tenant_with_account, wait_for_jobs_of


async def test_a_subscription_whose_first_charge_cannot_be_made_is_sent_to_its_provider_at_once(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await tenant_with_account(client, admin_headers, accounts, 8801)
    headers = tenant.headers
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=headers)).json()
    product = (await client.post("/v1/products", json={"name": "API"}, headers=headers)).json()
    plan = {"product_id": product["id"], "name": "Basic", "pricing_model": "flat", "amount": 1000}
    plan |= {"currency": "USD", "billing_interval": "month"}
    plan_id = (await client.post("/v1/plans", json=plan, headers=headers)).json()["id"]

    body = {"customer_id": customer["id"], "plan_id": plan_id}  # no payment method: the charge waits
    created = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["sync_status"] == "pending"

    # No listener runs here: the customer's create has no job; the subscription's was rung.
    assert await wait_for_jobs_of(worker, tenant.schema, 1) == [2]


async def test_a_released_savepoint_rings_nothing_before_the_transaction_commits(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # Released, a savepoint's rows are not committed: a job deferred then could run before they
    # are visible, find nothing and end, leaving the row to the sweep.
    tenant = await tenant_with_account(client, admin_headers, accounts, 8802)
    async with worker.database.tenant_session(tenant.schema) as session:
        async with session.begin_nested():
            ring_after_commit(session, worker.jobs, [OutboxRef(tenant.id, tenant.schema, 7)])
        await worker.jobs.flush()
        assert await jobs_of(worker, tenant.schema) == []
    await worker.jobs.flush()
    assert await jobs_of(worker, tenant.schema) == [7]


async def test_a_rolled_back_transaction_rings_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await tenant_with_account(client, admin_headers, accounts, 8803)
    async with worker.database.session(tenant.schema) as session:
        async with session.begin():
            ring_after_commit(session, worker.jobs, [OutboxRef(tenant.id, tenant.schema, 8)])
            await session.rollback()
        async with session.begin():  # the same session's next transaction commits
            pass
    await worker.jobs.flush()
    assert await jobs_of(worker, tenant.schema) == []
