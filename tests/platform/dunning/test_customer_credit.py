"""A credit still pending when its subscription ends is the customer's, net of the charges still
pending with it: the customer's next invoice in its currency takes it, whichever subscription
issues it; the charges, and the credit that offsets them, stay behind."""

from __future__ import annotations

import dataclasses
from typing import Any

from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar
from sqlalchemy import text

from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    Setup,
    another_plan,
    execute,
    one,
    period_ends,
    sandbox_customer,
    subscribe,
)
from tests.platform.invoices.helpers import rows

ITEMS = "SELECT id, subscription_id, invoice_id, amount FROM invoice_items ORDER BY id"
PENDING = "SELECT subscription_id, amount FROM invoice_items WHERE invoice_id IS NULL ORDER BY id"
LINES = "SELECT amount FROM invoice_lines WHERE invoice_id = :id ORDER BY id"
FIRST = "SELECT id, total, status FROM invoices WHERE subscription_id = :id ORDER BY id"


async def _downgraded(client: Client, setup: Setup, runtime: Runtime, **cancel: Any) -> tuple[int, int, int]:
    """A subscription to 5 seats (10.00 each) cut to 1 at once, with prorations, then canceled with
    ``cancel``: its id, the credit for the 5 seats and the charge for 1 (as written by the change)."""
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    body = {"customer_id": setup.customer, "plan_id": seats, "quantity": 5}
    subscription: int = (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).json()["id"]
    url = f"/v1/subscriptions/{subscription}"
    changed = await client.patch(url, json={"quantity": 1}, headers=setup.tenant.headers)
    assert changed.status_code == 200, changed.text
    credit, charge = (row["amount"] for row in await rows(runtime, setup.tenant, ITEMS))
    canceled = await client.post(f"{url}/cancel", json=cancel, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text
    assert -credit > charge > 0
    return subscription, credit, charge


async def test_canceled_now_the_credit_goes_to_the_customers_next_first_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credcan")
    ended, credit, charge = await _downgraded(client, setup, worker)

    released = await rows(worker, setup.tenant, ITEMS)
    # The charge stays with the canceled subscription (billed only by invoice_now), with the part of
    # the credit that offsets it; the rest of the credit is the customer's.
    owed = [(ended, -charge), (ended, charge)]
    assert [(row["subscription_id"], row["amount"]) for row in released] == [*owed, (None, credit + charge)]

    subscription = await subscribe(client, setup, trial_days=0)

    [invoice] = await rows(worker, setup.tenant, FIRST, id=subscription)
    assert (invoice["total"], invoice["status"]) == (0, "paid")  # the credit pays the whole first period
    lines = await rows(worker, setup.tenant, LINES, id=invoice["id"])
    assert [line["amount"] for line in lines] == [PRICE, -PRICE]
    left = await rows(worker, setup.tenant, PENDING)
    assert [(row["subscription_id"], row["amount"]) for row in left] == [*owed, (None, credit + charge + PRICE)]


async def test_the_run_gives_a_credit_left_at_the_period_end_to_another_subscription(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credrun")
    ended, credit, charge = await _downgraded(client, setup, worker, at_period_end=True)
    other = await subscribe(client, setup)  # on a trial: the run bills its first period
    await period_ends(worker, setup, ended)

    [last] = await rows(worker, setup.tenant, FIRST + " OFFSET 1", id=ended)
    assert (last["total"], last["status"]) == (0, "paid")  # the charge, paid by part of the credit
    [rest] = await rows(
        worker, setup.tenant, "SELECT subscription_id, amount FROM invoice_items WHERE invoice_id IS NULL"
    )
    assert (rest["subscription_id"], rest["amount"]) == (None, credit + charge)

    await period_ends(worker, setup, other)

    [invoice] = await rows(worker, setup.tenant, FIRST, id=other)
    assert invoice["total"] == max(0, PRICE + credit + charge)
    lines = await rows(worker, setup.tenant, LINES, id=invoice["id"])
    assert [line["amount"] for line in lines] == [PRICE, invoice["total"] - PRICE]


async def test_a_credit_another_transaction_holds_is_not_taken_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credheld")
    _, credit, charge = await _downgraded(client, setup, worker)
    other = await subscribe(client, setup)
    async with worker.database.tenant_session(setup.tenant.schema) as holder:
        # Another invoice is taking the credit (a subscription being created, a second run).
        await holder.execute(text("SELECT id FROM invoice_items WHERE subscription_id IS NULL FOR UPDATE"))
        await period_ends(worker, setup, other)  # does not wait for it, and does not take it
        await holder.rollback()

    [invoice] = await rows(worker, setup.tenant, FIRST, id=other)
    assert invoice["total"] == PRICE
    held = await one(worker, setup.tenant, "SELECT amount, invoice_id FROM invoice_items WHERE subscription_id IS NULL")
    assert (held["amount"], held["invoice_id"]) == (credit + charge, None)  # still the customer's, for the next one


async def test_the_api_lists_what_waits_for_the_customers_next_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credapi")
    ended, credit, charge = await _downgraded(client, setup, worker)
    headers = setup.tenant.headers

    waiting = await client.get(f"/v1/invoice-items?customer_id={setup.customer}&pending=true", headers=headers)

    assert waiting.status_code == 200, waiting.text
    shown = [(item["subscription_id"], item["amount"], item["invoice_id"]) for item in waiting.json()["data"]]
    assert shown == [(ended, -charge, None), (ended, charge, None), (None, credit + charge, None)]
    [*_, released] = waiting.json()["data"]
    assert (released["currency"], released["proration"]) == ("USD", True)
    # What the charge left of the unused time of 5 seats at 10.00, as one amount.
    assert (released["quantity"], released["unit_amount"]) == (1, credit + charge)
    one_item = await client.get(f"/v1/invoice-items/{released['id']}", headers=headers)
    assert one_item.json() == released

    subscription = await subscribe(client, setup, trial_days=0)  # its first invoice takes part of the credit
    [invoice] = await rows(worker, setup.tenant, FIRST, id=subscription)
    taken = (await client.get("/v1/invoice-items?pending=false", headers=headers)).json()["data"]
    assert [(item["amount"], item["invoice_id"]) for item in taken] == [(-PRICE, invoice["id"])]
    of_ended = (await client.get(f"/v1/invoice-items?subscription_id={ended}", headers=headers)).json()["data"]
    assert [item["amount"] for item in of_ended] == [-charge, charge]

    other = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credapi")
    assert (await client.get(f"/v1/invoice-items/{released['id']}", headers=other.tenant.headers)).status_code == 404
    assert (await client.get("/v1/invoice-items", headers=other.tenant.headers)).json()["data"] == []
    refused = await client.get("/v1/invoice-items?pending=maybe", headers=headers)
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["pending"]


async def test_a_subscription_its_provider_bills_leaves_no_credit_here(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credprov")
    host = PluginHost(["sandbox"])  # a sandbox that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    body = {"customer_id": setup.customer, "plan_id": seats, "quantity": 5}
    subscription: int = (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).json()["id"]
    url = f"/v1/subscriptions/{subscription}"

    changed = await client.patch(url, json={"quantity": 1}, headers=setup.tenant.headers)

    assert changed.status_code == 200, changed.text
    assert await rows(worker, setup.tenant, ITEMS) == []  # the provider prorates on its own invoices
    # One written before such subscriptions stopped getting prorations here is not released either:
    # the provider gave that credit, not billplane.
    await execute(
        worker, setup.tenant,
        "INSERT INTO invoice_items (customer_id, subscription_id, description, quantity, unit_amount, amount, "
        "currency) VALUES (:customer, :id, 'Unused time', 1, -300, -300, 'USD')",
        customer=setup.customer, id=subscription,
    )  # fmt: skip
    assert (await client.post(f"{url}/cancel", json={}, headers=setup.tenant.headers)).status_code == 200
    [kept] = await rows(worker, setup.tenant, PENDING)
    assert kept["subscription_id"] == subscription


async def test_a_credit_on_a_subscription_that_ends_in_its_trial_goes_to_the_customer(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "credtrial")
    subscription = await subscribe(client, setup)  # on a trial: nothing invoiced yet
    body = {"customer_id": setup.customer, "subscription_id": subscription, "amount": -1000, "currency": "USD",
            "description": "Goodwill"}  # fmt: skip
    assert (await client.post("/v1/invoice-items", json=body, headers=setup.tenant.headers)).status_code == 201

    canceled = await client.post(f"/v1/subscriptions/{subscription}/cancel", json={}, headers=setup.tenant.headers)

    assert canceled.status_code == 200, canceled.text
    assert await rows(worker, setup.tenant, PENDING) == [{"subscription_id": None, "amount": -1000}]
