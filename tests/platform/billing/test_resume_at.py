"""A pause's ``resume_at`` is a due moment: the subscription resumes then, not at the next period end.

Resumed as ``POST .../resume`` would have at ``resume_at``: back to its trial if that has not ended,
else ``active``; when the pause began before the current period (whose boundary billed nothing in
advance), the rest of that period is invoiced at once (``subscription_update``). The billing run,
a test clock's advance and a request's catch-up all do it, in time order with the period ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.platform.billing.test_billing_run import DAY, rows, subscribe, tenant_with_plans
from tests.platform.dunning.helpers import (
    Client,
    Setup,
    another_plan,
    database_now,
    execute,
    on_a_clock,
    sandbox_customer,
    types,
)
from tests.platform.dunning.helpers import subscribe as subscribe_through_api
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks import conftest as clock_fixtures
from tests.platform.test_clocks.test_advance import _advance
from tests.platform.test_clocks.test_times import _at

worker = clock_fixtures.worker  # the clock tests' worker, with the real sandbox (not the fake provider)

JAN_1 = datetime(2031, 1, 1, tzinfo=UTC)
SEAT, SEATS = 1400, 2  # a month of the per-seat plan: 2,800
FEB_1, FEB_10, MAR_1 = (
    datetime(2031, 2, 1, tzinfo=UTC),
    datetime(2031, 2, 10, tzinfo=UTC),
    datetime(2031, 3, 1, tzinfo=UTC),
)
REST_OF_FEBRUARY = SEAT * SEATS * 19 // 28  # Feb 10 to Mar 1 of a 28-day month: 1,900 exactly
INVOICES = "SELECT id, billing_reason, status, total, period_start, period_end, finalized_at FROM invoices ORDER BY id"


async def _per_seat_on_a_clock(
    client: Client, admin_headers: dict[str, str], worker: Runtime, *, trial_days: int = 0
) -> tuple[Setup, int, int]:
    """A customer on a clock frozen at Jan 1, subscribed to 2 seats of a monthly per-seat plan."""
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=JAN_1, prefix="resat")
    plan = await another_plan(client, setup, pricing_model="per_seat", amount=SEAT)
    body = {"customer_id": setup.customer, "plan_id": plan, "quantity": SEATS, "trial_period_days": trial_days}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    await drain(worker)
    return setup, clock, created.json()["id"]


async def _pause(client: Client, setup: Setup, subscription: int, resume_at: datetime) -> None:
    paused = await client.post(
        f"/v1/subscriptions/{subscription}/pause", json={"resume_at": _at(resume_at)}, headers=setup.tenant.headers
    )
    assert paused.status_code == 200, paused.text


async def paused_until_an_hour_ago(client: Client, worker: Runtime, setup: Setup, subscription: int) -> None:
    """Paused two hours ago, within its period, until an hour ago: no run has resumed it yet."""
    await _pause(client, setup, subscription, await database_now(worker) + timedelta(hours=1))
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = now() - interval '3 hours', "
        "paused_at = now() - interval '2 hours', resume_at = now() - interval '1 hour'",
    )  # fmt: skip


async def _shown(client: Client, setup: Setup, subscription: int) -> dict[str, Any]:
    shown = await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    return body


def _billed(invoices: list[dict[str, Any]]) -> list[tuple[str, int, datetime, datetime]]:
    return [(row["billing_reason"], row["total"], row["period_start"], row["period_end"]) for row in invoices]


async def test_a_pause_over_a_boundary_resumes_at_resume_at_and_bills_the_rest_of_the_period(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The audit's reproduction: paused on Jan 20 until Feb 10. It stayed ``paused`` until Mar 1, and
    Feb 10 - Mar 1 was never billed."""
    setup, clock, subscription = await _per_seat_on_a_clock(client, admin_headers, worker)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 20, tzinfo=UTC))
    await _pause(client, setup, subscription, FEB_10)

    await _advance(client, worker, setup, clock, datetime(2031, 2, 20, tzinfo=UTC))

    shown = await _shown(client, setup, subscription)
    assert (shown["status"], shown["paused_at"], shown["resume_at"]) == ("active", None, None)
    assert (shown["current_period_start"], shown["current_period_end"]) == (_at(FEB_1), _at(MAR_1))
    opening, rest = await rows(worker, setup.tenant, INVOICES)
    assert _billed([opening]) == [("subscription_create", SEAT * SEATS, JAN_1, FEB_1)]
    assert _billed([rest]) == [("subscription_update", REST_OF_FEBRUARY, FEB_10, MAR_1)]
    assert (rest["status"], rest["finalized_at"]) == ("paid", FEB_10)  # issued and charged at resume_at
    [line] = await rows(
        worker, setup.tenant,
        "SELECT description, quantity, amount, period_start, period_end, proration FROM invoice_lines "
        "WHERE invoice_id = :id", id=rest["id"],
    )  # fmt: skip
    assert line["description"].startswith("Remaining time on")
    assert (line["quantity"], line["amount"], line["period_start"], line["period_end"], line["proration"]) == (
        SEATS, REST_OF_FEBRUARY, FEB_10, MAR_1, True,
    )  # fmt: skip
    resumed = await rows(
        worker, setup.tenant, "SELECT data FROM events WHERE type = 'subscription.resumed' AND object_id = :id",
        id=subscription,
    )  # fmt: skip
    assert [(event["data"]["status"], event["data"]["resume_at"]) for event in resumed] == [("active", None)]

    # The Mar 1 boundary bills March as usual; advancing again, or a billing run, bills nothing twice.
    await _advance(client, worker, setup, clock, datetime(2031, 3, 5, tzinfo=UTC))
    await _advance(client, worker, setup, clock, datetime(2031, 3, 10, tzinfo=UTC))
    await BillingRun(worker.database, worker.accounts).run()

    invoices = await rows(worker, setup.tenant, INVOICES)
    assert _billed(invoices[2:]) == [("subscription_cycle", SEAT * SEATS, MAR_1, datetime(2031, 4, 1, tzinfo=UTC))]
    assert [row["status"] for row in invoices] == ["paid"] * 3
    assert (await types(worker, setup.tenant, "subscription")).count("subscription.resumed") == 1


