"""The billing run: each period billed exactly once, catching up after downtime, safe with two
runs at once; trials, scheduled cancellations, pending changes, metered usage; a failing tenant
does not stop the others."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.db.mixins import MAX_ID
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert

Client = AsyncTestClient[Litestar]
DAY = timedelta(days=1)


async def tenant_with_plans(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> tuple[CreatedTenant, dict[str, int]]:
    tenant = await create_tenant(client, admin_headers, "run")
    async with runtime.database.tenant_session(tenant.schema) as session:
        ids = {"customer": await insert(session, "customers", name="Ada")}
        product = await insert(session, "products", name="API")
        common = {"product_id": product, "currency": "USD"}
        ids["daily"] = await insert(
            session, "plans", name="Seats", pricing_model="per_seat", amount=100, billing_interval="day", **common
        )
        ids["bigger"] = await insert(
            session, "plans", name="Bigger", pricing_model="per_seat", amount=300, billing_interval="day", **common
        )
        ids["calls"] = await insert(
            session, "plans", name="Calls", pricing_model="metered", amount=2, billing_interval="day",
            usage_aggregation="sum", **common,
        )  # fmt: skip
    return tenant, ids


async def subscribe(runtime: Runtime, tenant: CreatedTenant, plan: int, customer: int, **values: Any) -> int:
    now = datetime.now(UTC)
    defaults = {
        "status": "active",
        "quantity": 2,
        "current_period_start": now - 3.5 * DAY,
        "current_period_end": now - 2.5 * DAY,
    }
    async with runtime.database.tenant_session(tenant.schema) as session:
        return await insert(session, "subscriptions", customer_id=customer, plan_id=plan, **(defaults | values))


async def rows(runtime: Runtime, tenant: CreatedTenant, query: str, **params: Any) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return [dict(row._mapping) for row in await session.execute(text(query), params)]  # noqa: SLF001


async def test_missed_periods_are_each_billed_once_and_a_second_run_bills_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    subscription = await subscribe(runtime, tenant, ids["daily"], ids["customer"])

    await BillingRun(runtime.database, runtime.accounts).run()
    await BillingRun(runtime.database, runtime.accounts).run()

    invoices = await rows(
        runtime, tenant, "SELECT id, status, total, period_start, billing_reason FROM invoices ORDER BY period_start"
    )
    assert len(invoices) == 3  # the three boundaries since the period ended 2.5 days ago
    assert {invoice["total"] for invoice in invoices} == {200}  # 2 seats x 1.00, in advance
    assert len({invoice["period_start"] for invoice in invoices}) == 3
    [state] = await rows(
        runtime, tenant, "SELECT status, current_period_end FROM subscriptions WHERE id = :id", id=subscription
    )
    assert state["status"] == "active"
    assert state["current_period_end"] > datetime.now(UTC)
    lines = await rows(runtime, tenant, "SELECT description, quantity, amount FROM invoice_lines")
    assert {(line["quantity"], line["amount"]) for line in lines} == {(2, 200)}
    created = await rows(runtime, tenant, "SELECT count(*) AS n FROM events WHERE type = 'invoice.created'")
    assert created == [{"n": 3}]


async def test_two_runs_at_once_bill_each_period_once(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    for _ in range(20):
        await subscribe(runtime, tenant, ids["daily"], ids["customer"])

    await asyncio.gather(
        BillingRun(runtime.database, runtime.accounts).run(),
        BillingRun(runtime.database, runtime.accounts).run(),
    )

    counts = await rows(runtime, tenant, "SELECT subscription_id, count(*) AS n FROM invoices GROUP BY subscription_id")
    assert len(counts) == 20
    assert {row["n"] for row in counts} == {3}


async def test_boundaries_end_trials_apply_pending_changes_and_scheduled_cancellations(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    trial = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], status="trialing", trial_start=now - 1.5 * DAY,
        trial_end=now - 0.5 * DAY, current_period_start=now - 1.5 * DAY, current_period_end=now - 0.5 * DAY,
    )  # fmt: skip
    changing = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], pending_plan_id=ids["bigger"], pending_quantity=5,
        current_period_start=now - 1.5 * DAY, current_period_end=now - 0.5 * DAY,
    )  # fmt: skip
    ending = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], cancel_at_period_end=True,
        current_period_start=now - 1.5 * DAY, current_period_end=now - 0.5 * DAY,
    )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()

    subs = {
        row["id"]: row
        for row in await rows(
            runtime, tenant, "SELECT id, status, plan_id, quantity, pending_plan_id FROM subscriptions"
        )
    }
    assert subs[trial]["status"] == "active"
    assert (subs[changing]["plan_id"], subs[changing]["quantity"], subs[changing]["pending_plan_id"]) == (
        ids["bigger"],
        5,
        None,
    )
    assert subs[ending]["status"] == "canceled"
    totals = {
        row["subscription_id"]: row["total"]
        for row in await rows(runtime, tenant, "SELECT subscription_id, total FROM invoices")
    }
    assert totals == {trial: 200, changing: 1500}  # the canceled one owes nothing more


async def test_metered_usage_is_billed_in_arrears(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    start, end = now - 1.5 * DAY, now - 0.5 * DAY
    metered = await subscribe(
        runtime, tenant, ids["calls"], ids["customer"], quantity=1, current_period_start=start, current_period_end=end
    )
    async with runtime.database.tenant_session(tenant.schema) as session:
        for n, (at, quantity) in enumerate([(start + DAY / 4, 100), (start + DAY / 2, 50), (end + DAY / 10, 999)]):
            await insert(
                session,
                "usage_records",
                subscription_id=metered,
                quantity=quantity,
                timestamp=at,
                client_event_id=f"e{n}",
            )

    await BillingRun(runtime.database, runtime.accounts).run()

    [invoice] = await rows(runtime, tenant, "SELECT id, total FROM invoices")
    assert invoice["total"] == 300  # 150 calls in the ended period x 0.02; the later 999 wait for theirs
    [line] = await rows(runtime, tenant, "SELECT quantity, period_start, period_end FROM invoice_lines")
    assert (line["quantity"], line["period_start"], line["period_end"]) == (150, start, end)


async def test_a_scheduled_cancellation_bills_the_last_periods_usage(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """The last period was invoiced when it began (keyed by its start); its usage, billed in
    arrears, comes on a final invoice at the cancellation. Before, that invoice took the same key,
    was left out as billed already, and the usage was never billed."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    start, end = now - 1.5 * DAY, now - 0.5 * DAY
    ending = await subscribe(
        runtime, tenant, ids["calls"], ids["customer"], quantity=1, current_period_start=start,
        current_period_end=end, cancel_at_period_end=True,
    )  # fmt: skip
    async with runtime.database.tenant_session(tenant.schema) as session:
        await insert(
            session,
            "invoices",
            customer_id=ids["customer"],
            subscription_id=ending,
            number="INV-1",
            status="paid",
            currency="USD",
            period_start=start,
            period_end=end,
            billing_reason="subscription_cycle",
        )  # fmt: skip  (the invoice the period's start issued)
        await insert(session, "invoice_counters", last_number=1)
        await insert(
            session, "usage_records", subscription_id=ending, quantity=150, timestamp=start + DAY / 4,
            client_event_id="last",
        )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()

    final = await rows(runtime, tenant, "SELECT id, total, period_start FROM invoices WHERE number <> 'INV-1'")
    assert [(invoice["total"], invoice["period_start"]) for invoice in final] == [(300, end)]  # 150 calls x 0.02
    [line] = await rows(runtime, tenant, "SELECT quantity, period_start, period_end FROM invoice_lines")
    assert (line["quantity"], line["period_start"], line["period_end"]) == (150, start, end)
    [state] = await rows(runtime, tenant, "SELECT status FROM subscriptions WHERE id = :id", id=ending)
    assert state["status"] == "canceled"


