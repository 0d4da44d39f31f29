"""``invoice_now`` on a clock frozen at exactly its subscription's period start: the usage already
recorded in that period (stamped at the start, or a little ahead of the clock) goes on the last
invoice, and nothing after bills it again.

Only a test clock stops exactly on a period's start; there the period so far is empty, and the
last invoice billed none of the usage the cancellation left behind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, Setup, another_plan, on_a_clock
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import _advance

T0 = datetime(2030, 1, 15, 9, tzinfo=UTC)
UNIT = 5
METERED = (
    "SELECT i.billing_reason, i.status, i.total, l.quantity FROM invoice_lines l "
    "JOIN invoices i ON i.id = l.invoice_id ORDER BY i.id, l.id"
)


async def _metered(client: Client, setup: Setup) -> int:
    plan = await another_plan(client, setup, pricing_model="metered", amount=UNIT, usage_aggregation="sum")
    body = {"customer_id": setup.customer, "plan_id": plan}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    subscription: int = created.json()["id"]
    return subscription


async def _use(client: Client, setup: Setup, subscription: int, *used: tuple[datetime, int]) -> None:
    records = [
        {"subscription_id": subscription, "quantity": quantity, "timestamp": at.isoformat(), "client_event_id": str(at)}
        for at, quantity in used
    ]
    stored = await client.post("/v1/usage-records", json={"records": records}, headers=setup.tenant.headers)
    assert stored.status_code == 201, stored.text
    assert stored.json()["accepted"] == len(records), stored.text


async def _cancel_now(client: Client, setup: Setup, subscription: int) -> None:
    url = f"/v1/subscriptions/{subscription}/cancel"
    canceled = await client.post(url, json={"invoice_now": True}, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text


async def test_invoice_now_at_a_subscriptions_first_instant_bills_its_usage(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, _ = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="nowstart")
    subscription = await _metered(client, setup)  # its period starts at the clock's time
    await _use(client, setup, subscription, (T0, 4), (T0 + timedelta(minutes=2), 2))

    await _cancel_now(client, setup, subscription)
    await drain(worker)

    assert await rows(worker, setup.tenant, METERED) == [
        {"billing_reason": "subscription_update", "status": "paid", "total": 6 * UNIT, "quantity": 6}
    ]


async def test_invoice_now_at_a_boundary_the_clock_stopped_on_bills_the_new_periods_usage_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="nowedge")
    subscription = await _metered(client, setup)
    await _use(client, setup, subscription, (T0 + timedelta(minutes=1), 7))
    renewal = datetime(2030, 2, 15, 9, tzinfo=UTC)
    await _advance(client, worker, setup, clock, renewal)  # the first period billed at its end, 7 units
    # Frozen at the second period's very start: usage stamped then, and a little ahead of the clock.
    await _use(client, setup, subscription, (renewal, 4), (renewal + timedelta(minutes=2), 2))

    await _cancel_now(client, setup, subscription)
    await drain(worker)
    # What comes after bills none of it again: the clock's next boundaries, and the real run.
    await _advance(client, worker, setup, clock, renewal + timedelta(days=60))
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)

    assert await rows(worker, setup.tenant, METERED) == [
        {"billing_reason": "subscription_cycle", "status": "paid", "total": 7 * UNIT, "quantity": 7},
        {"billing_reason": "subscription_update", "status": "paid", "total": 6 * UNIT, "quantity": 6},
    ]
    [last] = await rows(worker, setup.tenant, "SELECT period_start, period_end FROM invoices ORDER BY id DESC LIMIT 1")
    assert (last["period_start"], last["period_end"]) == (renewal, renewal)  # canceled at the period's start
