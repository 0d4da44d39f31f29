"""Canceling now with ``invoice_now``: the current period's metered usage so far and the pending
prorations go on a last invoice, charged like any other; without it nothing more is billed."""

from __future__ import annotations

import dataclasses
from typing import Any

from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar

from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, Setup, another_plan, sandbox_customer
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain

LAST = "SELECT id, status, total, billing_reason, period_start, period_end FROM invoices WHERE billing_reason = :reason"


async def _metered(client: Client, setup: Setup) -> dict[str, Any]:
    """A subscription to a metered plan (5 per unit, summed), with 7 + 5 units used so far."""
    product = (await client.post("/v1/products", json={"name": "Calls"}, headers=setup.tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Calls", "pricing_model": "metered", "amount": 5,
            "usage_aggregation": "sum", "currency": "USD", "billing_interval": "month"}  # fmt: skip
    plan = (await client.post("/v1/plans", json=body, headers=setup.tenant.headers)).json()
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": setup.customer, "plan_id": plan["id"]}, headers=setup.tenant.headers
    )
    subscription: dict[str, Any] = created.json()
    at = subscription["current_period_start"]
    records = [
        {"subscription_id": subscription["id"], "quantity": quantity, "timestamp": at, "client_event_id": f"e{n}"}
        for n, quantity in enumerate((7, 5))
    ]
    used = await client.post("/v1/usage-records", json={"records": records}, headers=setup.tenant.headers)
    assert used.json()["accepted"] == 2, used.text
    return subscription


async def _seats_changed(client: Client, setup: Setup, quantity: int, changed_to: int) -> int:
    """A subscription to a per-seat plan (10.00 a seat) at ``quantity``, changed at once to
    ``changed_to`` with prorations: a credit and a charge wait as pending items."""
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    body = {"customer_id": setup.customer, "plan_id": seats, "quantity": quantity}
    subscription: int = (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).json()["id"]
    changed = await client.patch(
        f"/v1/subscriptions/{subscription}", json={"quantity": changed_to}, headers=setup.tenant.headers
    )
    assert changed.status_code == 200, changed.text
    return subscription


async def _cancel(client: Client, setup: Setup, subscription: int, **body: Any) -> Any:
    return await client.post(f"/v1/subscriptions/{subscription}/cancel", json=body, headers=setup.tenant.headers)


async def test_the_usage_so_far_is_invoiced_and_charged(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "final")
    subscription = await _metered(client, setup)

    canceled = await _cancel(client, setup, subscription["id"], invoice_now=True)

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    [invoice] = await rows(worker, setup.tenant, LAST, reason="subscription_update")
    assert (invoice["status"], invoice["total"]) == ("open", 60)  # 12 units x 5
    assert invoice["period_end"].isoformat().replace("+00:00", "Z") == canceled.json()["canceled_at"]
    [line] = await rows(worker, setup.tenant, "SELECT quantity, amount FROM invoice_lines WHERE invoice_id = :id",
                        id=invoice["id"])  # fmt: skip
    assert (line["quantity"], line["amount"]) == (12, 60)
    await drain(worker)
    [invoice] = await rows(worker, setup.tenant, LAST, reason="subscription_update")
    assert invoice["status"] == "paid"


async def test_pending_prorations_go_on_the_last_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "finalpr")
    subscription = await _seats_changed(client, setup, 2, 5)
    items = await rows(worker, setup.tenant, "SELECT id, amount FROM invoice_items ORDER BY id")
    assert [item["amount"] < 0 for item in items] == [True, False]  # the credit for 2 seats, the charge for 5

    assert (await _cancel(client, setup, subscription, invoice_now=True)).status_code == 200

    [invoice] = await rows(worker, setup.tenant, LAST, reason="subscription_update")
    assert invoice["total"] == sum(item["amount"] for item in items) > 0
    taken = await rows(worker, setup.tenant, "SELECT invoice_id FROM invoice_items")
    assert {row["invoice_id"] for row in taken} == {invoice["id"]}
    lines = await rows(worker, setup.tenant, "SELECT amount, proration FROM invoice_lines WHERE invoice_id = :id",
                       id=invoice["id"])  # fmt: skip
    # Charges first, then the credits that fit, as on the billing run's invoices.
    credit, charge = (item["amount"] for item in items)
    assert [(line["amount"], line["proration"]) for line in lines] == [(charge, True), (credit, True)]


async def test_without_invoice_now_nothing_more_is_billed(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "finalno")
    subscription = await _metered(client, setup)

    assert (await _cancel(client, setup, subscription["id"])).status_code == 200

    assert await rows(worker, setup.tenant, "SELECT id FROM invoices") == []


async def test_refused_with_at_period_end_or_for_a_subscription_its_provider_bills(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "finalbad")
    subscription = await _metered(client, setup)

    refused = await _cancel(client, setup, subscription["id"], at_period_end=True, invoice_now=True)

    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["invoice_now"]
    shown = (await client.get(f"/v1/subscriptions/{subscription['id']}", headers=setup.tenant.headers)).json()
    assert (shown["status"], shown["cancel_at_period_end"]) == ("active", False)  # nothing changed

    host = PluginHost(["sandbox"])  # a sandbox that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host
    refused = await _cancel(client, setup, subscription["id"], invoice_now=True)
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["invoice_now"]
    shown = (await client.get(f"/v1/subscriptions/{subscription['id']}", headers=setup.tenant.headers)).json()
    assert shown["status"] == "active"
    assert await rows(worker, setup.tenant, "SELECT id FROM invoices") == []


async def test_a_credit_larger_than_the_last_invoice_is_taken_in_part(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "finalcr")
    subscription = await _seats_changed(client, setup, 5, 1)
    credit, charge = (item["amount"] for item in await rows(worker, setup.tenant, "SELECT amount FROM invoice_items"))
    assert -credit > charge > 0  # 5 seats back, 1 charged

    assert (await _cancel(client, setup, subscription, invoice_now=True)).status_code == 200

    [invoice] = await rows(worker, setup.tenant, LAST, reason="subscription_update")
    assert (invoice["total"], invoice["status"]) == (0, "paid")  # the charge, all paid by the credit
    lines = await rows(worker, setup.tenant, "SELECT amount FROM invoice_lines WHERE invoice_id = :id ORDER BY id",
                       id=invoice["id"])  # fmt: skip
    assert [line["amount"] for line in lines] == [charge, -charge]
    [rest] = await rows(worker, setup.tenant, "SELECT amount FROM invoice_items WHERE invoice_id IS NULL")
    assert rest["amount"] == credit + charge  # the rest of the credit stays pending (no credit is paid out)