async def test_a_last_value_tie_goes_to_the_later_record_as_the_api_shows_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """Two readings at one timestamp: "last" bills the later record (by id), as
    GET /v1/subscriptions/{id}/usage reports it, whatever order the table keeps them in."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    start, end = now - 1.5 * DAY, now - 0.5 * DAY
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="Gauge")
        gauge = await insert(
            session, "plans", name="Gauge", pricing_model="metered", amount=2, billing_interval="day",
            usage_aggregation="last", product_id=product, currency="USD",
        )  # fmt: skip
    metered = await subscribe(
        runtime, tenant, gauge, ids["customer"], quantity=1, current_period_start=start, current_period_end=end
    )
    at = start + DAY / 2
    async with runtime.database.tenant_session(tenant.schema) as session:
        earlier = await insert(
            session, "usage_records", subscription_id=metered, quantity=9, timestamp=at, client_event_id="a"
        )
        await insert(session, "usage_records", subscription_id=metered, quantity=5, timestamp=at, client_event_id="b")
        # A new version of the earlier record, keyed after the later one: the table and its indexes
        # now keep it after the later one.
        await session.execute(text("UPDATE usage_records SET client_event_id = 'z' WHERE id = :id"), {"id": earlier})

    await BillingRun(runtime.database, runtime.accounts).run()

    [line] = await rows(runtime, tenant, "SELECT quantity FROM invoice_lines")
    assert line["quantity"] == 5


async def test_a_paused_subscription_is_billed_its_usage_but_not_its_price(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """Usage recorded before a pause (ingestion takes it while paused too) is billed when the
    period ends; the paused period's price is not. Before, a pause dropped the usage."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    start, end = now - 1.5 * DAY, now - 0.5 * DAY
    paused = await subscribe(
        runtime, tenant, ids["calls"], ids["customer"], quantity=1, status="paused", paused_at=start + DAY / 2,
        current_period_start=start, current_period_end=end,
    )  # fmt: skip
    async with runtime.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "usage_records", subscription_id=paused, quantity=40, timestamp=start + DAY / 4,
            client_event_id="before-the-pause",
        )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()

    [invoice] = await rows(runtime, tenant, "SELECT total, period_start FROM invoices")
    assert (invoice["total"], invoice["period_start"]) == (80, end)  # 40 calls x 0.02
    [state] = await rows(runtime, tenant, "SELECT status, current_period_start FROM subscriptions")
    assert (state["status"], state["current_period_start"]) == ("paused", end)


