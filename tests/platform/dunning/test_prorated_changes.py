"""A prorated change credits and charges shares of a period's price: only over a period the plans
bill, and its preview refuses what the change refuses."""

from __future__ import annotations

import dataclasses

from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar

from billplane.invoices.lines import MAX_AMOUNT
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, Setup, another_plan, sandbox_customer
from tests.platform.invoices.helpers import rows

ITEMS = "SELECT amount FROM invoice_items ORDER BY id"


async def _subscribed(client: Client, setup: Setup, plan: int, quantity: int = 1) -> str:
    body = {"customer_id": setup.customer, "plan_id": plan, "quantity": quantity}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    return f"/v1/subscriptions/{created.json()['id']}"


async def test_a_period_kept_from_another_interval_is_not_prorated(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prper")
    monthly = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    yearly = await another_plan(client, setup, pricing_model="per_seat", amount=12000, billing_interval="year")
    url = await _subscribed(client, setup, monthly)
    moved = await client.patch(url, json={"plan_id": yearly, "proration": "none"}, headers=setup.tenant.headers)
    assert moved.status_code == 200, moved.text  # the month goes on: the year starts when it ends

    for path, method in ((url, client.patch), (f"{url}/preview", client.post)):
        refused = await method(path, json={"quantity": 2}, headers=setup.tenant.headers)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["proration"]
    back = await client.patch(url, json={"plan_id": monthly}, headers=setup.tenant.headers)  # credits a year's share
    assert back.status_code == 422, back.text
    assert await rows(worker, setup.tenant, ITEMS) == []
    unprorated = await client.patch(url, json={"quantity": 2, "proration": "none"}, headers=setup.tenant.headers)
    assert unprorated.status_code == 200, unprorated.text
    assert (unprorated.json()["plan_id"], unprorated.json()["quantity"]) == (yearly, 2)


async def test_a_preview_refuses_what_the_change_refuses(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prcheck")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=MAX_AMOUNT // 1000)
    url = await _subscribed(client, setup, seats, quantity=2)

    for proration in ("create_prorations", "none", "at_period_end"):
        body = {"quantity": 1001, "proration": proration}
        refused = await client.post(f"{url}/preview", json=body, headers=setup.tenant.headers)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["quantity"]
    unchanged = await client.post(f"{url}/preview", json={"quantity": 2}, headers=setup.tenant.headers)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["lines"] == []  # as the PATCH, which writes nothing for no change

    host = PluginHost(["sandbox"])  # a sandbox that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host
    theirs = await client.post(f"{url}/preview", json={"quantity": 1}, headers=setup.tenant.headers)
    assert theirs.status_code == 409, theirs.text  # its prorations are on the provider's invoices


async def _items(runtime: Runtime, setup: Setup) -> list[tuple[int, int]]:
    """The pending items as (quantity, amount), in the order they were written."""
    found = await rows(runtime, setup.tenant, "SELECT quantity, amount FROM invoice_items ORDER BY id")
    return [(row["quantity"], row["amount"]) for row in found]


async def test_a_proration_after_a_change_without_one_credits_what_the_period_was_billed_at(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prbasis")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    url = await _subscribed(client, setup, seats, quantity=1)  # one seat invoiced for the period
    unbilled = await client.patch(url, json={"quantity": 10, "proration": "none"}, headers=setup.tenant.headers)
    assert unbilled.status_code == 200, unbilled.text
    previewed = await client.post(f"{url}/preview", json={"quantity": 1}, headers=setup.tenant.headers)
    assert [line["quantity"] for line in previewed.json()["lines"]] == [1, 1]  # the seat paid for, not 10

    back = await client.patch(url, json={"quantity": 1}, headers=setup.tenant.headers)

    assert back.status_code == 200, back.text
    [(_, credit), (_, charge)] = await _items(worker, setup)
    assert credit + charge == 0  # one seat paid, one seat used: nothing owed either way
    again = await client.patch(url, json={"quantity": 3}, headers=setup.tenant.headers)  # billed at 1 seat now
    assert again.status_code == 200, again.text
    assert [quantity for quantity, _ in await _items(worker, setup)] == [1, 1, 1, 3]


async def test_seats_paid_for_and_given_up_without_proration_are_credited_by_a_later_one(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prpaid")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    url = await _subscribed(client, setup, seats, quantity=10)  # ten seats invoiced for the period
    for quantity in (1, 2):  # the first change without proration is what counts: ten were paid
        unbilled = await client.patch(
            url, json={"quantity": quantity, "proration": "none"}, headers=setup.tenant.headers
        )
        assert unbilled.status_code == 200, unbilled.text

    up = await client.patch(url, json={"quantity": 5}, headers=setup.tenant.headers)

    assert up.status_code == 200, up.text
    [(paid, credit), (used, charge)] = await _items(worker, setup)
    assert (paid, used) == (10, 5)
    assert credit + charge < 0  # five of the ten seats paid for are not used: a credit, not a charge


async def test_a_change_applies_what_its_preview_showed_when_sent_its_proration_date(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prdate")
    dear = await another_plan(client, setup, pricing_model="per_seat", amount=MAX_AMOUNT // 1000)  # moves each ms
    url = await _subscribed(client, setup, dear)
    previewed = (await client.post(f"{url}/preview", json={"quantity": 2}, headers=setup.tenant.headers)).json()
    at = previewed["effective_at"]

    changed = await client.patch(url, json={"quantity": 2, "proration_date": at}, headers=setup.tenant.headers)

    assert changed.status_code == 200, changed.text
    assert [amount for _, amount in await _items(worker, setup)] == [line["amount"] for line in previewed["lines"]]
    starts = await rows(worker, setup.tenant, "SELECT period_start FROM invoice_items ORDER BY id")
    assert {row["period_start"].isoformat().replace("+00:00", "Z") for row in starts} == {at}


async def test_a_proration_date_outside_what_can_be_prorated_is_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "prdatebad")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    url = await _subscribed(client, setup, seats)
    shown = (await client.get(url, headers=setup.tenant.headers)).json()
    before_change = (await client.post(f"{url}/preview", json={"quantity": 2}, headers=setup.tenant.headers)).json()
    assert (await client.patch(url, json={"quantity": 3}, headers=setup.tenant.headers)).status_code == 200
    items = await _items(worker, setup)

    cases = [
        {"quantity": 2, "proration_date": "2999-01-01T00:00:00Z"},  # not yet
        {"quantity": 2, "proration_date": "1999-01-01T00:00:00Z"},  # before the period
        {"quantity": 2, "proration_date": before_change["effective_at"]},  # before its last change
        {"quantity": 2, "proration_date": shown["current_period_start"], "proration": "none"},
        {"quantity": 2, "proration_date": "2030-01-01T00:00:00"},  # no time zone
    ]
    for body in cases:
        for path, method in ((url, client.patch), (f"{url}/preview", client.post)):
            refused = await method(path, json=body, headers=setup.tenant.headers)
            assert refused.status_code == 422, (body, refused.text)
            assert [error["field"] for error in refused.json()["errors"]] == ["proration_date"], refused.text
    assert await _items(worker, setup) == items
    assert (await client.get(url, headers=setup.tenant.headers)).json()["quantity"] == 3