async def test_a_pause_within_one_period_resumes_at_resume_at_and_bills_nothing_more(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock, subscription = await _per_seat_on_a_clock(client, admin_headers, worker)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 5, tzinfo=UTC))
    await _pause(client, setup, subscription, datetime(2031, 1, 15, tzinfo=UTC))  # January is paid for

    await _advance(client, worker, setup, clock, datetime(2031, 1, 20, tzinfo=UTC))

    shown = await _shown(client, setup, subscription)
    assert (shown["status"], shown["paused_at"], shown["resume_at"]) == ("active", None, None)
    assert _billed(await rows(worker, setup.tenant, INVOICES)) == [("subscription_create", SEAT * SEATS, JAN_1, FEB_1)]
    assert (await types(worker, setup.tenant, "subscription"))[-1] == "subscription.resumed"

    await _advance(client, worker, setup, clock, datetime(2031, 2, 5, tzinfo=UTC))

    [_, february] = await rows(worker, setup.tenant, INVOICES)
    assert _billed([february]) == [("subscription_cycle", SEAT * SEATS, FEB_1, MAR_1)]


async def test_a_resume_at_within_the_trial_goes_back_to_the_trial(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock, subscription = await _per_seat_on_a_clock(client, admin_headers, worker, trial_days=30)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 5, tzinfo=UTC))
    await _pause(client, setup, subscription, datetime(2031, 1, 15, tzinfo=UTC))

    await _advance(client, worker, setup, clock, datetime(2031, 1, 20, tzinfo=UTC))

    shown = await _shown(client, setup, subscription)
    assert (shown["status"], shown["paused_at"], shown["resume_at"]) == ("trialing", None, None)
    assert await rows(worker, setup.tenant, INVOICES) == []  # a trial is free

    await _advance(client, worker, setup, clock, datetime(2031, 2, 5, tzinfo=UTC))  # the trial ends on Jan 31

    assert (await _shown(client, setup, subscription))["status"] == "active"
    trial_end, month_after = JAN_1 + timedelta(days=30), datetime(2031, 2, 28, tzinfo=UTC)  # Jan 31 + a month
    [first] = await rows(worker, setup.tenant, INVOICES)
    assert _billed([first]) == [("subscription_cycle", SEAT * SEATS, trial_end, month_after)]


async def test_one_advance_past_resume_at_and_a_period_end_resumes_first_then_crosses_the_boundary(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock, subscription = await _per_seat_on_a_clock(client, admin_headers, worker)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 20, tzinfo=UTC))
    await _pause(client, setup, subscription, FEB_10)

    await _advance(client, worker, setup, clock, datetime(2031, 3, 5, tzinfo=UTC))

    _, rest, march = await rows(worker, setup.tenant, INVOICES)
    assert _billed([rest, march]) == [
        ("subscription_update", REST_OF_FEBRUARY, FEB_10, MAR_1),
        ("subscription_cycle", SEAT * SEATS, MAR_1, datetime(2031, 4, 1, tzinfo=UTC)),
    ]
    assert (rest["finalized_at"], march["finalized_at"]) == (FEB_10, MAR_1)
    assert await types(worker, setup.tenant, "subscription") == [
        "subscription.created",
        "subscription.updated",  # the sandbox's id recorded
        "subscription.paused",
        "subscription.updated",  # Feb 1, still paused: nothing billed in advance
        "subscription.resumed",  # Feb 10
        "subscription.updated",  # Mar 1
    ]
    assert (await _shown(client, setup, subscription))["status"] == "active"


