"""One-off charges and credits added by hand (``POST /v1/invoice-items``): the customer's next
invoice in their currency takes them, or the named subscription's; a pending one can be deleted."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar
from sqlalchemy import text

from billplane.api.problems import InvalidFieldError
from billplane.billing.items_schemas import InvoiceItemCreate
from billplane.billing.items_service import ItemService
from billplane.invoices.lines import MAX_AMOUNT
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from tests.platform.dunning.helpers import PRICE, Client, Setup, period_ends, sandbox_customer, subscribe, types
from tests.platform.invoices.helpers import customer, rows

INVOICES = "SELECT id, total FROM invoices WHERE subscription_id = :id ORDER BY id"
ITEMS = "SELECT id, invoice_id, amount FROM invoice_items ORDER BY id"


async def _item(client: Client, setup: Setup, amount: object, **fields: Any) -> Any:
    body = {"customer_id": setup.customer, "amount": amount, "currency": "usd", "description": "One-off"} | fields
    return await client.post("/v1/invoice-items", json=body, headers=setup.tenant.headers)


async def test_the_customers_next_invoice_takes_a_charge_and_a_credit(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemnext")
    fee = await _item(client, setup, 500, description="Setup fee")
    goodwill = await _item(client, setup, -200, description="Sorry for the outage")
    assert (fee.status_code, goodwill.status_code) == (201, 201), goodwill.text
    shown = fee.json()
    assert (shown["subscription_id"], shown["invoice_id"], shown["currency"], shown["unit_amount"]) == (
        None, None, "USD", 500,
    )  # fmt: skip

    subscription = await subscribe(client, setup, trial_days=0)

    [invoice] = await rows(worker, setup.tenant, INVOICES, id=subscription)
    assert invoice["total"] == PRICE + 500 - 200
    lines = await rows(worker, setup.tenant, "SELECT description, amount FROM invoice_lines ORDER BY id")
    assert [(line["description"], line["amount"]) for line in lines][1:] == [
        ("Setup fee", 500), ("Sorry for the outage", -200),
    ]  # fmt: skip
    assert [row["invoice_id"] for row in await rows(worker, setup.tenant, ITEMS)] == [invoice["id"]] * 2
    assert await types(worker, setup.tenant, "invoice_item") == ["invoice_item.created"] * 2


async def test_an_item_for_a_subscription_waits_for_that_subscriptions_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemsub")
    first, second = await subscribe(client, setup), await subscribe(client, setup)  # both on a trial
    assert (await _item(client, setup, 700, subscription_id=second)).status_code == 201

    await period_ends(worker, setup, first)
    [invoice] = await rows(worker, setup.tenant, INVOICES, id=first)
    assert invoice["total"] == PRICE  # not this one's

    await period_ends(worker, setup, second)
    [invoice] = await rows(worker, setup.tenant, INVOICES, id=second)
    assert invoice["total"] == PRICE + 700


async def test_refused_items_write_nothing(
    client: Client, admin_headers: dict[str, str], app: Litestar, worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itembad")
    live = await subscribe(client, setup)
    ended = await subscribe(client, setup)
    canceled = await client.post(f"/v1/subscriptions/{ended}/cancel", json={}, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text
    someone = await customer(client, setup.tenant)
    body = {"customer_id": someone, "plan_id": setup.plan, "trial_period_days": 30}
    theirs = (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).json()["id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": 0}, "amount"),
        ({"amount": MAX_AMOUNT + 1}, "amount"),
        ({"amount": 5.5}, "amount"),
        ({"amount": "500"}, "amount"),
        ({"customer_id": setup.customer + 1000}, "customer_id"),
        ({"currency": "eur"}, "currency"),  # the customer is billed in USD
        ({"currency": "ZZZ"}, "currency"),
        ({"subscription_id": theirs}, "subscription_id"),  # another customer's
        ({"subscription_id": 999_999}, "subscription_id"),
        ({"subscription_id": ended}, "subscription_id"),
        ({"subscription_id": live, "currency": "EUR"}, "currency"),
        ({"description": ""}, "description"),
    ]
    for fields, field in cases:
        amount = fields.pop("amount", 100)
        refused = await _item(client, setup, amount, **fields)
        assert refused.status_code == 422, (fields, refused.text)
        assert [error["field"] for error in refused.json()["errors"]] == [field], refused.text
    host = PluginHost(["sandbox"])  # a sandbox that bills its subscriptions itself, as Stripe and PayPal do
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    app.state.runtime.plugins = host
    refused = await _item(client, setup, 100, subscription_id=live)
    assert [error["field"] for error in refused.json()["errors"]] == ["subscription_id"], refused.text

    assert await rows(worker, setup.tenant, ITEMS) == []
    assert await types(worker, setup.tenant, "invoice_item") == []


async def test_a_pending_item_can_be_deleted_and_a_taken_one_cannot(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemdel")
    other = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemdel")
    kept = (await _item(client, setup, 300)).json()["id"]
    dropped = (await _item(client, setup, 400)).json()["id"]
    url = "/v1/invoice-items/{}"

    assert (await client.delete(url.format(dropped), headers=other.tenant.headers)).status_code == 404
    assert (await client.delete(url.format(dropped), headers=setup.tenant.headers)).status_code == 204
    assert (await client.delete(url.format(dropped), headers=setup.tenant.headers)).status_code == 404
    assert await types(worker, setup.tenant, "invoice_item") == [
        "invoice_item.created", "invoice_item.created", "invoice_item.deleted",
    ]  # fmt: skip

    subscription = await subscribe(client, setup, trial_days=0)  # takes the one left
    [invoice] = await rows(worker, setup.tenant, INVOICES, id=subscription)
    assert invoice["total"] == PRICE + 300
    taken = await client.delete(url.format(kept), headers=setup.tenant.headers)
    assert taken.status_code == 409, taken.text
    assert [row["id"] for row in await rows(worker, setup.tenant, ITEMS)] == [kept]


async def test_a_charge_that_would_take_an_invoice_over_the_limit_waits(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemmax")
    assert (await _item(client, setup, MAX_AMOUNT, description="Huge")).status_code == 201
    small = (await _item(client, setup, 300, description="Small")).json()["id"]

    first = await subscribe(client, setup, trial_days=0)  # room for the small one, not for the huge one

    [invoice] = await rows(worker, setup.tenant, INVOICES, id=first)
    assert invoice["total"] == PRICE + 300
    waiting = await rows(worker, setup.tenant, "SELECT id, amount FROM invoice_items WHERE invoice_id IS NULL")
    assert [row["amount"] for row in waiting] == [MAX_AMOUNT]
    assert small not in [row["id"] for row in waiting]

    second = await subscribe(client, setup)  # the run bills it, and moves it on, without the huge one
    await period_ends(worker, setup, second)
    [invoice] = await rows(worker, setup.tenant, INVOICES, id=second)
    assert invoice["total"] == PRICE
    assert len(await rows(worker, setup.tenant, "SELECT id FROM invoice_items WHERE invoice_id IS NULL")) == 1


async def test_an_item_for_a_subscription_being_canceled_waits_for_the_cancellation(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "itemrace")
    subscription = await subscribe(client, setup)
    body = InvoiceItemCreate(
        customer_id=setup.customer, amount=-300, currency="USD", description="Goodwill", subscription_id=subscription
    )
    schema = setup.tenant.schema
    async with worker.database.tenant_session(schema) as canceling:
        # A cancellation holds the subscription and has ended it, not yet committed.
        await canceling.execute(text("SELECT id FROM subscriptions WHERE id = :id FOR UPDATE"), {"id": subscription})
        await canceling.execute(
            text("UPDATE subscriptions SET status = 'canceled', ended_at = now() WHERE id = :id"), {"id": subscription}
        )

        async def add() -> None:
            async with worker.database.tenant_session(schema) as session:
                writer = OutboxWriter(
                    session, setup.tenant.id, schema, worker.jobs, worker.accounts, worker.default_accounts
                )
                await ItemService(session, SyncService(writer, worker.plugins)).create(body)

        adding = asyncio.create_task(add())
        await asyncio.sleep(0.3)  # it waits for the cancellation
        assert not adding.done()
        await canceling.commit()
        with pytest.raises(InvalidFieldError) as refused:
            await adding
    assert [error["field"] for error in refused.value.errors] == ["subscription_id"]
    assert await rows(worker, setup.tenant, ITEMS) == []