async def test_a_trials_usage_is_free_when_the_trial_ends_during_a_pause(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """A metered subscription with a 14-day trial, used on its first five days, then paused (a
    trialing one may pause): the trial ends while it is paused. Its usage is a trial's, free. Before,
    the run told a trial by the status, ``paused`` by then, and billed it; the same for one whose
    pause ended (``resume_at``) within the trial."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    now = datetime.now(UTC)
    trial_start, trial_end = now - 14.5 * DAY, now - 0.5 * DAY
    trial = {
        "quantity": 1, "status": "paused", "paused_at": trial_start + 5 * DAY, "trial_start": trial_start,
        "trial_end": trial_end, "current_period_start": trial_start, "current_period_end": trial_end,
    }  # fmt: skip
    paused = await subscribe(runtime, tenant, ids["calls"], ids["customer"], **trial)
    resumed = await subscribe(runtime, tenant, ids["calls"], ids["customer"], resume_at=trial_start + 10 * DAY, **trial)
    async with runtime.database.tenant_session(tenant.schema) as session:
        for subscription in (paused, resumed):
            for day in range(5):
                await insert(
                    session, "usage_records", subscription_id=subscription, quantity=100,
                    timestamp=trial_start + day * DAY + DAY / 2, client_event_id=f"day-{day + 1}",
                )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()

    assert await rows(runtime, tenant, "SELECT quantity, amount FROM invoice_lines") == []  # no usage billed
    # The one that resumed with the trial's end starts paying: its new period is metered, billed when it ends.
    invoices = await rows(runtime, tenant, "SELECT subscription_id, total, period_start FROM invoices")
    assert invoices == [{"subscription_id": resumed, "total": 0, "period_start": trial_end}]
    states = await rows(runtime, tenant, "SELECT id, status, current_period_start FROM subscriptions ORDER BY id")
    assert [(state["id"], state["status"], state["current_period_start"]) for state in states] == [
        (paused, "paused", trial_end),
        (resumed, "active", trial_end),
    ]


async def broken_and_fine(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, breaking: str
) -> tuple[CreatedTenant, CreatedTenant]:
    """Two tenants with a due subscription each; ``breaking`` (DDL) runs in the first's schema."""
    tenants = []
    for _ in range(2):
        tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
        await subscribe(runtime, tenant, ids["daily"], ids["customer"])
        tenants.append(tenant)
    async with runtime.database.tenant_session(tenants[0].schema) as session:
        await session.execute(text(breaking))
    return tenants[0], tenants[1]


async def test_a_failing_tenant_does_not_stop_the_others(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    no_lines = "ALTER TABLE invoice_lines ADD CONSTRAINT no_lines CHECK (false) NOT VALID"
    broken, fine = await broken_and_fine(client, admin_headers, runtime, no_lines)

    report = await BillingRun(runtime.database, runtime.accounts).run()

    assert broken.schema in report.failed_tenants
    assert len(await rows(runtime, fine, "SELECT id FROM invoices")) == 3
    assert await rows(runtime, broken, "SELECT id FROM invoices") == []  # its transaction rolled back whole


async def test_an_invoice_over_the_maximum_leaves_its_subscription_due_and_bills_the_rest(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """Usage sent in the wrong unit (2^62 calls at 2 cents) would make a line over the maximum, and
    over bigint: written, it failed the tenant's whole statement on every run. Now that
    subscription alone is left due, unbilled and unchanged; the tenant's others are billed."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    seats = await subscribe(runtime, tenant, ids["daily"], ids["customer"])
    calls = await subscribe(runtime, tenant, ids["calls"], ids["customer"])
    query = "SELECT status, current_period_start, current_period_end, updated_at FROM subscriptions WHERE id = :id"
    [before] = await rows(runtime, tenant, query, id=calls)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "usage_records", subscription_id=calls, quantity=2**62,
            timestamp=before["current_period_start"] + DAY / 2, client_event_id="wrong-unit",
        )  # fmt: skip

    first = await BillingRun(runtime.database, runtime.accounts).run()
    second = await BillingRun(runtime.database, runtime.accounts).run()

    assert tenant.schema not in first.failed_tenants  # (the run bills every test's tenants)
    assert (first.refused_subscriptions, second.refused_subscriptions) == (1, 1)
    billed = await rows(runtime, tenant, "SELECT subscription_id FROM invoices")
    assert [row["subscription_id"] for row in billed] == [seats] * 3  # its three boundaries, once each
    assert await rows(runtime, tenant, query, id=calls) == [before]
    events = "SELECT id FROM events WHERE object_type = 'subscription' AND object_id = :id"
    assert await rows(runtime, tenant, events, id=calls) == []


async def test_a_usage_quantity_over_bigint_leaves_its_subscription_due_and_bills_the_rest(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Free calls (a metered plan of 0) whose records, each within bigint, sum past it: the line
    comes to 0, but its quantity fits no invoice line. Before, its insert failed the tenant's whole
    statement, on every run, and none of the tenant's subscriptions was billed. Now that one alone
    is refused, named in the log as an amount over the maximum is."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="Free calls")
        free = await insert(
            session, "plans", name="Free calls", pricing_model="metered", amount=0, billing_interval="day",
            usage_aggregation="sum", product_id=product, currency="USD",
        )  # fmt: skip
    seats = await subscribe(runtime, tenant, ids["daily"], ids["customer"])
    calls = await subscribe(runtime, tenant, free, ids["customer"])
    query = "SELECT status, current_period_start, current_period_end, updated_at FROM subscriptions WHERE id = :id"
    [before] = await rows(runtime, tenant, query, id=calls)
    async with runtime.database.tenant_session(tenant.schema) as session:
        for n in range(2):
            await insert(
                session, "usage_records", subscription_id=calls, quantity=MAX_ID,
                timestamp=before["current_period_start"] + DAY / 4 * (n + 1), client_event_id=f"huge-{n}",
            )  # fmt: skip

    reports = []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="billplane.billing"):
            reports.append(await BillingRun(runtime.database, runtime.accounts).run())
        named = [record.getMessage() for record in caplog.records if tenant.schema in record.getMessage()]
        [message] = named  # once per run, naming the tenant and the subscription
        assert message.startswith(f"billing: subscription {calls} of {tenant.schema} left due and unbilled: ")
        assert f"of quantity {2 * MAX_ID}, " in message
        assert f"more than the {MAX_ID} an invoice line may hold" in message

    for report in reports:
        assert tenant.schema not in report.failed_tenants  # (the run bills every test's tenants)
        assert report.refused_subscriptions >= 1
    billed = await rows(runtime, tenant, "SELECT subscription_id FROM invoices")
    assert [row["subscription_id"] for row in billed] == [seats] * 3  # its three boundaries, once each
    assert await rows(runtime, tenant, query, id=calls) == [before]
    events = "SELECT id FROM events WHERE object_type = 'subscription' AND object_id = :id"
    assert await rows(runtime, tenant, events, id=calls) == []
    # Left due, it would be refused by the runs of later tests too (they bill every tenant).
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET status = 'canceled' WHERE id = :id"), {"id": calls})


async def test_a_tenant_whose_due_scan_fails_does_not_hide_the_others_in_its_batch(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    # The due scan reads customers.test_clock_id: this schema now refuses the batch's read.
    renamed = "ALTER TABLE customers RENAME COLUMN test_clock_id TO clock"
    broken, fine = await broken_and_fine(client, admin_headers, runtime, renamed)

    report = await BillingRun(runtime.database, runtime.accounts).run()

    assert report.failed_tenants.count(broken.schema) == 1
    assert fine.schema not in report.failed_tenants
    assert len(await rows(runtime, fine, "SELECT id FROM invoices")) == 3  # same batch, billed all the same
    assert await rows(runtime, broken, "SELECT id FROM invoices") == []


async def test_prorations_of_a_change_go_on_the_next_invoice_and_a_large_credit_is_taken_in_part(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": ids["customer"], "plan_id": ids["daily"], "quantity": 2},
        headers=tenant.headers,
    )  # fmt: skip
    url = f"/v1/subscriptions/{created.json()['id']}"
    upgraded = await client.patch(url, json={"quantity": 4}, headers=tenant.headers)
    assert upgraded.status_code == 200, upgraded.text
    items = await rows(runtime, tenant, "SELECT amount, proration, invoice_id FROM invoice_items ORDER BY id")
    assert [item["amount"] < 0 for item in items] == [True, False]  # credit for 2 seats, charge for 4
    net = sum(item["amount"] for item in items)
    assert 195 <= net <= 200  # 2 more seats for (almost) the whole day

    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text(
                "UPDATE subscriptions SET current_period_end = now() - interval '1 second',"
                " current_period_start = now() - interval '1 day 1 second' WHERE id = :id"
            ),
            {"id": created.json()["id"]},
        )
    await BillingRun(runtime.database, runtime.accounts).run()

    [invoice] = await rows(
        runtime, tenant, "SELECT id, total FROM invoices WHERE billing_reason = 'subscription_cycle'"
    )
    assert invoice["total"] == 400 + net  # the new day for 4 seats, and the prorations
    assert {item["invoice_id"] for item in await rows(runtime, tenant, "SELECT invoice_id FROM invoice_items")} == {
        invoice["id"]
    }
    lines = await rows(
        runtime, tenant, "SELECT amount, proration FROM invoice_lines WHERE invoice_id = :id", id=invoice["id"]
    )
    assert sorted(line["amount"] for line in lines) == sorted([400, *(item["amount"] for item in items)])

    # From 4 seats to 1 at the start of a day: the credit (about 4.00) is more than the next day (1.00 + 0.25
    # charged): the invoice takes the part of it that brings it to zero, and the rest waits.
    downgraded = await client.patch(url, json={"quantity": 1}, headers=tenant.headers)
    assert downgraded.status_code == 200
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text(
                "UPDATE subscriptions SET current_period_end = now() - interval '1 second',"
                " current_period_start = now() - interval '1 day 1 second' WHERE id = :id"
            ),
            {"id": created.json()["id"]},
        )
    changed = await rows(
        runtime, tenant, "SELECT amount FROM invoice_items WHERE invoice_id IS NULL ORDER BY amount"
    )  # the credit, then the charge
    await BillingRun(runtime.database, runtime.accounts).run()
    [rest] = await rows(runtime, tenant, "SELECT amount, quantity FROM invoice_items WHERE invoice_id IS NULL")
    [latest] = await rows(runtime, tenant, "SELECT id, total FROM invoices ORDER BY id DESC LIMIT 1")
    assert latest["total"] == 0  # paid at once: nothing left to charge
    taken = await rows(
        runtime, tenant, "SELECT amount FROM invoice_items WHERE invoice_id = :id ORDER BY amount", id=latest["id"]
    )
    credit, charge = (item["amount"] for item in changed)
    assert [item["amount"] for item in taken] == [-(100 + charge), charge]  # the day at 1 seat, and the charge
    assert rest["amount"] == credit + 100 + charge < 0  # nothing lost: the part taken and the rest make the credit
    assert rest["quantity"] == 1


async def test_subscriptions_a_provider_bills_itself_are_left_to_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    at_stripe = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], provider="stripe", provider_subscription_id="sub_1"
    )
    ours = await subscribe(runtime, tenant, ids["daily"], ids["customer"], provider="sandbox")

    await BillingRun(runtime.database, runtime.accounts, provider_billed=frozenset({"stripe"})).run()

    billed = {row["subscription_id"] for row in await rows(runtime, tenant, "SELECT subscription_id FROM invoices")}
    assert billed == {ours}  # Stripe invoices its own: billing it here too would charge twice
    [left] = await rows(runtime, tenant, "SELECT current_period_end FROM subscriptions WHERE id = :id", id=at_stripe)
    assert left["current_period_end"] < datetime.now(UTC)  # its periods move with Stripe's webhooks


async def test_a_period_billed_already_is_skipped_before_numbers_are_taken(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    # As after a run that committed its invoice but not the subscription's move (or a test clock's):
    # invoices are inserted already numbered, so the period billed must be left out before numbering.
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)
    ended = datetime.now(UTC) - 2.5 * DAY
    subscription = await subscribe(runtime, tenant, ids["daily"], ids["customer"], current_period_end=ended)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "invoices", customer_id=ids["customer"], subscription_id=subscription, number="INV-1",
            status="open", currency="USD", total=200, subtotal=200, period_start=ended, period_end=ended + DAY,
            billing_reason="subscription_cycle",
        )  # fmt: skip
        await session.execute(text("INSERT INTO invoice_counters (id, last_number) VALUES (1, 1)"))

    await BillingRun(runtime.database, runtime.accounts).run()

    invoices = await rows(runtime, tenant, "SELECT number, period_start FROM invoices ORDER BY period_start")
    assert [invoice["number"] for invoice in invoices] == ["INV-1", "INV-2", "INV-3"]
    assert invoices[0]["period_start"] == ended  # not billed a second time
    assert await rows(runtime, tenant, "SELECT last_number FROM invoice_counters") == [{"last_number": 3}]
    finalized = await rows(runtime, tenant, "SELECT count(*) AS n FROM events WHERE type = 'invoice.finalized'")
    assert finalized == [{"n": 2}]
