"""The first period is invoiced when the subscription is created, in advance, and charged through
the provider; the billing run then invoices from the first period's end, never the first period
again. Trials, metered plans and subscriptions a provider bills get no invoice at creation."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar

from billplane.billing.run import BillingRun
from billplane.invoices.lines import MAX_AMOUNT
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    another_plan,
    database_now,
    execute,
    sandbox_customer,
    subscribe,
    types,
)
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain

INVOICES = (
    "SELECT id, number, status, billing_reason, total, amount_paid, period_start, period_end, attempt_count, "
    "next_payment_attempt_at FROM invoices ORDER BY id"
)


async def test_the_first_period_is_invoiced_at_creation_and_charged_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "first")
    subscription = await subscribe(client, setup, trial_days=0)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()

    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert (invoice["number"], invoice["status"], invoice["billing_reason"]) == ("INV-1", "open", "subscription_create")
    assert invoice["total"] == PRICE
    assert [invoice["period_start"].isoformat(), invoice["period_end"].isoformat()] == [
        shown["current_period_start"].replace("Z", "+00:00"),
        shown["current_period_end"].replace("Z", "+00:00"),
    ]
    # The charge was queued with the invoice, in the create's transaction; the worker makes it.
    [charge] = await rows(worker, setup.tenant, "SELECT kind, status FROM outbox WHERE kind = 'payment.charge'")
    assert charge["status"] == "pending"
    await drain(worker)

    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", PRICE)
    [payment] = await rows(worker, setup.tenant, "SELECT invoice_id, amount, status FROM payments")
    assert (payment["invoice_id"], payment["amount"], payment["status"]) == (invoice["id"], PRICE, "succeeded")
    assert (await types(worker, setup.tenant, "invoice"))[:2] == ["invoice.created", "invoice.finalized"]
    assert "invoice.paid" in await types(worker, setup.tenant, "invoice")

    # A month later the run bills the second period, from the first one's end: the first is not billed again.
    first_end = invoice["period_end"]
    await execute(
        worker, setup.tenant, "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end",
        start=await database_now(worker) - timedelta(days=31), end=await database_now(worker) - timedelta(minutes=1),
    )  # fmt: skip
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)
    first, renewal = await rows(worker, setup.tenant, INVOICES)
    assert (renewal["number"], renewal["billing_reason"], renewal["status"]) == ("INV-2", "subscription_cycle", "paid")
    assert renewal["period_start"] != first["period_start"]
    assert first["period_end"] == first_end
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 2


async def test_a_declined_first_charge_is_dunned_and_the_subscription_goes_past_due(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, "firstno")
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)

    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    assert invoice["next_payment_attempt_at"] is not None  # the tenant's schedule: 3 days on
    [row] = await rows(worker, setup.tenant, "SELECT status FROM subscriptions WHERE id = :id", id=subscription)
    assert row["status"] == "past_due"


async def test_without_a_payment_method_the_first_invoice_waits_for_dunning(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firstpm")
    await execute(worker, setup.tenant, "UPDATE payment_methods SET is_default = false")
    await subscribe(client, setup, trial_days=0)

    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt_at"]) == ("open", 0, None)
    assert await rows(worker, setup.tenant, "SELECT id FROM payments") == []  # never attempted: dunning's to try


async def test_trials_metered_plans_and_free_plans(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firstnot")
    await subscribe(client, setup, trial_days=14)  # a trial: invoiced when it ends, by the run
    metered = await another_plan(client, setup, pricing_model="metered", amount=5, usage_aggregation="sum")
    body = {"customer_id": setup.customer, "plan_id": metered}
    assert (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).status_code == 201
    assert await rows(worker, setup.tenant, INVOICES) == []  # usage is billed in arrears, at the period end

    free = await another_plan(client, setup, pricing_model="flat", amount=0)
    body = {"customer_id": setup.customer, "plan_id": free}
    assert (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).status_code == 201
    [invoice] = await rows(worker, setup.tenant, INVOICES)  # as the run bills each period of a free plan
    assert (invoice["status"], invoice["total"]) == ("paid", 0)
    assert await rows(worker, setup.tenant, "SELECT id FROM outbox WHERE kind = 'payment.charge'") == []


async def test_a_subscription_its_provider_bills_is_not_invoiced_here(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firstprov")
    host = PluginHost(["sandbox"])  # a sandbox that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host

    await subscribe(client, setup, trial_days=0)

    assert await rows(worker, setup.tenant, INVOICES) == []


async def test_an_amount_no_invoice_may_hold_is_refused_and_nothing_is_written(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firstbig")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=MAX_AMOUNT // 1000)
    body = {"customer_id": setup.customer, "plan_id": seats, "quantity": 1001}
    refused = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)

    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["quantity"]
    assert await rows(worker, setup.tenant, "SELECT id FROM subscriptions") == []
    assert await rows(worker, setup.tenant, INVOICES) == []
    setup_events = "object_type NOT IN ('customer', 'provider_account', 'product', 'plan')"  # the setup's own
    assert await rows(worker, setup.tenant, f"SELECT id FROM events WHERE {setup_events}") == []
    allowed = await client.post("/v1/subscriptions", json=body | {"quantity": 1000}, headers=setup.tenant.headers)
    assert allowed.status_code == 201, allowed.text


async def test_an_idempotent_replay_of_the_create_invoices_nothing_more(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firstidem")
    headers = setup.tenant.headers | {"Idempotency-Key": "subscribe-ada-1"}
    body = {"customer_id": setup.customer, "plan_id": setup.plan, "trial_period_days": 0}
    first = await client.post("/v1/subscriptions", json=body, headers=headers)
    again = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert (first.status_code, again.status_code, again.json()["id"]) == (201, 201, first.json()["id"])
    await drain(worker)

    assert len(await rows(worker, setup.tenant, INVOICES)) == 1
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 1


async def test_a_tiered_plans_first_invoice_has_a_line_per_tier(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "firsttier")
    tiers = [{"up_to": 10, "unit_amount": 100}, {"up_to": None, "unit_amount_decimal": "50.5"}]
    tiered = await another_plan(client, setup, pricing_model="tiered", tiers=tiers)
    body = {"customer_id": setup.customer, "plan_id": tiered, "quantity": 13}
    assert (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).status_code == 201

    [invoice] = (await client.get("/v1/invoices", headers=setup.tenant.headers)).json()["data"]
    lines = [(line["tier"], line["quantity"], line["unit_amount_decimal"], line["amount"]) for line in invoice["lines"]]
    assert lines == [(0, 10, "100", 1000), (1, 3, "50.5", 152)]  # 151.5 rounded half-even at the line
    assert invoice["total"] == 1152
