"""A billing run's invoices are finalized and charged through the tenant's sandbox account, end to
end: subscription through the API, the run, the real worker, the sandbox's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.invoices.helpers import Client, connect_sandbox, customer, payment_method, rows
from tests.platform.sync_fakes import as_worker, drain


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


OUTCOMES = {SUCCEEDS: ("paid", "succeeded", None), DECLINED: ("open", "failed", "card_declined")}


@pytest.mark.parametrize("token", OUTCOMES)
async def test_a_renewal_is_numbered_and_charged(
    client: Client, admin_headers: dict[str, str], worker: Runtime, token: str
) -> None:
    invoice_status, *payment = OUTCOMES[token]
    tenant = await create_tenant(client, admin_headers, "collect")
    account = await connect_sandbox(client, tenant)
    ada = await customer(client, tenant)
    await payment_method(worker, tenant, ada, account, token)
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    plan_body = {"product_id": product["id"], "name": "Team", "pricing_model": "per_seat", "amount": 1200,
                 "currency": "USD", "billing_interval": "month"}  # fmt: skip
    plan = (await client.post("/v1/plans", json=plan_body, headers=tenant.headers)).json()
    created = await client.post(
        # On a trial: nothing is invoiced at creation, so the run's invoice is the only one.
        "/v1/subscriptions",
        json={"customer_id": ada, "plan_id": plan["id"], "quantity": 3, "trial_period_days": 30},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    subscription = created.json()["id"]
    await drain(worker)  # mirrored to the sandbox
    # A month later.
    ended = datetime.now(UTC) - timedelta(minutes=1)
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text(
                "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end, trial_end = :end "
                "WHERE id = :id"
            ),
            {"start": ended - timedelta(days=30), "end": ended, "id": subscription},
        )

    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)

    [invoice] = (await client.get("/v1/invoices", params={"customer_id": ada}, headers=tenant.headers)).json()["data"]
    assert (invoice["status"], invoice["total"], invoice["number"]) == (invoice_status, 3600, "INV-1")
    assert invoice["billing_reason"] == "subscription_cycle"
    [paid] = await rows(worker, tenant, "SELECT status, failure_code, amount FROM payments")
    assert [paid["status"], paid["failure_code"], paid["amount"]] == [*payment, 3600]
    types = await rows(worker, tenant, "SELECT type FROM events WHERE object_type = 'invoice' ORDER BY id")
    assert [row["type"] for row in types][:2] == ["invoice.created", "invoice.finalized"]
