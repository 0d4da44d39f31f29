"""A monthly cycle anchored on a day a shorter month lacks ends that month on its last day and
returns to its day after (Jan 31, Feb 28, Mar 31, Apr 30), as Stripe's does."""

from __future__ import annotations

from datetime import UTC, datetime

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, another_plan, on_a_clock, subscribe
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import _advance

T0 = datetime(2030, 1, 31, 10, tzinfo=UTC)


async def test_a_cycle_anchored_on_the_31st_comes_back_to_it_after_february(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="anchor")
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)
    await _advance(client, worker, setup, clock, datetime(2030, 3, 5, tzinfo=UTC))
    seats = await another_plan(client, setup, pricing_model="per_seat", amount=1000)
    url = f"/v1/subscriptions/{subscription}"
    # The period from Feb 28 to Mar 31 is one period of the cycle: a change in it is prorated.
    changed = await client.patch(url, json={"plan_id": seats, "quantity": 2}, headers=setup.tenant.headers)
    assert changed.status_code == 200, changed.text

    await _advance(client, worker, setup, clock, datetime(2030, 5, 5, tzinfo=UTC))

    cycle = "SELECT period_start FROM invoices WHERE billing_reason <> 'subscription_update' ORDER BY id"
    invoices = await rows(worker, setup.tenant, cycle)
    days = [(row["period_start"].month, row["period_start"].day) for row in invoices]
    assert days == [(1, 31), (2, 28), (3, 31), (4, 30)]
    shown = (await client.get(url, headers=setup.tenant.headers)).json()
    assert shown["current_period_end"] == T0.replace(month=5).isoformat().replace("+00:00", "Z")
