"""A change to a subscription whose period has ended, before the billing run has billed it: the
ended period is billed first, as the run would, and the change applies to the period after."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.run import BillingRun
from billplane.db.mixins import MAX_ID
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    Client,
    Setup,
    another_plan,
    database_now,
    execute,
    one,
    sandbox_customer,
)
from tests.platform.invoices.helpers import rows

INVOICES = "SELECT id, billing_reason, total, period_start, period_end FROM invoices ORDER BY id"
LINES = "SELECT quantity, amount, period_start, period_end FROM invoice_lines WHERE invoice_id = :id ORDER BY id"
USED = 10_000
PER_UNIT = 5


async def _subscribed(client: Client, setup: Setup, plan: int, **body: Any) -> int:
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": setup.customer, "plan_id": plan} | body, headers=setup.tenant.headers
    )
    assert created.status_code == 201, created.text
    subscription: int = created.json()["id"]
    return subscription


async def _used(client: Client, runtime: Runtime, setup: Setup, subscription: int, *quantities: int) -> None:
    query = "SELECT current_period_start FROM subscriptions WHERE id = :id"
    row = await one(runtime, setup.tenant, query, id=subscription)
    at = row["current_period_start"].isoformat()
    records = [
        {"subscription_id": subscription, "quantity": quantity, "timestamp": at, "client_event_id": f"u{n}"}
        for n, quantity in enumerate(quantities)
    ]
    used = await client.post("/v1/usage-records", json={"records": records}, headers=setup.tenant.headers)
    assert used.json()["accepted"] == len(quantities), used.text


async def _period_ended(runtime: Runtime, setup: Setup, subscription: int) -> datetime:
    """The subscription's period (and its usage) moved back so that it ended 20 seconds ago, and no
    billing run has billed it yet; returns the period's end."""
    end = await database_now(runtime) - timedelta(seconds=20)
    start = end - timedelta(days=30)
    await execute(
        runtime, setup.tenant,
        "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end WHERE id = :id",
        start=start, end=end, id=subscription,
    )  # fmt: skip
    await execute(
        runtime, setup.tenant, "UPDATE usage_records SET timestamp = :at WHERE subscription_id = :id",
        at=start + timedelta(days=1), id=subscription,
    )  # fmt: skip
    return end


async def _metered_period_ended(client: Client, setup: Setup, runtime: Runtime) -> tuple[int, datetime]:
    plan = await another_plan(client, setup, pricing_model="metered", amount=PER_UNIT, usage_aggregation="sum")
    subscription = await _subscribed(client, setup, plan)
    await _used(client, runtime, setup, subscription, USED)
    return subscription, await _period_ended(runtime, setup, subscription)


async def _used_beyond_a_line(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, name: str
) -> tuple[Setup, int]:
    """A subscription to a free metered plan whose usage sums to a quantity no invoice line can
    hold: 0 to pay, but an invoice the run refuses."""
    setup = await sandbox_customer(client, admin_headers, runtime, SUCCEEDS, name)
    free = await another_plan(client, setup, pricing_model="metered", amount=0, usage_aggregation="sum")
    subscription = await _subscribed(client, setup, free)
    await _used(client, runtime, setup, subscription, MAX_ID, 1)
    return setup, subscription


async def _billed_once(runtime: Runtime, setup: Setup, end: datetime) -> list[dict[str, Any]]:
    """The ended period is on exactly one invoice (the boundary's), and a billing run bills nothing
    more; returns the invoices after the boundary's."""
    invoices = await rows(runtime, setup.tenant, INVOICES)
    invoice, *after = invoices
    assert (invoice["billing_reason"], invoice["total"]) == ("subscription_cycle", USED * PER_UNIT)
    assert invoice["period_start"] == end  # keyed by the period the boundary starts
    [line] = await rows(runtime, setup.tenant, LINES, id=invoice["id"])
    assert (line["quantity"], line["amount"], line["period_end"]) == (USED, USED * PER_UNIT, end)
    assert all(later["period_start"] >= end for later in after)
    await BillingRun(runtime.database, runtime.accounts).run()
    assert await rows(runtime, setup.tenant, INVOICES) == invoices
    return after


async def test_canceling_now_after_the_period_end_bills_the_ended_period_first(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "duecancel")
    subscription, end = await _metered_period_ended(client, setup, worker)

    canceled = await client.post(f"/v1/subscriptions/{subscription}/cancel", json={}, headers=setup.tenant.headers)

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["current_period_start"] == end.isoformat().replace("+00:00", "Z")
    assert await _billed_once(worker, setup, end) == []


