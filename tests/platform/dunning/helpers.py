"""Shared steps of the dunning and test clock tests: a sandbox tenant with a monthly subscription."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.invoices.helpers import connect_sandbox, customer, payment_method, rows

Client = AsyncTestClient[Litestar]
PRICE = 1500


@dataclass(frozen=True)
class Setup:
    tenant: CreatedTenant
    account: int
    customer: int
    method: int
    plan: int


async def sandbox_customer(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, token: str, prefix: str = "dun"
) -> Setup:
    """A tenant with a sandbox account, a customer whose default payment method is ``token``, a plan."""
    tenant = await create_tenant(client, admin_headers, prefix)
    account = await connect_sandbox(client, tenant)
    ada = await customer(client, tenant)
    method = await payment_method(runtime, tenant, ada, account, token)
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Pro", "pricing_model": "flat", "amount": PRICE,
            "currency": "USD", "billing_interval": "month"}  # fmt: skip
    plan = (await client.post("/v1/plans", json=body, headers=tenant.headers)).json()
    return Setup(tenant, account, ada, method, plan["id"])


async def on_a_clock(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, token: str, *, frozen_time: datetime, prefix: str
) -> tuple[Setup, int]:
    """``sandbox_customer``, its customer attached to a new test clock frozen at ``frozen_time``."""
    setup = await sandbox_customer(client, admin_headers, runtime, token, prefix)
    frozen = {"frozen_time": frozen_time.isoformat()}
    created = await client.post("/v1/test-clocks", json=frozen, headers=setup.tenant.headers)
    clock: int = created.json()["id"]
    attached = await client.post(
        f"/v1/test-clocks/{clock}/customers", json={"customer_id": setup.customer}, headers=setup.tenant.headers
    )
    assert attached.status_code == 200, attached.text
    return setup, clock


async def another_plan(client: Client, setup: Setup, **fields: Any) -> int:
    """A monthly USD plan of a new product, priced by ``fields`` (pricing_model, amount, ...)."""
    product = (await client.post("/v1/products", json={"name": "More"}, headers=setup.tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Other", "currency": "USD", "billing_interval": "month"} | fields
    created = await client.post("/v1/plans", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    plan_id: int = created.json()["id"]
    return plan_id


async def subscribe(client: Client, setup: Setup, *, trial_days: int = 30) -> int:
    """A subscription to the plan. On a trial by default: a trial is not invoiced at creation, so the
    subscription's first invoice is the billing run's, when ``period_ends`` ends the trial with the
    period (these tests follow a run's charge). ``trial_days=0``: invoiced and charged at creation."""
    body = {"customer_id": setup.customer, "plan_id": setup.plan, "trial_period_days": trial_days}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    subscription_id: int = created.json()["id"]
    return subscription_id


async def set_default_method(runtime: Runtime, setup: Setup, token: str) -> int:
    """The customer's new default payment method (the old one stays, no longer default)."""
    async with runtime.database.tenant_session(setup.tenant.schema) as session:
        await session.execute(text("UPDATE payment_methods SET is_default = false"))
    return await payment_method(runtime, setup.tenant, setup.customer, setup.account, token)


async def execute(runtime: Runtime, tenant: CreatedTenant, query: str, **binds: object) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text(query), binds)


async def one(runtime: Runtime, tenant: CreatedTenant, query: str, **binds: object) -> dict[str, Any]:
    [row] = await rows(runtime, tenant, query, **binds)
    return row


async def types(runtime: Runtime, tenant: CreatedTenant, object_type: str) -> list[str]:
    found = await rows(
        runtime, tenant, "SELECT type FROM events WHERE object_type = :kind ORDER BY id", kind=object_type
    )
    return [row["type"] for row in found]


async def database_now(runtime: Runtime) -> datetime:
    async with runtime.database.transaction() as connection:
        now: datetime = (await connection.execute(text("SELECT now()"))).scalar_one()
    return now


async def period_ends(runtime: Runtime, setup: Setup, subscription: int) -> None:
    """The subscription's current period (or trial) ended a minute ago, and a billing run billed
    it (not drained: the charge it queued has not run yet)."""
    ended = await database_now(runtime) - timedelta(minutes=1)
    await execute(
        runtime, setup.tenant,
        "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end, "
        "trial_end = CASE WHEN trial_end IS NOT NULL THEN CAST(:end AS timestamptz) END WHERE id = :id",
        start=ended - timedelta(days=30), end=ended, id=subscription,
    )  # fmt: skip
    await BillingRun(runtime.database, runtime.accounts).run()


async def subscription_status(runtime: Runtime, setup: Setup, subscription: int) -> str:
    row = await one(runtime, setup.tenant, "SELECT status FROM subscriptions WHERE id = :id", id=subscription)
    return str(row["status"])
