"""A live-mode account that comes to the clock's customers while it advances stops the advance at
the step that sees it: no step charges a live account, and the clock says why it stopped.

The advance request checks the accounts once; the worker steps for a long while after. Here a
step is held on a subscription's row while the customer subscribes through a live account, then
let go: before the fix, the steps after it charged the live account.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped, unused-ignore]  # asyncpg 0.32 ships no type hints
from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.billing_seed import insert
from tests.platform.concurrently import held
from tests.platform.dunning.helpers import Client, Setup, another_plan, on_a_clock, subscribe
from tests.platform.invoices.helpers import payment_method, rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import URL

T0 = datetime(2030, 1, 15, 9, tzinfo=UTC)
# Held by another transaction, it stops a step that bills the subscription there (the clock's
# lock of its due subscriptions waits: ``locked.lock_due``).
HOLD = "SELECT 1 FROM subscriptions WHERE id = {} FOR UPDATE"
WAITING = "SELECT count(*) FROM pg_locks WHERE NOT granted AND $1 = ANY(pg_blocking_pids(pid))"


async def _live_account(client: Client, setup: Setup) -> int:
    body = {"provider": "sandbox", "mode": "live", "credentials": {"api_key": "sk_sandbox_live_0123456789"},
            "webhook_secret": "whsec_live_0123456789", "is_default": False}  # fmt: skip
    created = await client.post("/v1/provider-accounts", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    account: int = created.json()["id"]
    return account


async def _waited_on(connection: asyncpg.Connection) -> None:
    """Until another backend waits for a lock ``connection`` holds (bounded: 30 s)."""
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    for _ in range(600):
        if await connection.fetchval(WAITING, pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no step came to wait for the held subscription")


async def test_a_live_account_attached_during_an_advance_stops_it_at_the_step_that_sees_it(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="clklive")
    headers = setup.tenant.headers
    monthly = await subscribe(client, setup, trial_days=0)  # renews on Feb 15
    weekly = await another_plan(client, setup, pricing_model="flat", amount=500, billing_interval="week")
    body = {"customer_id": setup.customer, "plan_id": weekly, "trial_period_days": 0}
    assert (await client.post("/v1/subscriptions", json=body, headers=headers)).status_code == 201
    await drain(worker)
    live = await _live_account(client, setup)  # not the default: the advance is allowed
    await payment_method(worker, setup.tenant, setup.customer, live, SUCCEEDS)  # her default there
    target = T0 + timedelta(days=40)
    asked = await client.post(f"{URL}/{clock}/advance", json={"to": target.isoformat()}, headers=headers)
    assert asked.status_code == 202, asked.text

    async with held(database_url, setup.tenant.schema, HOLD.format(monthly)) as connection:
        # The weekly renewals (Jan 22 to Feb 12) go through; the step to Feb 15 waits, mid-way.
        advancing = asyncio.ensure_future(worker_services(worker).clocks.run())
        await _waited_on(connection)
        # Meanwhile a subscription of the clock's customer through the live account appears (on a
        # day's trial, ending on the clock's Feb 13). The API refuses to create one now
        # (test_a_clock_customer_is_not_subscribed_or_charged_through_a_live_account): written as
        # one made before it did.
        async with worker.database.tenant_session(setup.tenant.schema) as session:
            trial_end = datetime(2030, 2, 13, 9, tzinfo=UTC)
            await insert(
                session, "subscriptions", customer_id=setup.customer, plan_id=weekly, status="trialing",
                trial_start=trial_end - timedelta(days=1), trial_end=trial_end,
                current_period_start=trial_end - timedelta(days=1), current_period_end=trial_end,
                billing_cycle_anchor=trial_end, provider="sandbox", provider_account_id=live,
            )  # fmt: skip
    await advancing
    await drain(worker)

    assert await rows(worker, setup.tenant, "SELECT id FROM payments WHERE provider_account_id = :id", id=live) == []
    stopped_at = datetime(2030, 2, 12, 9, tzinfo=UTC)  # the last step that went through
    shown = (await client.get(f"{URL}/{clock}", headers=headers)).json()
    assert (shown["status"], datetime.fromisoformat(shown["frozen_time"])) == ("ready", stopped_at)
    starts = await rows(worker, setup.tenant, "SELECT period_start FROM invoices ORDER BY period_start, id")
    weeks = [T0 + timedelta(weeks=week) for week in range(5)]
    assert [row["period_start"] for row in starts] == [T0, *weeks]  # none on Feb 15: that step rolled back
    [event] = await rows(
        worker, setup.tenant, "SELECT type, data FROM events WHERE object_type = 'test_clock' ORDER BY id DESC LIMIT 1"
    )
    assert event["type"] == "test_clock.advance_failed"
    assert (
        event["data"]["reason"] == f"the clock's customers would be charged through live-mode provider account {live}"
    )
    assert datetime.fromisoformat(event["data"]["advancing_to"]) == target
    assert event["data"]["test_clock"]["status"] == "ready"
    # Stopped for good: the worker steps it no more, and another advance is refused while it is live.
    assert await worker_services(worker).clocks.run() == 0
    again = await client.post(f"{URL}/{clock}/advance", json={"to": target.isoformat()}, headers=headers)
    assert again.status_code == 409, again.text


async def test_a_clock_customer_is_not_subscribed_or_charged_through_a_live_account(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, _ = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="clklivereq")
    headers = setup.tenant.headers
    live = await _live_account(client, setup)
    weekly = await another_plan(client, setup, pricing_model="flat", amount=500, billing_interval="week")
    body = {"customer_id": setup.customer, "plan_id": weekly, "provider_account_id": live, "trial_period_days": 0}
    refused = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "provider_account_id"
    assert "live mode" in refused.json()["errors"][0]["message"]

    # An invoice of hers, paid when the live account has become the tenant's default.
    lines = [{"description": "setup", "unit_amount": 900}]
    invoice = await client.post(
        "/v1/invoices", json={"customer_id": setup.customer, "currency": "USD", "lines": lines}, headers=headers
    )
    assert invoice.status_code == 201, invoice.text
    invoice_id = invoice.json()["id"]
    assert (await client.post(f"/v1/invoices/{invoice_id}/finalize", headers=headers)).status_code == 200
    made_default = await client.patch(f"/v1/provider-accounts/{live}", json={"is_default": True}, headers=headers)
    assert made_default.status_code == 200, made_default.text
    paid = await client.post(f"/v1/invoices/{invoice_id}/pay", headers=headers)
    assert paid.status_code == 409, paid.text
    assert "live mode" in paid.json()["detail"]
    assert await rows(worker, setup.tenant, "SELECT id FROM payments WHERE invoice_id = :id", id=invoice_id) == []
