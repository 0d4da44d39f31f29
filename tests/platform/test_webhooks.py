"""Inbound provider webhooks: account resolution, verification, storage once, async apply, watermark."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.webhooks.apply import EventApplier
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert, subscribed
from tests.platform.sync_fakes import (
    BILLED,
    PROVIDER,
    SIGNATURE_HEADER,
    AccountRow,
    FakeState,
    StaticAccounts,
    clear_jobs,
    drain,
    register_billed_fake,
    register_fakes,
    sign,
    wait_for_jobs,
)

Client = AsyncTestClient[Litestar]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def accounts(app: Litestar) -> StaticAccounts:
    app_runtime: Runtime = app.state.runtime
    register_fakes(app_runtime.plugins, None, names=("fake", "other"))
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    return accounts


@pytest.fixture
async def worker(runtime: Runtime, accounts: StaticAccounts) -> Runtime:
    runtime.accounts = accounts
    await clear_jobs(runtime)
    return runtime


def event(event_id: str, kind: str, object_id: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "occurred_at": at.isoformat(),
        "provider_object_id": object_id,
    } | payload


def subscription_state(status: str) -> dict[str, Any]:
    return {"subscription": {"provider_id": "sub_1", "status": status}}


async def deliver(
    client: Client, account: AccountRow, events: list[dict[str, Any]], *, secret: str | None = None
) -> Any:
    body = json.dumps(events).encode()
    signature = sign(secret or account.webhook_secret, body)
    return await client.post(
        f"/v1/webhooks/{account.provider}/{account.id}",
        content=body,
        headers={"content-type": "application/json", SIGNATURE_HEADER: signature},
    )


async def stored(runtime: Runtime, tenant: CreatedTenant) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        rows = await session.execute(
            text("SELECT event_id, type, status, detail, raw_body, applied_at FROM provider_events ORDER BY id")
        )
        return [dict(row._mapping) for row in rows]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def tenant_with_subscription(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    runtime: Runtime,
    account_id: int,
    *,
    billed: FakeState | None = None,
    status: str = "active",
) -> tuple[CreatedTenant, AccountRow, int]:
    """A tenant with a subscription ``sub_1`` at an account of the fake provider; with ``billed``,
    of the fake that bills its subscriptions (whose status is its word, not billplane's), its
    calls recorded there."""
    tenant = await create_tenant(client, admin_headers, "hook")
    provider = PROVIDER
    if billed is not None:
        for host in (accounts.host, runtime.plugins):  # the app's, and the worker's that applies events
            register_billed_fake(host, billed)
        provider = BILLED
    account = accounts.add(
        AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema, provider=provider)
    )
    async with runtime.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(
            session, status=status, provider=provider, provider_account_id=account.id, provider_subscription_id="sub_1"
        )
    return tenant, account, subscription


async def status_of(runtime: Runtime, tenant: CreatedTenant, subscription: int) -> str:
    async with runtime.database.tenant_session(tenant.schema) as session:
        found = await session.scalar(text("SELECT status FROM subscriptions WHERE id = :id"), {"id": subscription})
    return str(found)


async def test_a_verified_event_is_stored_once_and_applied_in_a_job(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 501, billed=FakeState()
    )
    events = [event("evt_1", "subscription.updated", "sub_1", T0, **subscription_state("past_due"))]

    first = await deliver(client, account, events)
    again = await deliver(client, account, events)

    assert (first.status_code, first.json()) == (200, {"received": 1, "duplicates": 0})
    assert (again.status_code, again.json()) == (200, {"received": 0, "duplicates": 1})
    [row] = await stored(worker, tenant)
    assert (row["event_id"], row["status"], row["applied_at"]) == ("evt_1", "received", None)
    assert row["raw_body"] == json.dumps(events).encode()
    assert await status_of(worker, tenant, subscription) == "active"  # not applied in the request

    [job] = await wait_for_jobs(worker, 1)
    assert job["task"] == "billplane.apply_event"
    await drain(worker, sweep=False)

    assert await status_of(worker, tenant, subscription) == "past_due"
    [row] = await stored(worker, tenant)
    assert row["status"] == "applied"
    assert row["applied_at"] is not None


async def test_a_canceled_subscription_is_never_brought_back_by_the_provider(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # Canceled here, its cancellation not sent yet: the provider's next word still says active.
    # Taken, it would undo the cancellation, and the cancel row, sending the state of its time,
    # would then cancel nothing: the provider would bill on.
    tenant, account, subscription = await tenant_with_subscription(client, admin_headers, accounts, worker, 504)
    canceled = await client.post(f"/v1/subscriptions/{subscription}/cancel", headers=tenant.headers)
    assert canceled.status_code == 200, canceled.text
    later = T0 + timedelta(days=400)
    live = event("evt_1", "subscription.updated", "sub_1", later, **subscription_state("active"))
    await deliver(client, account, [live])
    await drain(worker)

    assert await status_of(worker, tenant, subscription) == "canceled"
    [row] = await stored(worker, tenant)
    assert (row["status"], row["detail"]) == (
        "ignored",
        "the subscription is canceled: a provider's word cannot restart it",
    )


async def test_older_events_do_not_roll_an_object_back_and_replays_are_no_ops(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 502, billed=FakeState()
    )
    newer = event("evt_2", "subscription.updated", "sub_1", T0 + timedelta(minutes=5), **subscription_state("past_due"))
    older = event("evt_1", "subscription.updated", "sub_1", T0, **subscription_state("active"))
    await deliver(client, account, [newer])
    await drain(worker)
    await deliver(client, account, [older])  # delivered late, as providers do
    await drain(worker)

    assert await status_of(worker, tenant, subscription) == "past_due"
    rows = {row["event_id"]: row for row in await stored(worker, tenant)}
    assert (rows["evt_1"]["status"], rows["evt_1"]["detail"]) == (
        "ignored",
        "older than the last event applied to this subscription",
    )

    # Replaying the job of an applied event changes nothing.
    async with worker.database.tenant_session(tenant.schema) as session:
        evt_2 = await session.scalar(text("SELECT id FROM provider_events WHERE event_id = 'evt_2'"))
    from billplane.sync.refs import EventRef  # noqa: PLC0415

    assert await EventApplier(worker.database).apply(EventRef(tenant.id, tenant.schema, int(evt_2))) == "skipped"


async def test_a_started_subscription_does_not_go_back_to_incomplete_on_an_event_of_the_same_second(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """Stripe's created (incomplete) and updated (active) events of one second, delivered in reverse.
    Before, the created one was taken, and billplane's expiry would have canceled the subscription."""
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 506, billed=FakeState(), status="incomplete"
    )
    started = event("evt_2", "subscription.updated", "sub_1", T0, **subscription_state("active"))
    created = event("evt_1", "subscription.updated", "sub_1", T0, **subscription_state("incomplete"))
    await deliver(client, account, [started])
    await drain(worker)
    await deliver(client, account, [created])
    await drain(worker)

    assert await status_of(worker, tenant, subscription) == "active"
    rows = {row["event_id"]: row for row in await stored(worker, tenant)}
    assert (rows["evt_1"]["status"], rows["evt_1"]["detail"]) == (
        "ignored",
        "a subscription that has started does not go back to incomplete: older news",
    )


