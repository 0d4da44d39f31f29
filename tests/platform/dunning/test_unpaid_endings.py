"""An unpaid subscription (dunning's final action ``mark_unpaid``) set to cancel at its period's end
ends there, as Stripe ends it: the billing run cancels it at that boundary (``subscription.canceled``),
bills the period's metered usage and releases its credits, as for any end at a period's end. Its
billing stopped at the failure; its end did not (docs/concepts/dunning.md). Before 2026-11-29 the
run left every unpaid subscription alone, and it stayed unpaid, set to cancel, for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billplane_sandbox.payment_methods import DECLINED

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.platform.billing_seed import insert
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    Setup,
    database_now,
    execute,
    on_a_clock,
    one,
    sandbox_customer,
    subscribe,
    subscription_status,
)
from tests.platform.dunning.test_dunning_endings import (
    _advance,
    _collected,
    _metered_with_usage,
    _renews,
    _settings,
    _use,
)
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import drain

ENDED = (
    "SELECT status, cancel_at_period_end, canceled_at, ended_at, current_period_end FROM subscriptions WHERE id = :id"
)
BILLED = "SELECT id, status, total, period_start FROM invoices ORDER BY id"
ITEMS = "SELECT subscription_id, amount FROM invoice_items WHERE invoice_id IS NULL ORDER BY id"


async def _canceled_at_period_end(client: Client, setup: Setup, subscription: int) -> None:
    url = f"/v1/subscriptions/{subscription}/cancel"
    canceled = await client.post(url, json={"at_period_end": True}, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["status"], canceled.json()["cancel_at_period_end"]) == ("unpaid", True)


async def _period_ended(worker: Runtime, setup: Setup, subscription: int) -> datetime:
    """The open period ends now, before any run came to it; its end."""
    ended = await database_now(worker)
    await execute(worker, setup.tenant, "UPDATE subscriptions SET current_period_end = :at WHERE id = :id",
                  at=ended, id=subscription)  # fmt: skip
    return ended


async def _run(worker: Runtime) -> None:
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)


async def _ended_there(worker: Runtime, setup: Setup, subscription: int, end: datetime) -> None:
    shown = await one(worker, setup.tenant, ENDED, id=subscription)
    assert (shown["status"], shown["canceled_at"], shown["ended_at"]) == ("canceled", end, end)
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.canceled"


async def _unpaid_flat(
    client: Client, admin_headers: dict[str, str], worker: Runtime, prefix: str
) -> tuple[Setup, int]:
    """A monthly flat subscription whose first renewal was declined, no retry: unpaid, its invoice open."""
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, prefix)
    await _settings(client, setup, [], "mark_unpaid")
    subscription = await subscribe(client, setup)  # a trial: the run bills its first period
    await drain(worker)
    await _renews(worker, setup, subscription)
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    return setup, subscription


async def test_an_unpaid_subscription_set_to_cancel_ends_at_its_period_end_with_its_usage_billed(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _metered_with_usage(client, admin_headers, worker, "unpend", "mark_unpaid")
    await _renews(worker, setup, subscription)  # the 4 units, declined: unpaid
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    opened = await one(worker, setup.tenant, "SELECT current_period_start FROM subscriptions WHERE id = :id",
                       id=subscription)  # fmt: skip
    used_at = opened["current_period_start"] + timedelta(seconds=5)
    assert await _use(client, setup, subscription, units=7, at=used_at, key="u2") == 1  # taken while unpaid
    await _canceled_at_period_end(client, setup, subscription)
    end = await _period_ended(worker, setup, subscription)

    await _run(worker)

    await _ended_there(worker, setup, subscription, end)
    first, last = await rows(worker, setup.tenant, BILLED)
    assert (first["status"], first["total"]) == ("open", 4 * 5)  # the unpaid one, still the tenant's to collect
    assert (last["total"], last["period_start"]) == (7 * 5, end)  # its last period's usage
    await _run(worker)  # ended: nothing more
    assert len(await rows(worker, setup.tenant, BILLED)) == 2


async def test_an_unpaid_subscription_set_to_cancel_releases_its_credit_when_it_ends(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _unpaid_flat(client, admin_headers, worker, "unpcred")
    async with worker.database.tenant_session(setup.tenant.schema) as session:
        # A credit still waiting for its next invoice (a downgrade's, larger than the invoice that took part of it).
        await insert(
            session, "invoice_items", customer_id=setup.customer, subscription_id=subscription,
            description="Unused time", quantity=1, unit_amount=Decimal(-700), amount=-700, currency="USD",
            proration=True,
        )  # fmt: skip
    await _canceled_at_period_end(client, setup, subscription)
    end = await _period_ended(worker, setup, subscription)

    await _run(worker)

    await _ended_there(worker, setup, subscription, end)
    assert await rows(worker, setup.tenant, ITEMS) == [{"subscription_id": None, "amount": -700}]  # the customer's
    assert [row["total"] for row in await rows(worker, setup.tenant, BILLED)] == [PRICE]  # nothing owed: no invoice


async def test_an_unpaid_subscription_not_set_to_cancel_is_still_not_billed(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _unpaid_flat(client, admin_headers, worker, "unpkeep")
    await _period_ended(worker, setup, subscription)

    await _run(worker)

    assert (await one(worker, setup.tenant, ENDED, id=subscription))["status"] == "unpaid"
    assert len(await rows(worker, setup.tenant, BILLED)) == 1


async def test_paid_after_the_period_it_was_set_to_cancel_at_it_ends_there_not_at_the_payment(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The run had not come to the period's end yet when the customer paid: the subscription ended
    at that end all the same (no new cycle from the payment, as an unpaid one's recovery starts)."""
    setup, subscription = await _unpaid_flat(client, admin_headers, worker, "unppaid")
    await _canceled_at_period_end(client, setup, subscription)
    end = (await database_now(worker)) - timedelta(days=20)  # its open period ended 20 days ago
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end WHERE id = :id",
        start=end - timedelta(days=30), end=end, id=subscription,
    )  # fmt: skip
    [invoice] = await rows(worker, setup.tenant, BILLED)

    await _collected(client, worker, setup, invoice["id"])
    await _run(worker)

    await _ended_there(worker, setup, subscription, end)
    assert [(row["status"], row["total"]) for row in await rows(worker, setup.tenant, BILLED)] == [("paid", PRICE)]


async def test_on_a_test_clock_it_ends_at_its_period_end_when_the_clock_passes_it(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    start = datetime(2031, 3, 1, 9, tzinfo=UTC)
    setup, clock = await on_a_clock(client, admin_headers, worker, DECLINED, frozen_time=start, prefix="unpck")
    await _settings(client, setup, [], "mark_unpaid")
    subscription = await subscribe(client, setup)  # a 30-day trial
    await drain(worker)
    await _advance(client, worker, setup, clock, start + timedelta(days=31))  # the renewal is declined
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    await _canceled_at_period_end(client, setup, subscription)
    end = (await one(worker, setup.tenant, ENDED, id=subscription))["current_period_end"]

    await _advance(client, worker, setup, clock, end + timedelta(days=10))

    await _ended_there(worker, setup, subscription, end)
