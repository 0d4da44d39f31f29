"""The billing run across tenants whose schemas differ, as during a rolling migration.

The run's own statements (``billplane.billing.driver``) are kept prepared by asyncpg and reused
from tenant to tenant on a connection; PostgreSQL analyzes them again for each tenant's
search_path, but refuses a prepared statement whose result types would change ("cached plan must
not change result type"). Each tenant here bills on the same single connection, one after the
other, with every statement of the run in use: the lock, plans, tiers, pending prorations, metered
usage and the writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from billplane_tenants import Database
from tests.conftest import CreatedTenant
from tests.platform.billing.test_billing_run import rows, subscribe, tenant_with_plans
from tests.platform.billing_seed import insert, tiered_plan

Client = AsyncTestClient[Litestar]

# Result columns of the run's statements, retyped the way a migration might (text -> varchar).
_DIVERGE = (
    "ALTER TABLE subscriptions ALTER COLUMN sync_status TYPE varchar(40)",
    "ALTER TABLE invoices ALTER COLUMN number TYPE varchar(40)",
    "ALTER TABLE plans ALTER COLUMN name TYPE varchar(200)",
    "ALTER TABLE invoice_items ALTER COLUMN description TYPE varchar(500)",
    "ALTER TABLE usage_records ALTER COLUMN quantity TYPE numeric(20, 0)",
    "ALTER TABLE pricing_tiers ALTER COLUMN flat_amount TYPE numeric(20, 0)",
)


async def _due_everything(runtime: Runtime, client: Client, admin_headers: dict[str, str]) -> CreatedTenant:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    seats = await subscribe(runtime, tenant, ids["daily"], ids["customer"])
    calls = await subscribe(runtime, tenant, ids["calls"], ids["customer"], quantity=1)
    period_start = datetime.now(UTC) - timedelta(days=3.5)
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="Storage")
        tiered = await tiered_plan(session, product, "Storage", [(10, 3), (None, 3)])
        await insert(
            session, "invoice_items", customer_id=ids["customer"], subscription_id=seats, plan_id=ids["daily"],
            description="Proration", quantity=1, unit_amount=50, amount=50, currency="USD", proration=True,
        )  # fmt: skip
        await insert(
            session, "usage_records", subscription_id=calls, quantity=7, client_event_id="e1",
            timestamp=period_start + timedelta(hours=1),
        )  # fmt: skip
    await subscribe(runtime, tenant, tiered, ids["customer"], quantity=12)
    return tenant


async def test_tenants_with_different_schemas_bill_on_one_connection(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    tenants = [await _due_everything(runtime, client, admin_headers) for _ in range(2)]
    async with runtime.database.tenant_session(tenants[1].schema) as session:
        for statement in _DIVERGE:
            await session.execute(text(statement))
    single = Database(database_url, pool_size=1, max_overflow=0)  # one backend: the tenants' statements meet
    try:
        report = await BillingRun(single, runtime.accounts, concurrency=1).run()
    finally:
        await single.dispose()

    assert not {tenant.schema for tenant in tenants} & set(report.failed_tenants)
    for tenant in tenants:
        cycle = "SELECT number FROM invoices WHERE billing_reason = 'subscription_cycle'"
        invoices = await rows(runtime, tenant, cycle)
        assert len(invoices) == 9  # three boundaries for each of the three subscriptions
        assert all(invoice["number"].startswith("INV-") for invoice in invoices)
        [item] = await rows(runtime, tenant, "SELECT invoice_id FROM invoice_items")
        assert item["invoice_id"] is not None  # the proration went on the next invoice
        usage = await rows(runtime, tenant, "SELECT amount FROM invoice_lines WHERE description LIKE '%Calls%'")
        assert 14 in [line["amount"] for line in usage]  # 7 calls at 2 in the first period's invoice
        storage = await rows(runtime, tenant, "SELECT amount FROM invoice_lines WHERE description LIKE '%Storage%'")
        assert sorted(line["amount"] for line in storage) == [6] * 3 + [30] * 3  # 2 at tier 2, 10 at tier 1
