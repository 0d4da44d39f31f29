"""A provider's cancellation of a subscription billplane bills, applied after its period ended.

The billing run crosses period ends every minute, later when the workers are down. A cancellation
made at the provider (its dashboard, the customer's portal there) in between ended the
subscription without the ended period's boundary: its invoice was never issued (a metered
period's usage, a renewal billed in advance). Applied, the event first bills what was due by the
time the provider canceled, as a cancellation through the API does, and nothing after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import subscribed
from tests.platform.sync_fakes import AccountRow, StaticAccounts, drain
from tests.platform.test_webhooks import Client, deliver, event, status_of, stored


async def ended_an_hour_ago(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    account_id: int,
    *,
    cancel_at_period_end: bool = False,
) -> tuple[CreatedTenant, AccountRow, int, datetime]:
    """A monthly subscription mirrored as ``sub_1`` to the fake provider (which bills nothing),
    whose period ended an hour ago, not billed yet: (tenant, account, subscription, period end)."""
    tenant = await create_tenant(client, admin_headers, "pcancel")
    account = accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(
            session, provider_account_id=account.id, provider_subscription_id="sub_1",
            current_period_start=end - timedelta(days=30), current_period_end=end,
            cancel_at_period_end=cancel_at_period_end,
        )  # fmt: skip
    return tenant, account, subscription, end


async def invoices(worker: Runtime, tenant: CreatedTenant) -> list[tuple[str, datetime | None, int]]:
    async with worker.database.tenant_session(tenant.schema) as session:
        found = await session.execute(
            text("SELECT billing_reason, period_start, total FROM invoices ORDER BY id")
        )  # fmt: skip
    return [(row[0], row[1], row[2]) for row in found]


async def test_a_cancel_after_the_period_end_bills_the_boundary_first(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription, end = await ended_an_hour_ago(client, admin_headers, accounts, worker, 981)
    canceled_at = end + timedelta(minutes=30)
    cancel = event("evt_1", "subscription.canceled", "sub_1", canceled_at)

    assert (await deliver(client, account, [cancel])).status_code == 200
    await drain(worker)

    assert [(row["status"], row["detail"]) for row in await stored(worker, tenant)] == [("applied", None)]
    assert await status_of(worker, tenant, subscription) == "canceled"
    # The renewal due at the period end, as the run would have billed it then (flat, in advance).
    assert await invoices(worker, tenant) == [("subscription_cycle", end, 1000)]


async def test_a_cancel_before_the_period_end_bills_nothing_more_however_late_it_arrives(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription, end = await ended_an_hour_ago(client, admin_headers, accounts, worker, 982)
    cancel = event("evt_1", "subscription.canceled", "sub_1", end - timedelta(minutes=5))

    assert (await deliver(client, account, [cancel])).status_code == 200
    await drain(worker)

    assert await status_of(worker, tenant, subscription) == "canceled"
    assert await invoices(worker, tenant) == []


async def test_a_cancel_after_a_scheduled_end_keeps_the_time_it_ended_here(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription, end = await ended_an_hour_ago(
        client, admin_headers, accounts, worker, 983, cancel_at_period_end=True
    )
    cancel = event("evt_1", "subscription.canceled", "sub_1", end + timedelta(minutes=30))

    assert (await deliver(client, account, [cancel])).status_code == 200
    await drain(worker)

    ended = "it had ended at its period end, before the provider's cancellation"
    assert [(row["status"], row["detail"]) for row in await stored(worker, tenant)] == [("applied", ended)]
    async with worker.database.tenant_session(tenant.schema) as session:
        row = (await session.execute(text("SELECT status, canceled_at FROM subscriptions WHERE id = :id"),
                                     {"id": subscription})).one()  # fmt: skip
    assert tuple(row) == ("canceled", end)
    assert await invoices(worker, tenant) == []
