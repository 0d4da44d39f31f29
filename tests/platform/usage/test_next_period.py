"""A record of the next period, sent after the open period ended but before the billing run moved
the subscription on, is taken when the next period will bill it, and counted there, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.platform.usage.seed import metered_tenant, record

Client = AsyncTestClient[Litestar]


async def test_a_record_after_an_ended_period_counts_in_the_next_once_the_run_opens_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    now = datetime.now(UTC)
    end = now - timedelta(minutes=1)  # ended; the run has not come yet
    renewing, ending, unmetered = seed.subscriptions["sum"], seed.subscriptions["max"], seed.subscriptions["last"]
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        await session.execute(
            text(
                "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end WHERE id = ANY(:ids)"
            ),
            {"start": end - timedelta(days=30), "end": end, "ids": [renewing, ending, unmetered]},
        )
        await session.execute(
            text("UPDATE subscriptions SET cancel_at_period_end = true WHERE id = :id"), {"id": ending}
        )
        await session.execute(
            text("UPDATE subscriptions SET pending_plan_id = :flat WHERE id = :id"),
            {"flat": seed.plans["flat"], "id": unmetered},
        )

    records = [
        record(renewing, "ended", 3, at=end - timedelta(seconds=1)),
        record(renewing, "next", 5, at=end + timedelta(seconds=10)),
        record(ending, "after-the-end", 5, at=end + timedelta(seconds=10)),
        record(unmetered, "after-the-change", 5, at=end + timedelta(seconds=10)),
    ]
    response = await client.post("/v1/usage-records", json={"records": records}, headers=seed.tenant.headers)
    assert response.status_code == 201, response.text
    outcomes = [(outcome["result"], outcome.get("field")) for outcome in response.json()["data"]]
    assert outcomes == [("accepted", None), ("accepted", None), ("refused", "timestamp"), ("refused", "timestamp")]

    await BillingRun(runtime.database, runtime.accounts).run()

    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        billed = (
            await session.execute(
                text(
                    "SELECT l.quantity FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                    "WHERE i.subscription_id = :id"
                ),
                {"id": renewing},
            )
        ).scalars()
        assert list(billed) == [3]
    summary = (await client.get(f"/v1/subscriptions/{renewing}/usage", headers=seed.tenant.headers)).json()
    assert (summary["period_start"], summary["quantity"], summary["records"]) == (
        end.isoformat().replace("+00:00", "Z"),
        5,
        1,
    )
