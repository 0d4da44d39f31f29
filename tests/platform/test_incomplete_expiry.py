"""Subscriptions left incomplete (an approval that never came) expire and are canceled at the provider."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.sync.expiry import IncompleteExpiry
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts, drain

Client = AsyncTestClient[Litestar]


async def test_an_approval_that_never_comes_expires_the_subscription_and_cancels_it_there(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant = await create_tenant(client, admin_headers, "expiry")
    account = accounts.add(AccountRow(id=701, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        product = await insert(session, "products", name="API")
        plan = await insert(
            session, "plans", product_id=product, name="Basic", pricing_model="flat", amount=1000, currency="USD",
            billing_interval="month",
        )  # fmt: skip
        common = {"customer_id": customer, "plan_id": plan, "provider": "fake", "provider_account_id": account.id}
        old = await insert(
            session, "subscriptions", status="incomplete", provider_subscription_id="sub_old",
            next_action_type="redirect", next_action_url="https://approve.example/old", **common,
        )  # fmt: skip
        await session.execute(
            text("UPDATE subscriptions SET created_at = now() - interval '24 hours' WHERE id = :id"), {"id": old}
        )
        young = await insert(
            session, "subscriptions", status="incomplete", provider_subscription_id="sub_new", **common
        )
        started = await insert(session, "subscriptions", status="active", provider_subscription_id="sub_on", **common)
        await session.execute(
            text("UPDATE subscriptions SET created_at = now() - interval '48 hours' WHERE id = :id"), {"id": started}
        )

    assert await IncompleteExpiry(worker.database, worker.jobs, hours=23).expire() == 1
    assert await IncompleteExpiry(worker.database, worker.jobs, hours=23).expire() == 0  # done once
    await drain(worker)

    shown = (await client.get(f"/v1/subscriptions/{old}", headers=tenant.headers)).json()
    assert (shown["status"], shown["next_action"]) == ("incomplete_expired", None)
    statuses = {
        row["id"]: row["status"]
        for row in (await client.get("/v1/subscriptions", headers=tenant.headers)).json()["data"]
    }
    assert statuses[young] == "incomplete"
    assert statuses[started] == "active"
    assert [method for method, _ in fake.calls] == ["cancel_subscription"]