async def test_a_failed_payment_of_the_suspensions_second_does_not_undo_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """PayPal's last failed payment (its subscription still ACTIVE: past_due) and the suspension
    it causes (unpaid), in one second, delivered in reverse. Before, past_due was taken last."""
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 507, billed=FakeState(), status="past_due"
    )
    await deliver(
        client, account, [event("evt_2", "subscription.updated", "sub_1", T0, **subscription_state("unpaid"))]
    )
    await drain(worker)
    failed = event("evt_1", "subscription.updated", "sub_1", T0, **subscription_state("past_due"))
    await deliver(client, account, [failed])
    await drain(worker)

    assert await status_of(worker, tenant, subscription) == "unpaid"
    rows = {row["event_id"]: row for row in await stored(worker, tenant)}
    assert (
        rows["evt_1"]["detail"] == "a failed payment of the same second as the subscription's suspension is older news"
    )


async def test_a_customer_deleted_at_the_provider_loses_its_provider_id(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "hook")
    account = accounts.add(AccountRow(id=503, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        await insert(
            session, "provider_customers", customer_id=customer, provider="fake", provider_account_id=account.id,
            provider_customer_id="cus_9",
        )  # fmt: skip
    await deliver(client, account, [event("evt_d", "customer.deleted", "cus_9", T0)])
    await drain(worker)
    assert [(row["status"], row["detail"]) for row in await stored(worker, tenant)] == [("applied", None)]
    shown = (await client.get(f"/v1/customers/{customer}", headers=tenant.headers)).json()
    assert shown["provider_ids"] == []
    assert shown["name"] == "Ada"  # billplane keeps its customer


async def test_a_bad_signature_is_400_and_stores_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 504)
    response = await deliver(client, account, [event("evt_x", "customer.updated", "cus_1", T0)], secret="wrong")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await stored(worker, tenant) == []


async def test_unknown_accounts_and_other_providers_are_404(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    _, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 505)
    body = json.dumps([event("evt_1", "customer.updated", "cus_1", T0)]).encode()
    signature = {SIGNATURE_HEADER: sign(account.webhook_secret, body)}
    unknown = await client.post("/v1/webhooks/fake/999999", content=body, headers=signature)
    wrong_provider = await client.post(f"/v1/webhooks/other/{account.id}", content=body, headers=signature)
    too_big_id = await client.post(f"/v1/webhooks/fake/{2**63}", content=body, headers=signature)
    assert (unknown.status_code, wrong_provider.status_code, too_big_id.status_code) == (404, 404, 404)


async def test_a_body_over_one_mebibyte_is_413(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 506)
    body = b"[" + b" " * (1024 * 1024) + b"]"
    response = await client.post(
        f"/v1/webhooks/fake/{account.id}", content=body, headers={SIGNATURE_HEADER: sign(account.webhook_secret, body)}
    )
    assert response.status_code == 413
    assert await stored(worker, tenant) == []


async def test_an_event_lands_only_in_its_accounts_tenant(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    mine, my_account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 507)
    theirs, _, their_subscription = await tenant_with_subscription(client, admin_headers, accounts, worker, 508)
    # Their subscription has the same provider id at its own account: the account decides, not the id.
    await deliver(
        client, my_account, [event("evt_1", "subscription.updated", "sub_1", T0, **subscription_state("paused"))]
    )
    await drain(worker)
    assert len(await stored(worker, mine)) == 1
    assert await stored(worker, theirs) == []
    assert await status_of(worker, theirs, their_subscription) == "active"


async def test_a_provider_that_does_not_bill_sets_no_next_action_on_a_live_subscription(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # Its status is not taken (billplane bills the subscription), so neither is an approval link
    # that only means something while the subscription waits for the customer.
    tenant, account, subscription = await tenant_with_subscription(client, admin_headers, accounts, worker, 505)
    waiting = {
        "subscription": {
            "provider_id": "sub_1",
            "status": "incomplete",
            "cancel_at_period_end": True,  # news it takes: so the event is applied, the rest not
            "next_action": {"type": "redirect", "url": "https://approve.example/sub_1"},
        }
    }
    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", T0, **waiting)])
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert (shown["status"], shown["cancel_at_period_end"], shown["next_action"]) == ("active", True, None)
