"""A plan whose pricing model the account's provider cannot bill is refused with 422, nothing queued."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert
from tests.platform.provider_accounts_fake import FakeProvider, good_body

Client = AsyncTestClient[Litestar]


async def test_a_plan_the_provider_cannot_bill_is_refused_before_anything_is_queued(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    FakeProvider().install(client.app)  # bills flat plans only
    tenant = await create_tenant(client, admin_headers, "unsupported")
    created = await client.post("/v1/provider-accounts", json=good_body(is_default=True), headers=tenant.headers)
    assert created.status_code == 201, created.text
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        product = await insert(session, "products", name="API")
        metered = await insert(
            session, "plans", product_id=product, name="Calls", pricing_model="metered", amount=2, currency="USD",
            billing_interval="month", usage_aggregation="sum",
        )  # fmt: skip
        flat = await insert(
            session, "plans", product_id=product, name="Basic", pricing_model="flat", amount=1000, currency="USD",
            billing_interval="month",
        )  # fmt: skip
        on_metered = await insert(session, "subscriptions", customer_id=customer, plan_id=metered, status="active")
        on_flat = await insert(session, "subscriptions", customer_id=customer, plan_id=flat, status="active")

    refused = await client.post(f"/v1/subscriptions/{on_metered}/sync", headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["errors"] == [
        {
            "field": "plan_id",
            "source": "body",
            "message": f"fake accounts cannot bill metered plans (account {created.json()['id']} supports: flat)",
        }
    ]
    async with runtime.database.tenant_session(tenant.schema) as session:
        queued = await session.scalar(text("SELECT count(*) FROM outbox WHERE kind = 'subscription.create'"))
    assert queued == 0

    accepted = await client.post(f"/v1/subscriptions/{on_flat}/sync", headers=tenant.headers)
    assert accepted.status_code == 202, accepted.text
