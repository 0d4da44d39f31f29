"""A switch from a plan that does not meter to a metered one, made now in the middle of a period:
the time before the switch was the old plan's (paid in advance, its unused rest credited from the
switch), so the period's usage counts from the switch only, on every path that reads it.

A subscription to a flat plan takes no usage records, so nothing stamped before the switch should
exist: a record stamped there, sent after it, is refused; one stored by a version that took it is
billed by neither the run, nor ``invoice_now``, nor shown by the period's summary. A change between
two metered plans keeps the usage before it (billed at the period's end, at the plan it has then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from billplane.subscriptions.periods import add_interval
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.dunning.helpers import database_now, execute, one
from tests.platform.invoices.helpers import customer, rows
from tests.platform.usage.seed import stamp

Client = AsyncTestClient[Litestar]
UNIT = 5


@dataclass(frozen=True)
class Switched:
    tenant: CreatedTenant
    subscription: int
    metered: int  # the plan it switched to
    start: datetime  # its period's start, ten days before the switch
    at: datetime  # when the switch applied


async def _plan(client: Client, tenant: CreatedTenant, **fields: Any) -> int:
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    body = {"product_id": product["id"], "name": "Plan", "currency": "USD", "billing_interval": "month"} | fields
    created = await client.post("/v1/plans", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    plan: int = created.json()["id"]
    return plan


async def _switched(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, *, model: str = "flat"
) -> Switched:
    """A subscription to a plan of ``model`` whose period began ten days ago, switched now, with
    prorations, to a metered plan."""
    tenant = await create_tenant(client, admin_headers, "switch")
    ada = await customer(client, tenant)
    before = await _plan(client, tenant, pricing_model=model, amount=3000, **_aggregated(model))
    metered = await _plan(client, tenant, pricing_model="metered", amount=UNIT, usage_aggregation="sum")
    body = {"customer_id": ada, "plan_id": before, "trial_period_days": 0}
    created = await client.post("/v1/subscriptions", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    subscription: int = created.json()["id"]
    start = await database_now(runtime) - timedelta(days=10)
    await execute(
        runtime, tenant,
        "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end, "
        "billing_cycle_anchor = :start WHERE id = :id",
        start=start, end=add_interval(start, "month", 1), id=subscription,
    )  # fmt: skip
    changed = await client.patch(
        f"/v1/subscriptions/{subscription}",
        json={"plan_id": metered, "proration": "create_prorations"},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    row = await one(runtime, tenant, "SELECT plan_changed_at FROM subscriptions WHERE id = :id", id=subscription)
    return Switched(tenant, subscription, metered, start, row["plan_changed_at"])


def _aggregated(model: str) -> dict[str, str]:
    return {"usage_aggregation": "sum"} if model == "metered" else {}


def _record(switched: Switched, event: str, quantity: int, at: datetime) -> dict[str, object]:
    return {"subscription_id": switched.subscription, "quantity": quantity, "timestamp": stamp(at),
            "client_event_id": event}  # fmt: skip


async def _report(client: Client, switched: Switched, *records: dict[str, object]) -> list[tuple[str, str | None]]:
    sent = await client.post("/v1/usage-records", json={"records": list(records)}, headers=switched.tenant.headers)
    assert sent.status_code == 201, sent.text
    return [(outcome["result"], outcome.get("field")) for outcome in sent.json()["data"]]


async def _summary(client: Client, switched: Switched) -> tuple[int, int]:
    url = f"/v1/subscriptions/{switched.subscription}/usage"
    summary = (await client.get(url, headers=switched.tenant.headers)).json()
    return summary["quantity"], summary["records"]


async def _period_ends(runtime: Runtime, switched: Switched) -> None:
    """The period ends a millisecond after the switch (the records' time has passed by now), and
    the billing run bills it."""
    await execute(
        runtime, switched.tenant, "UPDATE subscriptions SET current_period_end = :end WHERE id = :id",
        end=switched.at + timedelta(milliseconds=1), id=switched.subscription,
    )  # fmt: skip
    await BillingRun(runtime.database, runtime.accounts).run()


async def _usage_lines(runtime: Runtime, switched: Switched) -> list[dict[str, Any]]:
    return await rows(
        runtime, switched.tenant,
        "SELECT i.billing_reason, l.quantity, l.amount, l.period_start FROM invoice_lines l "
        "JOIN invoices i ON i.id = l.invoice_id WHERE l.plan_id = :plan AND NOT l.proration ORDER BY l.id",
        plan=switched.metered,
    )  # fmt: skip


async def test_usage_stamped_before_a_switch_to_a_metered_plan_is_refused_and_billed_from_the_switch(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    switched = await _switched(client, admin_headers, runtime)

    outcomes = await _report(
        client, switched,
        _record(switched, "flat-time", 7, switched.at - timedelta(days=1)),
        _record(switched, "at-the-switch", 3, switched.at),
        _record(switched, "metered-time", 2, switched.at),
    )  # fmt: skip

    assert outcomes == [("refused", "timestamp"), ("accepted", None), ("accepted", None)]
    assert await _summary(client, switched) == (5, 2)
    await _period_ends(runtime, switched)
    assert await _usage_lines(runtime, switched) == [
        {"billing_reason": "subscription_cycle", "quantity": 5, "amount": 5 * UNIT, "period_start": switched.at}
    ]
    # The flat plan's unused time was credited from the same instant (in two parts: the invoice took
    # what brought it to 0).
    items = await rows(runtime, switched.tenant, "SELECT amount, period_start FROM invoice_items WHERE proration")
    assert {(item["amount"] < 0, item["period_start"]) for item in items} == {(True, switched.at)}


@pytest.mark.parametrize("ending", ["billing_run", "invoice_now"])
async def test_a_record_stored_before_the_switch_is_billed_on_no_path(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, ending: str
) -> None:
    switched = await _switched(client, admin_headers, runtime)
    assert await _report(client, switched, _record(switched, "metered-time", 2, switched.at)) == [("accepted", None)]
    # As a version that took records stamped before the switch stored one.
    await execute(
        runtime, switched.tenant,
        "INSERT INTO usage_records (subscription_id, quantity, timestamp, client_event_id) VALUES (:id, 7, :at, 'old')",
        id=switched.subscription, at=switched.at - timedelta(days=1),
    )  # fmt: skip

    assert await _summary(client, switched) == (2, 1)
    if ending == "billing_run":
        await _period_ends(runtime, switched)
        reason = "subscription_cycle"
    else:
        url = f"/v1/subscriptions/{switched.subscription}/cancel"
        canceled = await client.post(url, json={"invoice_now": True}, headers=switched.tenant.headers)
        assert canceled.status_code == 200, canceled.text
        reason = "subscription_update"
    assert await _usage_lines(runtime, switched) == [
        {"billing_reason": reason, "quantity": 2, "amount": 2 * UNIT, "period_start": switched.at}
    ]


async def test_a_change_between_metered_plans_keeps_the_usage_before_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    switched = await _switched(client, admin_headers, runtime, model="metered")
    # Stamped under the plan before (plan_changed_at is the change): billed all the same, at the plan
    # the period ends with, as the change rules say.
    outcomes = await _report(
        client, switched,
        _record(switched, "before-the-change", 7, switched.at - timedelta(days=1)),
        _record(switched, "after-the-change", 2, switched.at),
    )  # fmt: skip

    assert outcomes == [("accepted", None), ("accepted", None)]
    assert await _summary(client, switched) == (9, 2)
    await _period_ends(runtime, switched)
    assert await _usage_lines(runtime, switched) == [
        {"billing_reason": "subscription_cycle", "quantity": 9, "amount": 9 * UNIT, "period_start": switched.start}
    ]
