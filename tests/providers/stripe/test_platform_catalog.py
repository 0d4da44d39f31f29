"""Catalog edits through billplane's API reach Stripe, end to end: the real Stripe plugin and the
real worker against the fake Stripe (which checks every request against Stripe's spec)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import FAST, clear_jobs, drain
from tests.providers.stripe.answer_lost import first_attempt, stripe_slow_once
from tests.providers.stripe.fake_stripe.server import FakeStripe
from tests.providers.stripe.test_platform_flow import connect

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def worker(runtime: Runtime, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("BILLPLANE_PROVIDER_STRIPE_API_BASE", fake_stripe.url)
    runtime.sync_options = FAST
    await clear_jobs(runtime)
    return runtime


async def test_a_renamed_product_and_an_archived_plan_reach_stripe(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripecat")
    connected = await connect(client, tenant)
    assert connected.status_code == 201, connected.text
    headers = tenant.headers
    product = (await client.post("/v1/products", json={"name": "API", "description": "Calls"}, headers=headers)).json()
    body = {
        "product_id": product["id"],
        "name": "Team",
        "pricing_model": "per_seat",
        "amount": 1200,
        "currency": "USD",
        "billing_interval": "month",
    }
    plan = (await client.post("/v1/plans", json=body, headers=headers)).json()
    customer = (await client.post("/v1/customers", json={"email": "ada@example.com"}, headers=headers)).json()
    # Subscriptions are written by the billing engine; here a row stands in for it.
    async with worker.database.tenant_session(tenant.schema) as session:
        subscription = await insert(
            session, "subscriptions", customer_id=customer["id"], plan_id=plan["id"], status="active", quantity=2
        )
    assert (await client.post(f"/v1/subscriptions/{subscription}/sync", headers=headers)).status_code == 202
    await drain(worker)
    [stripe_product] = fake_stripe.store.products.values()
    [stripe_price] = fake_stripe.store.prices.values()
    assert (stripe_product["name"], stripe_price["active"]) == ("API", True)

    renamed = await client.patch(
        f"/v1/products/{product['id']}", json={"name": "API Pro", "description": None}, headers=headers
    )
    assert renamed.json()["sync_status"] == "pending"
    archived = await client.patch(f"/v1/plans/{plan['id']}", json={"active": False}, headers=headers)
    assert archived.json()["sync_status"] == "pending"
    await drain(worker)

    # What Stripe's invoices and receipts for this subscription will name, and a price it sells no more.
    assert (stripe_product["name"], stripe_product["description"], stripe_product["active"]) == ("API Pro", None, True)
    assert stripe_price["active"] is False
    [at_stripe] = fake_stripe.store.subscriptions.values()
    assert at_stripe["items"]["data"][0]["price"]["id"] == stripe_price["id"]  # kept by its subscription
    for path, what in ((f"/v1/products/{product['id']}", "product"), (f"/v1/plans/{plan['id']}", "plan")):
        shown = (await client.get(path, headers=headers)).json()
        assert (shown["sync_status"], shown["last_sync_error"]) == ("synced", None), what

    # A seat more on the subscription (as its PATCH queues it): it keeps its archived price at Stripe.
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET quantity = 3 WHERE id = :id"), {"id": subscription})
        account = connected.json()["id"]
        await insert(session, "outbox", kind="subscription.update", object_id=subscription, provider_account_id=account)
    await drain(worker)
    assert at_stripe["items"]["data"][0]["quantity"] == 3
    async with worker.database.tenant_session(tenant.schema) as session:
        statuses = (await session.execute(text("SELECT DISTINCT status FROM outbox"))).scalars().all()
    assert statuses == ["done"]


async def test_a_rename_between_two_attempts_of_a_subscriptions_create_is_no_idempotency_error(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    fake_stripe: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe made the product at the first attempt, whose answer was lost; the tenant renamed it
    before the retry. The retry sends what the first attempt sent (Stripe replays a key only for
    the same parameters: with the new name it answered idempotency_error, and the create failed),
    then the rename follows as an edit."""
    tenant = await create_tenant(client, admin_headers, "stripecat")
    account = (await connect(client, tenant)).json()["id"]
    headers = tenant.headers
    product = (await client.post("/v1/products", json={"name": "API"}, headers=headers)).json()
    body = {"product_id": product["id"], "name": "Team", "pricing_model": "flat", "amount": 1200, "currency": "USD"}
    plan = (await client.post("/v1/plans", json=body | {"billing_interval": "month"}, headers=headers)).json()
    customer = (await client.post("/v1/customers", json={"email": "ada@example.com"}, headers=headers)).json()
    await drain(worker)  # the customer is at Stripe
    async with worker.database.tenant_session(tenant.schema) as session:
        subscription = await insert(
            session, "subscriptions", customer_id=customer["id"], plan_id=plan["id"], status="active", quantity=1,
            provider_account_id=account,
        )  # fmt: skip
    stripe_slow_once(worker, fake_stripe, monkeypatch, "/v1/products")
    assert (await client.post(f"/v1/subscriptions/{subscription}/sync", headers=headers)).status_code == 202

    await first_attempt(worker, fake_stripe.store.products)
    renamed = await client.patch(f"/v1/products/{product['id']}", json={"name": "API Pro"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    await drain(worker, soon=3.0)

    [made] = fake_stripe.store.products.values()
    assert made["name"] == "API Pro"  # the rename, sent after the create by its own row
    [at_stripe] = fake_stripe.store.subscriptions.values()
    assert at_stripe["items"]["data"][0]["price"]["product"] == made["id"]
    async with worker.database.tenant_session(tenant.schema) as session:
        rows = (await session.execute(text("SELECT kind, status, last_error FROM outbox ORDER BY id"))).all()
    assert [(kind, status) for kind, status, _ in rows] == [
        ("customer.ensure", "done"),
        ("subscription.create", "done"),
        ("product.update", "done"),
    ], rows
