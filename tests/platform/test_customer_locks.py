"""Requests that check a customer before writing for it hold the customer's row while they do.

Each checked and wrote without a lock: a DELETE of the customer during a subscription's create
saw no live subscription yet, and the subscription was billed every period for a deleted customer;
two creates in two currencies each saw none in the other, and the customer was billed in both.

A lock held on the invoice counter stops the first request after its checks, and the second is
sent while it waits (``concurrently``).
"""

from __future__ import annotations

import asyncio

import pytest
from billplane_sandbox import payment_methods

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.concurrently import WAIT, held, in_thread
from tests.platform.dunning.helpers import Client, Setup, execute, sandbox_customer, subscribe
from tests.platform.invoices.helpers import connect_sandbox, customer, rows
from tests.platform.sync_fakes import as_worker

# Held, the tenant's invoice counter stops a request that numbers an invoice, after its checks.
COUNTER = "SELECT 1 FROM invoice_counters FOR UPDATE"


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


async def numbered_once(client: Client, admin_headers: dict[str, str], worker: Runtime, prefix: str) -> Setup:
    """A sandbox customer whose tenant has numbered an invoice (so the counter row exists), with no
    live subscription left."""
    setup = await sandbox_customer(client, admin_headers, worker, payment_methods.SUCCEEDS, prefix)
    await subscribe(client, setup, trial_days=0)
    await execute(worker, setup.tenant, "UPDATE subscriptions SET status = 'canceled', ended_at = now()")
    return setup


async def test_a_customer_deleted_during_a_subscriptions_create_is_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    setup = await numbered_once(client, admin_headers, worker, "lockdel")
    headers = setup.tenant.headers
    body = {"customer_id": setup.customer, "plan_id": setup.plan}
    async with held(database_url, setup.tenant.schema, COUNTER):
        create = in_thread(client.post("/v1/subscriptions", json=body, headers=headers))
        await asyncio.sleep(WAIT)  # its subscription inserted, waiting for its invoice's number
        delete = in_thread(client.delete(f"/v1/customers/{setup.customer}", headers=headers))
        await asyncio.sleep(WAIT)
    created, deleted = await create, await delete

    assert created.status_code == 201, created.text
    assert deleted.status_code == 409, deleted.text
    customers = await rows(worker, setup.tenant, "SELECT deleted_at IS NULL AS live FROM customers")
    assert customers == [{"live": True}]


async def test_two_subscriptions_in_two_currencies_at_once_are_one_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    setup = await numbered_once(client, admin_headers, worker, "lockcur")
    headers = setup.tenant.headers
    product = (await client.post("/v1/products", json={"name": "EU"}, headers=headers)).json()
    plan = {"product_id": product["id"], "name": "Pro EUR", "pricing_model": "flat", "amount": 900}
    plan |= {"currency": "EUR", "billing_interval": "month"}
    euros = (await client.post("/v1/plans", json=plan, headers=headers)).json()["id"]
    async with held(database_url, setup.tenant.schema, COUNTER):
        dollars = in_thread(
            client.post(
                "/v1/subscriptions", json={"customer_id": setup.customer, "plan_id": setup.plan}, headers=headers
            )
        )
        await asyncio.sleep(WAIT)
        other = in_thread(
            client.post("/v1/subscriptions", json={"customer_id": setup.customer, "plan_id": euros}, headers=headers)
        )
        await asyncio.sleep(WAIT)
    first, second = await dollars, await other

    assert first.status_code == 201, first.text
    assert second.status_code == 422, second.text
    assert second.json()["errors"][0]["field"] == "plan_id"


async def test_a_preview_waiting_for_a_billing_run_reads_the_subscription_it_left(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    # The preview reads the subscription, then locks it to bill an ended period first. A run
    # that moved it on in between was not seen: the locked read kept the first one's values.
    setup = await sandbox_customer(client, admin_headers, worker, payment_methods.SUCCEEDS, "lockprev")
    subscription = await subscribe(client, setup, trial_days=0)
    await execute(worker, setup.tenant, "UPDATE subscriptions SET current_period_end = now() - interval '1 minute'")
    headers = setup.tenant.headers
    moved = (  # what a run crossing the period end leaves, committed while the preview waits
        f"UPDATE subscriptions SET current_period_start = current_period_end, "
        f"current_period_end = current_period_end + interval '30 days' WHERE id = {subscription}"
    )
    async with held(database_url, setup.tenant.schema, moved):
        preview = in_thread(client.post(f"/v1/subscriptions/{subscription}/preview", json={}, headers=headers))
        await asyncio.sleep(WAIT)
    shown = await preview

    assert shown.status_code == 200, shown.text
    [after] = await rows(
        worker, setup.tenant, f"SELECT current_period_end FROM subscriptions WHERE id = {subscription}"
    )
    assert shown.json()["next_period_start"] == after["current_period_end"].isoformat().replace("+00:00", "Z")


async def test_a_subscriptions_sync_and_an_item_for_it_do_not_deadlock(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    # The sync locked the subscription, then wrote the customer (its sync status, when it queued
    # the customer's create at the provider too); an item locked the customer, then the
    # subscription. Every subscription change now takes the customer's row first.
    tenant = await create_tenant(client, admin_headers, "lockdead")
    headers = tenant.headers
    ada = await customer(client, tenant)
    product = (await client.post("/v1/products", json={"name": "API"}, headers=headers)).json()
    plan = {"product_id": product["id"], "name": "Pro", "pricing_model": "flat", "amount": 1000}
    plan |= {"currency": "USD", "billing_interval": "month", "trial_period_days": 30}
    plan_id = (await client.post("/v1/plans", json=plan, headers=headers)).json()["id"]
    created = await client.post("/v1/subscriptions", json={"customer_id": ada, "plan_id": plan_id}, headers=headers)
    subscription = created.json()["id"]
    await connect_sandbox(client, tenant)  # after it: the sync has the subscription and its customer to mirror
    item = {"customer_id": ada, "subscription_id": subscription, "amount": 500, "currency": "USD"}
    item |= {"description": "Setup"}
    # The outbox held: the sync stops between its two locks, the item's create takes its first.
    async with held(database_url, tenant.schema, "LOCK TABLE outbox IN EXCLUSIVE MODE"):
        syncing = in_thread(client.post(f"/v1/subscriptions/{subscription}/sync", headers=headers))
        await asyncio.sleep(WAIT)
        adding = in_thread(client.post("/v1/invoice-items", json=item, headers=headers))
        await asyncio.sleep(WAIT)
    synced, added = await syncing, await adding

    assert synced.status_code == 202, synced.text
    assert added.status_code == 201, added.text
