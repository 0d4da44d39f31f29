"""A billing run's events show each object exactly as the API shows it afterwards.

The run writes its invoices, lines and subscriptions with statements of its own and builds the
events' data from what it wrote, not by reading the rows back: this is what keeps the two the same
(fractional tier prices, pending prorations, an invoice of 0 paid at once, a canceled subscription).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from billplane.billing.invoicing import stored_unit
from billplane.billing.run import BillingRun
from billplane.money.decimals import decimal_text
from billplane.runtime import Runtime
from tests.platform.billing.test_billing_run import DAY, Client, rows, subscribe, tenant_with_plans
from tests.platform.billing_seed import insert, tiered_plan


def last_event(events: list[dict[str, Any]], type_: str, object_id: int) -> dict[str, Any]:
    [*_, event] = [event for event in events if event["type"] == type_ and event["object_id"] == object_id]
    return dict(event["data"])


async def test_the_runs_events_show_invoices_and_subscriptions_as_the_api_does(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    one_boundary = {"current_period_start": now - 1.5 * DAY, "current_period_end": now - 0.5 * DAY}
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="Calls")
        tiered = await tiered_plan(session, product, "Tiered", [(2, Decimal("0.125")), (None, Decimal(3))], 5)
        free = await insert(
            session, "plans", product_id=product, name="Free", pricing_model="per_seat", amount=0, currency="USD",
            billing_interval="day",
        )  # fmt: skip
    seats = await subscribe(runtime, tenant, ids["daily"], ids["customer"], **one_boundary)
    graduated = await subscribe(runtime, tenant, tiered, ids["customer"], quantity=5, **one_boundary)
    zero = await subscribe(runtime, tenant, free, ids["customer"], **one_boundary)
    ending = await subscribe(runtime, tenant, ids["daily"], ids["customer"], cancel_at_period_end=True, **one_boundary)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "invoice_items", customer_id=ids["customer"], subscription_id=seats, plan_id=ids["daily"],
            description="Remaining time on 3 x Seats", quantity=3, unit_amount=Decimal("33.333333333333"),
            amount=100, currency="USD", period_start=now - DAY, period_end=now, proration=True,
        )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()

    events = await rows(runtime, tenant, "SELECT type, object_id, data FROM events ORDER BY id")
    invoices = {row["subscription_id"]: row["id"] for row in await rows(runtime, tenant, "SELECT * FROM invoices")}
    assert set(invoices) == {seats, graduated, zero}  # the canceled one owes nothing more
    for subscription, invoice in invoices.items():
        shown = (await client.get(f"/v1/invoices/{invoice}", headers=tenant.headers)).json()
        final = "invoice.paid" if subscription == zero else "invoice.finalized"
        assert last_event(events, final, invoice) == shown
        created = last_event(events, "invoice.created", invoice)
        assert created == {
            "id": invoice, "customer_id": ids["customer"], "subscription_id": subscription, "status": "draft",
            "currency": "USD", "total": shown["total"], "period_start": shown["period_start"],
            "period_end": shown["period_end"], "billing_reason": "subscription_cycle",
        }  # fmt: skip
    paid_at_once = last_event(events, "invoice.finalized", invoices[zero])
    assert (paid_at_once["status"], paid_at_once["paid_at"]) == ("open", None)
    with_item = (await client.get(f"/v1/invoices/{invoices[seats]}", headers=tenant.headers)).json()
    assert [line["unit_amount_decimal"] for line in with_item["lines"]] == ["100", "33.333333333333"]
    tiers = (await client.get(f"/v1/invoices/{invoices[graduated]}", headers=tenant.headers)).json()["lines"]
    assert [(line["tier"], line["unit_amount_decimal"]) for line in tiers] == [(0, "0.125"), (1, "3")]
    for subscription in (seats, graduated, zero, ending):
        shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
        kind = "subscription.canceled" if subscription == ending else "subscription.updated"
        assert last_event(events, kind, subscription) == shown
    async with runtime.database.tenant_session(tenant.schema) as session:
        taken = await session.scalar(text("SELECT invoice_id FROM invoice_items"))
    assert taken == invoices[seats]


async def test_unit_prices_in_events_are_rounded_as_the_column_rounds_them(runtime: Runtime) -> None:
    values = ["0.1234567890125", "-0.1234567890125", "2.0000000000005", "1E-13", "-5E-13", "12.5", "3", "1E+20"]
    async with runtime.database.session() as session:
        for value in values:
            stored = await session.scalar(text("SELECT CAST(CAST(:v AS text) AS numeric(38, 12))"), {"v": value})
            assert decimal_text(stored_unit(Decimal(value))) == decimal_text(stored), value