async def test_the_billing_run_resumes_a_subscription_whose_resume_at_passed(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """Not on a clock: the real run finds it by its ``resume_at`` (its period has not ended), and, after
    downtime, resumes one whose ``resume_at`` and period end both passed in that order."""
    tenant, ids = await tenant_with_plans(client, admin_headers, runtime)  # 2 seats x 1.00 a day
    now = datetime.now(UTC)
    paused = {"status": "paused", "paused_at": now - 3 * DAY}  # paused before these periods began
    mid = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], **paused, resume_at=now - DAY / 4,
        current_period_start=now - 0.75 * DAY, current_period_end=now + DAY / 4,
    )  # fmt: skip
    late = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], **paused, resume_at=now - 1.25 * DAY,
        current_period_start=now - 1.75 * DAY, current_period_end=now - 0.75 * DAY,
    )  # fmt: skip
    waiting = await subscribe(
        runtime, tenant, ids["daily"], ids["customer"], **paused, resume_at=now + DAY / 2,
        current_period_start=now - 0.75 * DAY, current_period_end=now + DAY / 4,
    )  # fmt: skip

    await BillingRun(runtime.database, runtime.accounts).run()
    await BillingRun(runtime.database, runtime.accounts).run()

    invoices = await rows(
        runtime, tenant, "SELECT subscription_id, billing_reason, total, period_start, period_end FROM invoices "
        "ORDER BY id",
    )  # fmt: skip
    assert [(row["subscription_id"], *_billed([row])[0]) for row in invoices] == [
        (mid, "subscription_update", 100, now - DAY / 4, now + DAY / 4),  # half a day of 2.00 a day
        (late, "subscription_update", 100, now - 1.25 * DAY, now - 0.75 * DAY),  # resumed first,
        (late, "subscription_cycle", 200, now - 0.75 * DAY, now + DAY / 4),  # then billed at its boundary
    ]
    states = await rows(runtime, tenant, "SELECT id, status, paused_at, resume_at FROM subscriptions ORDER BY id")
    assert [(row["id"], row["status"], row["resume_at"] is None) for row in states] == [
        (mid, "active", True), (late, "active", True), (waiting, "paused", False),
    ]  # fmt: skip
    events = await rows(
        runtime, tenant, "SELECT type, object_id FROM events WHERE object_type = 'subscription' ORDER BY id"
    )
    assert [(event["type"], event["object_id"]) for event in events] == [
        ("subscription.resumed", mid),
        ("subscription.resumed", late),
        ("subscription.updated", late),
    ]


async def test_a_change_after_resume_at_first_resumes_the_subscription(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """Every change first bills what is due (``catching_up``): a passed ``resume_at`` too."""
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "resch")
    subscription = await subscribe_through_api(client, setup, trial_days=0)
    await paused_until_an_hour_ago(client, worker, setup, subscription)

    changed = await client.patch(
        f"/v1/subscriptions/{subscription}", json={"metadata": {"seen": "yes"}}, headers=setup.tenant.headers
    )

    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["resume_at"]) == ("active", None)
    assert (await types(worker, setup.tenant, "subscription"))[-2:] == ["subscription.resumed", "subscription.updated"]
    assert len(await rows(worker, setup.tenant, INVOICES)) == 1  # paused within its period: nothing more


async def test_a_proration_date_cannot_go_back_before_the_resume_that_billed_the_rest_of_the_period(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """Paused over the Feb 1 boundary, resumed on Feb 10: February was paid from Feb 10 only, so a
    proration from Feb 1 would credit nine days never paid for."""
    setup, clock, subscription = await _per_seat_on_a_clock(client, admin_headers, worker)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 20, tzinfo=UTC))
    await _pause(client, setup, subscription, FEB_10)
    await _advance(client, worker, setup, clock, datetime(2031, 2, 20, tzinfo=UTC))
    url = f"/v1/subscriptions/{subscription}"

    for when, status in ((FEB_1, 422), (FEB_10, 200)):
        body = {"quantity": 1, "proration_date": _at(when)}
        changed = await client.patch(url, json=body, headers=setup.tenant.headers)
        assert changed.status_code == status, changed.text
    credit, charge = await rows(worker, setup.tenant, "SELECT amount FROM invoice_items ORDER BY id")
    assert (credit["amount"], charge["amount"]) == (-REST_OF_FEBRUARY, REST_OF_FEBRUARY // SEATS)
