"""Usage of subscriptions billed by a provider that meters (the `usage` capability) is reported there.

The records and their ``usage.report`` outbox rows commit together; a worker calls the adapter's
``report_usage`` with the record's id and the subscription's provider ids.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.plugins import Capability
from billplane.runtime import Runtime
from billplane.subscriptions.models import Subscription
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, FakeState, Registration, StaticAccounts, drain, fake_plugin
from tests.platform.usage.seed import END, NOW, START, Metered, metered_tenant, record

Client = AsyncTestClient[Litestar]
NO_USAGE = "fake_nousage"


def account_id() -> int:
    # Explicit ids far above the sequence: accounts of other tests in this database never collide.
    return 10_000_000 + secrets.randbelow(10_000_000)


async def control_account(runtime: Runtime, tenant: CreatedTenant, account: int, provider: str) -> None:
    """The account's control row: what ingestion reads to learn an unmirrored subscription's provider."""
    async with runtime.database.transaction() as connection:
        await connection.execute(
            text(
                "INSERT INTO control.provider_accounts (id, tenant_id, provider, mode, credentials_ciphertext,"
                " credentials_key_id) VALUES (:id, :tenant, :provider, 'test', '\\x00', 'k1')"
            ),
            {"id": account, "tenant": tenant.id, "provider": provider},
        )


async def metered_subscription(runtime: Runtime, tenant: CreatedTenant, customer: int, plan: int, account: int) -> int:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return await insert(
            session, "subscriptions", customer_id=customer, plan_id=plan, status="active",
            current_period_start=START, current_period_end=END, provider_account_id=account,
        )  # fmt: skip


async def mirror(runtime: Runtime, accounts: StaticAccounts, tenant: CreatedTenant, subscription_id: int) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        writer = OutboxWriter(session, tenant.id, tenant.schema, runtime.jobs, accounts, DefaultAccountCache())
        subscription = await session.get(Subscription, subscription_id)
        assert subscription is not None
        assert await SyncService(writer).sync_subscription(subscription)


async def outbox(runtime: Runtime, tenant: CreatedTenant) -> list[tuple[str, int, int, str, str | None]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        rows = await session.execute(
            text("SELECT kind, object_id, provider_account_id, status, last_error FROM outbox ORDER BY id")
        )
        return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]


async def mirrored_on_sum(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> tuple[Metered, int, int]:
    """A metered tenant whose ``sum`` subscription is mirrored to a fake account that meters:
    (the tenant's seed, the account, the subscription)."""
    seed = await metered_tenant(client, admin_headers, worker)
    account = accounts.add(AccountRow(id=account_id(), tenant_id=seed.tenant.id, tenant_schema=seed.tenant.schema)).id
    sub = await metered_subscription(worker, seed.tenant, seed.customer, seed.plans["sum"], account)
    await mirror(worker, accounts, seed.tenant, sub)
    await drain(worker)
    return seed, account, sub


async def test_accepted_usage_is_reported_to_the_subscriptions_provider(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed, account, sub = await mirrored_on_sum(client, admin_headers, accounts, worker)
    shown = (await client.get(f"/v1/subscriptions/{sub}", headers=seed.tenant.headers)).json()
    assert (shown["provider"], shown["sync_status"]) == ("fake", "synced")

    body = {"records": [record(sub, "a", 3), record(sub, "b", 4), record(sub, "a", 5), record(sub, "x", at=END)]}
    response = await client.post("/v1/usage-records", json=body, headers=seed.tenant.headers)
    assert [o["result"] for o in response.json()["data"]] == ["accepted", "accepted", "duplicate", "refused"]
    accepted = [o["id"] for o in response.json()["data"][:2]]
    queued = [row for row in await outbox(worker, seed.tenant) if row[0] == "usage.report"]
    assert [(row[1], row[2], row[3]) for row in queued] == [
        (accepted[0], account, "pending"),
        (accepted[1], account, "pending"),
    ]

    await drain(worker)

    assert [row[3] for row in await outbox(worker, seed.tenant) if row[0] == "usage.report"] == ["done", "done"]
    assert len(fake.created("report_usage")) == 2
    reports = [fake.payloads[f"usage_{record_id}"] for record_id in accepted]
    assert [(r["quantity"], r["usage_record_id"], r["plan_id"]) for r in reports] == [
        (3, accepted[0], seed.plans["sum"]),
        (4, accepted[1], seed.plans["sum"]),
    ]
    assert {r["provider_subscription_id"] for r in reports} == {shown["provider_subscription_id"]}
    created = fake.payloads[shown["provider_subscription_id"]]
    assert {(r["provider_customer_id"], r["provider_price_id"]) for r in reports} == {
        (created["provider_customer_id"], created["provider_price_id"])
    }
    assert reports[0]["timestamp"].startswith(NOW.date().isoformat())


async def test_usage_waits_for_a_subscription_still_being_created_at_the_provider(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await metered_tenant(client, admin_headers, worker)
    account = accounts.add(AccountRow(id=account_id(), tenant_id=seed.tenant.id, tenant_schema=seed.tenant.schema)).id
    await control_account(worker, seed.tenant, account, "fake")
    sub = await metered_subscription(worker, seed.tenant, seed.customer, seed.plans["max"], account)
    await mirror(worker, accounts, seed.tenant, sub)  # queued, not performed yet

    response = await client.post("/v1/usage-records", json={"records": [record(sub, "a")]}, headers=seed.tenant.headers)
    assert response.json()["accepted"] == 1
    assert ("usage.report", "pending") in {(row[0], row[3]) for row in await outbox(worker, seed.tenant)}

    await drain(worker)

    assert {row[0]: row[3] for row in await outbox(worker, seed.tenant)} == {
        "customer.ensure": "done",
        "subscription.create": "done",
        "usage.report": "done",
    }
    assert len(fake.created("report_usage")) == 1


async def test_nothing_is_queued_for_a_provider_that_does_not_meter_or_for_unmirrored_subscriptions(
    client: Client, admin_headers: dict[str, str], app: Litestar, accounts: StaticAccounts, worker: Runtime
) -> None:
    no_usage = replace(fake_plugin(None, NO_USAGE), capabilities=frozenset(Capability) - {Capability.USAGE})
    app.state.runtime.plugins.add_plugin(Registration([no_usage]), "tests-fake-no-usage")
    seed = await metered_tenant(client, admin_headers, worker)
    account = account_id()
    await control_account(worker, seed.tenant, account, NO_USAGE)
    unmetered = await metered_subscription(worker, seed.tenant, seed.customer, seed.plans["sum"], account)
    local = seed.subscriptions["sum"]  # billed by billplane alone

    body = {"records": [record(unmetered, "a"), record(local, "b")]}
    response = await client.post("/v1/usage-records", json=body, headers=seed.tenant.headers)

    assert response.json()["accepted"] == 2
    assert await outbox(worker, seed.tenant) == []


async def test_a_report_the_provider_refuses_is_failed_with_its_error(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed, _, sub = await mirrored_on_sum(client, admin_headers, accounts, worker)
    fake.failures.append(("permanent", "meter is archived"))

    await client.post("/v1/usage-records", json={"records": [record(sub, "a")]}, headers=seed.tenant.headers)
    await drain(worker)

    reports = [row for row in await outbox(worker, seed.tenant) if row[0] == "usage.report"]
    assert [(row[3], row[4]) for row in reports] == [("failed", "meter is archived (fake_error)")]


async def test_a_report_that_may_have_been_made_is_not_sent_again_once_its_key_may_be_forgotten(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # An attempt that ended without an answer, long ago: Stripe keeps a meter event's identifier
    # about 24 hours, after which the same report counts the usage twice.
    seed, _, sub = await mirrored_on_sum(client, admin_headers, accounts, worker)
    await client.post("/v1/usage-records", json={"records": [record(sub, "a")]}, headers=seed.tenant.headers)
    async with worker.database.tenant_session(seed.tenant.schema) as session:
        await session.execute(
            text("UPDATE outbox SET attempts = 1, created_at = now() - interval '21 hours' WHERE kind = 'usage.report'")
        )

    await drain(worker)

    assert fake.created("report_usage") == []
    [report] = [row for row in await outbox(worker, seed.tenant) if row[0] == "usage.report"]
    assert report[3] == "failed"
    assert "not sent again" in (report[4] or "")


async def test_a_report_counts_its_call_before_making_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # Counted only after an answer, a call whose worker died during it left no trace, and the row
    # was sent again however late, past the time the provider keeps its key.
    seed, _, sub = await mirrored_on_sum(client, admin_headers, accounts, worker)
    fake.failures.append(("retryable", "read timeout", 600))

    await client.post("/v1/usage-records", json={"records": [record(sub, "a")]}, headers=seed.tenant.headers)
    await drain(worker)

    async with worker.database.tenant_session(seed.tenant.schema) as session:
        counts = (await session.execute(text("SELECT status, calls FROM outbox WHERE kind = 'usage.report'"))).all()
    assert [tuple(row) for row in counts] == [("pending", 1)]
