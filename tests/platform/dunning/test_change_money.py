"""Changes that must not lose or double money: a quantity no invoice can hold, a metered plan left
mid-period, a resume after a pause that spanned a boundary, a subscription billplane billed
mirrored to a provider that bills its own, usage stamped a little ahead of the clock."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar

from billplane.invoices.lines import MAX_AMOUNT
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    another_plan,
    database_now,
    execute,
    period_ends,
    sandbox_customer,
    subscribe,
)
from tests.platform.invoices.helpers import connect_sandbox, customer, rows

INVOICES = "SELECT id, billing_reason, total, period_start, period_end FROM invoices ORDER BY id"


async def test_a_quantity_no_invoice_can_hold_is_refused_on_change(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "chbig")
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=MAX_AMOUNT // 1000)
    body = {"customer_id": setup.customer, "plan_id": seats, "quantity": 2}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    url = f"/v1/subscriptions/{created.json()['id']}"

    for proration in ("create_prorations", "at_period_end"):
        refused = await client.patch(url, json={"quantity": 1001, "proration": proration}, headers=setup.tenant.headers)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["quantity"]
    shown = (await client.get(url, headers=setup.tenant.headers)).json()
    assert (shown["quantity"], shown["pending_quantity"]) == (2, None)
    assert await rows(worker, setup.tenant, "SELECT id FROM invoice_items") == []


async def test_leaving_a_metered_plan_is_made_at_the_period_end(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "chmeter")
    metered = await another_plan(client, setup, pricing_model="metered", amount=25, usage_aggregation="sum")
    body = {"customer_id": setup.customer, "plan_id": metered}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    url = f"/v1/subscriptions/{created.json()['id']}"

    previewed = await client.post(f"{url}/preview", json={"plan_id": setup.plan}, headers=setup.tenant.headers)
    assert previewed.status_code == 422, previewed.text  # the preview says what the change would
    for proration in ("create_prorations", "none"):
        refused = await client.patch(
            url, json={"plan_id": setup.plan, "proration": proration}, headers=setup.tenant.headers
        )
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["proration"]
    later = await client.patch(
        url, json={"plan_id": setup.plan, "proration": "at_period_end"}, headers=setup.tenant.headers
    )
    assert later.status_code == 200, later.text
    assert (later.json()["plan_id"], later.json()["pending_plan_id"]) == (metered, setup.plan)


async def test_a_resume_after_a_pause_that_spanned_a_boundary_bills_the_rest_of_the_period(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "chresume")
    subscription = await subscribe(client, setup, trial_days=0)
    url = f"/v1/subscriptions/{subscription}"
    assert (await client.post(f"{url}/pause", json={}, headers=setup.tenant.headers)).status_code == 200
    assert (await client.post(f"{url}/resume", headers=setup.tenant.headers)).status_code == 200
    assert len(await rows(worker, setup.tenant, INVOICES)) == 1  # resumed in the period it paid: nothing more
    assert (await client.post(f"{url}/pause", json={}, headers=setup.tenant.headers)).status_code == 200
    await execute(worker, setup.tenant, "UPDATE subscriptions SET paused_at = now() - interval '40 days'")
    await period_ends(worker, setup, subscription)  # the boundary passes while paused: nothing in advance
    assert len(await rows(worker, setup.tenant, INVOICES)) == 1

    resumed = await client.post(f"{url}/resume", headers=setup.tenant.headers)

    assert resumed.status_code == 200, resumed.text
    _, rest = await rows(worker, setup.tenant, INVOICES)
    assert rest["billing_reason"] == "subscription_update"
    assert PRICE - 2 <= rest["total"] <= PRICE  # almost the whole month is left (it began a minute ago)
    assert rest["period_end"].isoformat().replace("+00:00", "Z") == resumed.json()["current_period_end"]
    [line] = await rows(worker, setup.tenant, "SELECT description, proration FROM invoice_lines WHERE invoice_id = :id",
                        id=rest["id"])  # fmt: skip
    assert line["description"].startswith("Remaining time on")
    assert line["proration"]


async def test_a_subscription_billed_here_is_not_mirrored_to_a_provider_that_bills_its_own(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "chsync")
    ada = await customer(client, tenant)
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Pro", "pricing_model": "flat", "amount": PRICE,
            "currency": "USD", "billing_interval": "month"}  # fmt: skip
    plan = (await client.post("/v1/plans", json=body, headers=tenant.headers)).json()
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": ada, "plan_id": plan["id"]}, headers=tenant.headers
    )
    assert len(await rows(worker, tenant, INVOICES)) == 1  # no account yet: billplane bills it
    await connect_sandbox(client, tenant)
    host = PluginHost(["sandbox"])  # now a provider that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host

    refused = await client.post(f"/v1/subscriptions/{created.json()['id']}/sync", headers=tenant.headers)

    assert refused.status_code == 409, refused.text
    assert await rows(worker, tenant, "SELECT id FROM outbox WHERE kind = 'subscription.create'") == []


async def test_a_metered_subscription_with_usage_here_is_not_mirrored_to_a_provider_that_bills_its_own(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    # No invoice yet (a metered plan is invoiced at its period's end), but usage billplane holds:
    # mirrored, the provider would bill the subscription from then on and that usage never.
    tenant = await create_tenant(client, admin_headers, "chsyncm")
    ada = await customer(client, tenant)
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Calls", "pricing_model": "metered", "amount": 5,
            "usage_aggregation": "sum", "currency": "USD", "billing_interval": "month"}  # fmt: skip
    plan = (await client.post("/v1/plans", json=body, headers=tenant.headers)).json()
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": ada, "plan_id": plan["id"]}, headers=tenant.headers
    )
    subscription = created.json()["id"]
    record = {"subscription_id": subscription, "quantity": 3, "client_event_id": "u1",
              "timestamp": (await database_now(worker)).isoformat()}  # fmt: skip
    used = await client.post("/v1/usage-records", json={"records": [record]}, headers=tenant.headers)
    assert used.json()["accepted"] == 1, used.text
    assert await rows(worker, tenant, INVOICES) == []
    await connect_sandbox(client, tenant)
    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host

    refused = await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)

    assert refused.status_code == 409, refused.text
    assert "billplane bills this subscription" in refused.json()["detail"]
    assert await rows(worker, tenant, "SELECT id FROM outbox WHERE kind = 'subscription.create'") == []


async def test_invoice_now_bills_usage_stamped_a_little_ahead(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "chskew")
    metered = await another_plan(client, setup, pricing_model="metered", amount=5, usage_aggregation="sum")
    body = {"customer_id": setup.customer, "plan_id": metered}
    subscription = (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).json()["id"]
    ahead = (await database_now(worker) + timedelta(minutes=2)).isoformat()
    record = {"subscription_id": subscription, "quantity": 10, "timestamp": ahead, "client_event_id": "ahead"}
    used = await client.post("/v1/usage-records", json={"records": [record]}, headers=setup.tenant.headers)
    assert used.json()["accepted"] == 1, used.text

    canceled = await client.post(
        f"/v1/subscriptions/{subscription}/cancel", json={"invoice_now": True}, headers=setup.tenant.headers
    )

    assert canceled.status_code == 200, canceled.text
    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert invoice["total"] == 50
