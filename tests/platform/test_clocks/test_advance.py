"""Advancing a test clock with the real worker and the sandbox: the issue's demo and its parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS

from billplane.billing.clocks_advance import ClockAdvancer
from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from billplane.sync.performer import OutboxPerformer
from billplane.sync.worker import worker_services
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    Setup,
    execute,
    on_a_clock,
    set_default_method,
    subscribe,
    types,
)
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain

URL = "/v1/test-clocks"
T0 = datetime(2030, 1, 15, 9, tzinfo=UTC)


async def _on_a_clock(client: Client, admin_headers: dict[str, str], worker: Runtime, token: str) -> tuple[Setup, int]:
    return await on_a_clock(client, admin_headers, worker, token, frozen_time=T0, prefix="demo")


async def _advance(client: Client, worker: Runtime, setup: Setup, clock: int, to: datetime) -> dict[str, Any]:
    response = await client.post(f"{URL}/{clock}/advance", json={"to": to.isoformat()}, headers=setup.tenant.headers)
    assert response.status_code == 202, response.text
    await worker_services(worker).clocks.run()  # what the worker's periodic job runs
    await drain(worker)
    shown: dict[str, Any] = (await client.get(f"{URL}/{clock}", headers=setup.tenant.headers)).json()
    return shown


async def _invoices(worker: Runtime, setup: Setup) -> list[dict[str, Any]]:
    return await rows(
        worker, setup.tenant,
        "SELECT id, status, total, period_start, attempt_count, next_payment_attempt_at FROM invoices ORDER BY id",
    )  # fmt: skip


async def test_three_months_bring_three_invoices_one_failed_payment_and_its_retries(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await _on_a_clock(client, admin_headers, worker, SUCCEEDS)
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)
    row = (await rows(worker, setup.tenant, "SELECT current_period_start FROM subscriptions"))[0]
    assert row["current_period_start"] == T0  # subscribed on the clock's time
    [opening] = await _invoices(worker, setup)  # the first month, invoiced and paid when subscribing
    assert (opening["status"], opening["total"], opening["period_start"]) == ("paid", PRICE, T0)

    # The card starts declining. A month and four days on: the renewal is declined, and so is the
    # first retry (day 3).
    await set_default_method(worker, setup, DECLINED)
    shown = await _advance(client, worker, setup, clock, T0 + timedelta(days=35))
    assert (shown["status"], shown["frozen_time"]) == (
        "ready",
        (T0 + timedelta(days=35)).isoformat().replace("+00:00", "Z"),
    )
    [_, invoice] = await _invoices(worker, setup)
    renewal = datetime(2030, 2, 15, 9, tzinfo=UTC)
    assert (invoice["status"], invoice["period_start"], invoice["attempt_count"]) == ("open", renewal, 2)
    assert invoice["next_payment_attempt_at"] == renewal + timedelta(days=5)  # from the first failure, on the clock
    sub = (await rows(worker, setup.tenant, "SELECT status FROM subscriptions"))[0]
    assert sub["status"] == "past_due"

    # The customer goes back to the good card; the clock goes on to three months.
    await execute(
        worker, setup.tenant, "UPDATE payment_methods SET is_default = (provider_payment_method_id = :good)",
        good=SUCCEEDS,
    )  # fmt: skip
    await _advance(client, worker, setup, clock, T0 + timedelta(days=92))

    # Three months brought three invoices, besides the one subscribing brought.
    [_, *invoices] = await _invoices(worker, setup)
    assert [(row["status"], row["total"]) for row in invoices] == [("paid", PRICE)] * 3
    assert [row["period_start"] for row in invoices] == [
        renewal,
        datetime(2030, 3, 15, 9, tzinfo=UTC),
        datetime(2030, 4, 15, 9, tzinfo=UTC),
    ]
    payments = await rows(worker, setup.tenant, "SELECT invoice_id, status FROM payments ORDER BY id")
    first = invoices[0]["id"]
    assert [(row["invoice_id"], row["status"]) for row in payments] == [
        (opening["id"], "succeeded"),
        (first, "failed"), (first, "failed"), (first, "succeeded"),
        (invoices[1]["id"], "succeeded"), (invoices[2]["id"], "succeeded"),
    ]  # fmt: skip
    sub = (await rows(worker, setup.tenant, "SELECT status FROM subscriptions WHERE id = :id", id=subscription))[0]
    assert sub["status"] == "active"
    kinds = await types(worker, setup.tenant, "subscription")
    assert kinds.index("subscription.past_due") < kinds.index("subscription.recovered")
    assert (await types(worker, setup.tenant, "test_clock"))[-1] == "test_clock.ready"


async def test_all_retries_failing_cancel_the_subscription_on_the_clock(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await _on_a_clock(client, admin_headers, worker, DECLINED)
    await subscribe(client, setup, trial_days=0)  # its first invoice is declined at once
    await drain(worker)

    await _advance(client, worker, setup, clock, T0 + timedelta(days=92))

    [invoice] = await _invoices(worker, setup)  # canceled after the last retry: no renewal
    assert (invoice["status"], invoice["attempt_count"], invoice["period_start"]) == ("uncollectible", 4, T0)
    sub = (await rows(worker, setup.tenant, "SELECT status, canceled_at FROM subscriptions"))[0]
    assert sub["status"] == "canceled"
    assert sub["canceled_at"] == T0 + timedelta(days=7)  # the clock's time


async def test_a_trial_ends_on_the_clock_and_only_the_clocks_customers_are_billed(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await _on_a_clock(client, admin_headers, worker, SUCCEEDS)
    body = {"customer_id": setup.customer, "plan_id": setup.plan, "trial_period_days": 10}
    assert (await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)).status_code == 201
    await drain(worker)
    # The billing run of real time leaves the clock's customers alone.
    await BillingRun(worker.database, worker.accounts).run()
    assert await _invoices(worker, setup) == []

    await _advance(client, worker, setup, clock, T0 + timedelta(days=11))

    sub = (await rows(worker, setup.tenant, "SELECT status, current_period_start FROM subscriptions"))[0]
    assert (sub["status"], sub["current_period_start"]) == ("active", T0 + timedelta(days=10))
    [invoice] = await _invoices(worker, setup)
    assert (invoice["status"], invoice["total"]) == ("paid", PRICE)


async def test_two_advancers_at_once_bill_each_period_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    import anyio  # noqa: PLC0415

    setup, clock = await _on_a_clock(client, admin_headers, worker, SUCCEEDS)
    await subscribe(client, setup, trial_days=0)
    await drain(worker)
    to = (T0 + timedelta(days=92)).isoformat()
    assert (
        await client.post(f"{URL}/{clock}/advance", json={"to": to}, headers=setup.tenant.headers)
    ).status_code == 202
    performer = OutboxPerformer(worker.database, worker.accounts, worker.jobs, worker.sync_options)
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(ClockAdvancer(worker.database, worker.jobs, worker.accounts, performer).run)
    for _ in range(3):  # a run that found the clock held by the other stops; the periodic job goes on
        await ClockAdvancer(worker.database, worker.jobs, worker.accounts, performer).run()
        await drain(worker)
    invoices = await _invoices(worker, setup)
    assert [row["status"] for row in invoices] == ["paid"] * 4  # the first month's, and three renewals
    assert len({row["period_start"] for row in invoices}) == 4
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 4


async def test_a_subscription_its_provider_bills_sets_no_step_of_the_clock(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # Its period ends move with the provider's webhooks, not with the clock: stopping the clock at
    # them would be a step that bills nothing.
    setup, clock = await _on_a_clock(client, admin_headers, worker, SUCCEEDS)
    subscription = await subscribe(client, setup)
    await drain(worker)
    await execute(
        worker, setup.tenant, "UPDATE subscriptions SET provider = 'stripe', provider_subscription_id = 'sub_1' "
        "WHERE id = :id", id=subscription,
    )  # fmt: skip
    to = T0 + timedelta(days=40)
    assert (
        await client.post(f"{URL}/{clock}/advance", json={"to": to.isoformat()}, headers=setup.tenant.headers)
    ).status_code == 202
    performer = OutboxPerformer(worker.database, worker.accounts, worker.jobs, worker.sync_options)
    advancer = ClockAdvancer(
        worker.database, worker.jobs, worker.accounts, performer, provider_billed=frozenset({"stripe"})
    )

    assert await advancer.run() == 1  # straight to the target

    shown = (await client.get(f"{URL}/{clock}", headers=setup.tenant.headers)).json()
    assert (shown["status"], datetime.fromisoformat(shown["frozen_time"])) == ("ready", to)
    assert await _invoices(worker, setup) == []  # nothing billed here for it