async def test_canceling_now_with_invoice_now_after_the_period_end_bills_the_ended_period_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "duenow")
    subscription, end = await _metered_period_ended(client, setup, worker)

    canceled = await client.post(
        f"/v1/subscriptions/{subscription}/cancel", json={"invoice_now": True}, headers=setup.tenant.headers
    )

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    # invoice_now then bills the new period's usage so far: none (a line of 0 units, as always)
    [last] = await _billed_once(worker, setup, end)
    assert (last["billing_reason"], last["total"], last["period_start"]) == ("subscription_update", 0, end)
    types = await rows(worker, setup.tenant, "SELECT type FROM events WHERE object_type = 'subscription' ORDER BY id")
    assert [row["type"] for row in types][-2:] == ["subscription.updated", "subscription.canceled"]


async def test_a_cancellation_at_the_period_end_that_has_passed_is_refused_as_already_canceled(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "dueended")
    subscription, end = await _metered_period_ended(client, setup, worker)
    await execute(worker, setup.tenant, "UPDATE subscriptions SET cancel_at_period_end = true")

    refused = await client.post(
        f"/v1/subscriptions/{subscription}/cancel", json={"invoice_now": True}, headers=setup.tenant.headers
    )

    assert refused.status_code == 409, refused.text  # the boundary ended it: a canceled one cannot cancel
    assert await rows(worker, setup.tenant, INVOICES) == []  # a refusal writes nothing, the boundary's work too
    await BillingRun(worker.database, worker.accounts).run()  # which the run then does, once
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()
    assert shown["status"] == "canceled"
    assert await _billed_once(worker, setup, end) == []


async def test_a_change_after_the_period_end_bills_the_ended_period_then_prorates_the_new_one(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "duechange")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    subscription = await _subscribed(client, setup, seats, quantity=2)
    end = await _period_ended(worker, setup, subscription)
    url = f"/v1/subscriptions/{subscription}"

    previewed = await client.post(f"{url}/preview", json={"quantity": 5}, headers=setup.tenant.headers)
    assert previewed.status_code == 200, previewed.text
    assert len(await rows(worker, setup.tenant, INVOICES)) == 1  # the preview wrote nothing
    changed = await client.patch(url, json={"quantity": 5}, headers=setup.tenant.headers)

    assert changed.status_code == 200, changed.text
    assert changed.json()["current_period_start"] == end.isoformat().replace("+00:00", "Z")
    first, cycle = await rows(worker, setup.tenant, INVOICES)
    assert first["billing_reason"] == "subscription_create"
    assert (cycle["billing_reason"], cycle["total"], cycle["period_start"]) == ("subscription_cycle", 2000, end)
    items = await rows(worker, setup.tenant, "SELECT amount, period_start FROM invoice_items ORDER BY id")
    credit, charge = (item["amount"] for item in items)
    # Against the new period, begun 20 seconds ago: almost the whole month of 2 seats credited, of 5 charged.
    assert -2000 <= credit <= -1998
    assert 4995 <= charge <= 5000
    assert all(item["period_start"] >= end for item in items)
    assert [line["amount"] for line in previewed.json()["lines"]] == [credit, charge]
    await BillingRun(worker.database, worker.accounts).run()
    assert len(await rows(worker, setup.tenant, INVOICES)) == 2  # nothing more: the new period is not over


async def test_trial_usage_is_free_on_invoice_now_when_paused_during_the_trial(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "duetrial")
    plan = await another_plan(client, setup, pricing_model="metered", amount=PER_UNIT, usage_aggregation="sum")
    subscription = await _subscribed(client, setup, plan, trial_period_days=14)
    await _used(client, worker, setup, subscription, USED)
    url = f"/v1/subscriptions/{subscription}"
    assert (await client.post(f"{url}/pause", json={}, headers=setup.tenant.headers)).status_code == 200

    canceled = await client.post(f"{url}/cancel", json={"invoice_now": True}, headers=setup.tenant.headers)

    assert canceled.status_code == 200, canceled.text
    assert await rows(worker, setup.tenant, INVOICES) == []


async def test_a_line_quantity_over_a_bigint_is_refused_on_invoice_now(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _used_beyond_a_line(client, admin_headers, worker, "duebig")

    refused = await client.post(
        f"/v1/subscriptions/{subscription}/cancel", json={"invoice_now": True}, headers=setup.tenant.headers
    )

    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["invoice_now"]
    assert await rows(worker, setup.tenant, INVOICES) == []
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()
    assert shown["status"] == "active"


async def test_a_period_the_run_refuses_blocks_changes_but_not_a_cancellation_now(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _used_beyond_a_line(client, admin_headers, worker, "duestuck")
    await _period_ended(worker, setup, subscription)
    path = f"/v1/subscriptions/{subscription}"

    changed = await client.patch(path, json={"quantity": 2}, headers=setup.tenant.headers)
    paused = await client.post(f"{path}/pause", json={}, headers=setup.tenant.headers)
    assert (changed.status_code, paused.status_code) == (409, 409), (changed.text, paused.text)
    # The tenant's way out (billing-runs.md): ended now, the refused period is never billed.
    canceled = await client.post(f"{path}/cancel", json={}, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    await BillingRun(worker.database, worker.accounts).run()
    assert await rows(worker, setup.tenant, INVOICES) == []
