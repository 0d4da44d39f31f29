"""What the final action does to the subscription's other failing invoices, and what an unpaid
subscription's recovery bills (docs/concepts/dunning.md).

The final action ends the subscription's dunning as a whole: ``cancel`` marks every other invoice
of it still failing uncollectible, ``mark_unpaid`` stops their retries. An invoice whose payment
is in flight is left to that payment's outcome. An unpaid subscription paid after its period
ended starts a new period at the recovery: the periods that ended while it was unpaid are not
billed (paid within it, it is only active again).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS
from sqlalchemy import select

from billplane.billing.dunning_run import DunningRun
from billplane.billing.run import BillingRun
from billplane.payments.models import Payment
from billplane.payments.settlement import payment_settled
from billplane.runtime import Runtime
from billplane.subscriptions.periods import add_interval
from billplane.sync.worker import worker_services
from tests.platform.billing_seed import insert
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    Setup,
    another_plan,
    database_now,
    execute,
    on_a_clock,
    one,
    period_ends,
    sandbox_customer,
    set_default_method,
    subscribe,
    subscription_status,
)
from tests.platform.dunning.test_dunning import _retry_now
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import drain

INVOICE = "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices"
INVOICES = f"{INVOICE} ORDER BY id"
BILLED = "SELECT id, status, total, period_start, period_end FROM invoices ORDER BY id"
PERIOD = "SELECT status, current_period_start, current_period_end FROM subscriptions WHERE id = :id"


async def _settings(client: Client, setup: Setup, days: list[int], action: str) -> None:
    body = {"dunning_retry_days": days, "dunning_final_action": action}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200


async def _renews(worker: Runtime, setup: Setup, subscription: int) -> None:
    """The current period ends; the billing run invoices the next and its charge is made."""
    await period_ends(worker, setup, subscription)
    await drain(worker)


async def _two_failing(
    client: Client, admin_headers: dict[str, str], worker: Runtime, days: list[int], action: str
) -> tuple[Setup, int, int, int]:
    """Two renewals of a subscription declined in turn: invoices A and B in dunning, retries scheduled."""
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, "end")
    await _settings(client, setup, days, action)
    subscription = await subscribe(client, setup)
    await drain(worker)
    await _renews(worker, setup, subscription)
    await _renews(worker, setup, subscription)
    first, second = await rows(worker, setup.tenant, INVOICES)
    for invoice in (first, second):
        assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
        assert invoice["next_payment_attempt_at"] is not None
    assert await subscription_status(worker, setup, subscription) == "past_due"
    return setup, subscription, first["id"], second["id"]


async def _payments(worker: Runtime, setup: Setup) -> int:
    return len(await rows(worker, setup.tenant, "SELECT id FROM payments"))


async def _in_flight(worker: Runtime, setup: Setup, invoice: int) -> int:
    """A charge of ``invoice`` made and not answered yet (its payment pending)."""
    async with worker.database.tenant_session(setup.tenant.schema) as session:
        return await insert(
            session, "payments", customer_id=setup.customer, invoice_id=invoice, amount=PRICE, currency="USD",
            status="pending", provider="sandbox", provider_account_id=setup.account, provider_payment_id="py_late",
        )  # fmt: skip


async def _declined(worker: Runtime, setup: Setup, payment_id: int) -> None:
    """The in-flight charge's answer comes: declined (as its webhook, or the worker, records it)."""
    async with worker.database.tenant_session(setup.tenant.schema) as session:
        payment = (await session.execute(select(Payment).where(Payment.id == payment_id))).scalar_one()
        await payment_settled(session, payment, "failed", "card_declined", "The card was declined.")


async def test_cancel_marks_the_subscriptions_other_failing_invoices_uncollectible(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, first, second = await _two_failing(client, admin_headers, worker, [1], "cancel")

    await _retry_now(worker, setup, first)  # A's last retry: the final action

    assert await subscription_status(worker, setup, subscription) == "canceled"
    closed = await rows(worker, setup.tenant, INVOICES)
    assert [(row["status"], row["next_payment_attempt_at"]) for row in closed] == [("uncollectible", None)] * 2
    assert (await event_types(worker, setup.tenant, "invoice", second))[-1] == "invoice.marked_uncollectible"
    # B is not charged after the cancel, even with its old due time in the past.
    charged = await _payments(worker, setup)
    await execute(worker, setup.tenant, "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 day'")
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    assert await _payments(worker, setup) == charged


async def test_an_invoice_whose_payment_was_in_flight_at_the_cancel_is_closed_when_it_fails(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, first, second = await _two_failing(client, admin_headers, worker, [1], "cancel")
    late = await _in_flight(worker, setup, second)

    await _retry_now(worker, setup, first)

    assert await subscription_status(worker, setup, subscription) == "canceled"
    [a, b] = await rows(worker, setup.tenant, INVOICES)
    assert (a["status"], b["status"]) == ("uncollectible", "open")  # left to its payment's outcome

    await _declined(worker, setup, late)  # B's last attempt: the final action finds it canceled

    b = await one(worker, setup.tenant, f"{INVOICE} WHERE id = :id", id=second)
    assert (b["status"], b["attempt_count"], b["next_payment_attempt_at"]) == ("uncollectible", 2, None)
    assert (await event_types(worker, setup.tenant, "invoice", second))[-2:] == [
        "invoice.payment_failed",
        "invoice.marked_uncollectible",
    ]


async def test_mark_unpaid_stops_the_other_failing_invoices_retries_and_leaves_them_open(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, first, second = await _two_failing(client, admin_headers, worker, [1], "mark_unpaid")

    await _retry_now(worker, setup, first)

    assert await subscription_status(worker, setup, subscription) == "unpaid"
    stopped = await rows(worker, setup.tenant, INVOICES)
    assert [(row["status"], row["next_payment_attempt_at"]) for row in stopped] == [("open", None)] * 2
    assert (await event_types(worker, setup.tenant, "invoice", second))[-1] == "invoice.updated"
    charged = await _payments(worker, setup)
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    assert await _payments(worker, setup) == charged
    # The tenant can still collect both; paid within its period, it is only active again.
    period = await one(worker, setup.tenant, PERIOD, id=subscription)
    await _collected(client, worker, setup, second)
    assert await subscription_status(worker, setup, subscription) == "unpaid"  # A is still open
    await _pay(client, worker, setup, first)
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)
    assert [row["status"] for row in await rows(worker, setup.tenant, INVOICES)] == ["paid", "paid"]
    assert await one(worker, setup.tenant, PERIOD, id=subscription) == period | {"status": "active"}
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.recovered"


async def test_a_payment_failing_on_an_unpaid_subscription_schedules_no_retry(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, first, second = await _two_failing(client, admin_headers, worker, [1, 2], "mark_unpaid")
    late = await _in_flight(worker, setup, second)
    await _retry_now(worker, setup, first)
    await _retry_now(worker, setup, first)  # A's last retry
    assert await subscription_status(worker, setup, subscription) == "unpaid"

    await _declined(worker, setup, late)  # B's failure 2: a retry would be left, but billing stopped

    b = await one(worker, setup.tenant, f"{INVOICE} WHERE id = :id", id=second)
    assert (b["status"], b["attempt_count"], b["next_payment_attempt_at"]) == ("open", 2, None)


async def _unpaid(client: Client, admin_headers: dict[str, str], worker: Runtime) -> tuple[Setup, int, int]:
    """A subscription whose renewal was declined with no retry: unpaid, its invoice open."""
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, "rec")
    await _settings(client, setup, [], "mark_unpaid")
    subscription = await subscribe(client, setup)
    await drain(worker)
    await _renews(worker, setup, subscription)
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    [invoice] = await rows(worker, setup.tenant, INVOICES)
    invoice_id: int = invoice["id"]
    return setup, subscription, invoice_id


async def _months_pass(worker: Runtime, setup: Setup, subscription: int) -> None:
    """Three months pass while it is unpaid: its period ended long ago, and no run billed it."""
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = now() - interval '120 days', "
        "current_period_end = now() - interval '90 days', trial_end = now() - interval '150 days' WHERE id = :id",
        id=subscription,
    )  # fmt: skip
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)
    assert len(await rows(worker, setup.tenant, INVOICES)) == 1  # unpaid: not billed


async def _collected(client: Client, worker: Runtime, setup: Setup, invoice: int) -> None:
    """The customer names a card that works, and the tenant collects the invoice."""
    await set_default_method(worker, setup, SUCCEEDS)
    await _pay(client, worker, setup, invoice)


async def _pay(client: Client, worker: Runtime, setup: Setup, invoice: int) -> None:
    paid = await client.post(f"/v1/invoices/{invoice}/pay", headers=setup.tenant.headers)
    assert paid.status_code == 202, paid.text
    await drain(worker)


async def test_an_unpaid_subscription_paid_after_its_period_ended_is_billed_from_the_recovery_only(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, invoice = await _unpaid(client, admin_headers, worker)
    await _months_pass(worker, setup, subscription)
    before = await database_now(worker)

    await _collected(client, worker, setup, invoice)

    recovered = await one(worker, setup.tenant, PERIOD, id=subscription)
    assert recovered["status"] == "active"
    restart = recovered["current_period_end"]
    assert before <= restart <= await database_now(worker)  # the recovery's time
    shown = await one(
        worker, setup.tenant, "SELECT data FROM events WHERE type = 'subscription.recovered' AND object_id = :id",
        id=subscription,
    )  # fmt: skip
    assert shown["data"]["current_period_end"] == restart.isoformat().replace("+00:00", "Z")

    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)

    [_, renewal] = await rows(worker, setup.tenant, BILLED)
    assert (renewal["status"], renewal["total"]) == ("paid", PRICE)
    assert (renewal["period_start"], renewal["period_end"]) == (restart, add_interval(restart, "month", 1))
    succeeded = await rows(worker, setup.tenant, "SELECT amount FROM payments WHERE status = 'succeeded'")
    assert [row["amount"] for row in succeeded] == [PRICE, PRICE]  # the old invoice, and the new period
    period = await one(worker, setup.tenant, PERIOD, id=subscription)
    assert (period["current_period_start"], period["current_period_end"]) == (
        renewal["period_start"],
        renewal["period_end"],
    )


async def test_usage_recorded_in_the_period_that_ended_while_unpaid_is_billed_after_the_recovery(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """Usage stamped within the open period is taken while unpaid (``usage.rules``): the recovery
    does not drop it, and bills no period that ended while unpaid."""
    setup, subscription = await _metered_with_usage(client, admin_headers, worker, "rec", "mark_unpaid")
    await _renews(worker, setup, subscription)  # the 4 units, declined: unpaid
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    [invoice] = await rows(worker, setup.tenant, BILLED)  # nothing billed in advance at creation
    assert (invoice["status"], invoice["total"]) == ("open", 4 * 5)
    # Four months pass while it is unpaid; 7 units were used in its open period, which ended meanwhile.
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = current_period_start - interval '120 days', "
        "current_period_end = current_period_end - interval '120 days' WHERE id = :id",
        id=subscription,
    )  # fmt: skip
    await execute(worker, setup.tenant, "UPDATE usage_records SET timestamp = timestamp - interval '120 days'")
    period = await one(worker, setup.tenant, PERIOD, id=subscription)
    used_at = period["current_period_start"] + timedelta(hours=1)
    assert await _use(client, setup, subscription, units=7, at=used_at, key="u2") == 1  # within its open period

    await _collected(client, worker, setup, invoice["id"])
    await BillingRun(worker.database, worker.accounts).run()
    await drain(worker)

    [_, renewal] = await rows(worker, setup.tenant, BILLED)  # one invoice, from the recovery on
    assert renewal["total"] == 7 * 5
    assert renewal["period_start"] > period["current_period_end"]


async def _metered_with_usage(
    client: Client, admin_headers: dict[str, str], worker: Runtime, prefix: str, action: str
) -> tuple[Setup, int]:
    """A subscription to a metered plan (5 a unit) whose card declines, no retry, the final
    ``action``, and 4 units used a day ago in its open period."""
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, prefix)
    await _settings(client, setup, [], action)
    metered = await another_plan(client, setup, pricing_model="metered", amount=5, usage_aggregation="sum")
    setup = Setup(setup.tenant, setup.account, setup.customer, setup.method, metered)
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)
    assert (await _use(client, setup, subscription, units=4, at=await database_now(worker), key="u1")) == 1
    await execute(worker, setup.tenant, "UPDATE usage_records SET timestamp = timestamp - interval '1 day'")
    return setup, subscription


async def _use(client: Client, setup: Setup, subscription: int, *, units: int, at: datetime, key: str) -> int:
    """Usage of ``units`` at ``at`` reported for the subscription; whether it was accepted (1) or not (0)."""
    record = {"subscription_id": subscription, "quantity": units, "timestamp": at.isoformat(), "client_event_id": key}
    used = await client.post("/v1/usage-records", json={"records": [record]}, headers=setup.tenant.headers)
    accepted: int = used.json()["accepted"]
    return accepted


async def test_on_a_test_clock_the_recovery_restarts_billing_at_the_clocks_time(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    start = datetime(2031, 3, 1, 9, tzinfo=UTC)
    setup, clock = await on_a_clock(client, admin_headers, worker, DECLINED, frozen_time=start, prefix="rck")
    await _settings(client, setup, [], "mark_unpaid")
    subscription = await subscribe(client, setup)  # a 30-day trial
    await drain(worker)
    await _advance(client, worker, setup, clock, start + timedelta(days=31))  # the renewal is declined
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    await _advance(client, worker, setup, clock, start + timedelta(days=130))  # unpaid: nothing billed
    [invoice] = await rows(worker, setup.tenant, INVOICES)

    await _collected(client, worker, setup, invoice["id"])

    recovery = start + timedelta(days=130)
    recovered = await one(worker, setup.tenant, PERIOD, id=subscription)
    assert (recovered["status"], recovered["current_period_end"]) == ("active", recovery)
    await _advance(client, worker, setup, clock, recovery + timedelta(days=1))
    [_, renewal] = await rows(worker, setup.tenant, BILLED)
    assert (renewal["status"], renewal["total"]) == ("paid", PRICE)
    assert (renewal["period_start"], renewal["period_end"]) == (recovery, add_interval(recovery, "month", 1))


async def _advance(client: Client, worker: Runtime, setup: Setup, clock: int, to: datetime) -> None:
    moved = await client.post(
        f"/v1/test-clocks/{clock}/advance", json={"to": to.isoformat()}, headers=setup.tenant.headers
    )
    assert moved.status_code == 202, moved.text
    await worker_services(worker).clocks.run()  # what the worker's periodic job runs
    await drain(worker)


async def test_a_cancel_after_the_period_ended_bills_the_ended_periods_usage_first(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The last retry often falls near a period end (weekly plans: 3 + 5 + 7 days). Canceled at
    once, a period that ended before the billing run crossed it was never billed: the run ends the
    subscription at that boundary instead, and bills the period's usage."""
    setup, subscription = await _metered_with_usage(client, admin_headers, worker, "endusage", "cancel")
    await period_ends(worker, setup, subscription)  # invoices the 4 units; its charge not made yet
    period = await one(worker, setup.tenant, PERIOD, id=subscription)
    used_at = period["current_period_start"] + timedelta(seconds=5)
    assert await _use(client, setup, subscription, units=7, at=used_at, key="u2") == 1
    ended = await database_now(worker)  # the new period ends too, before the run comes to it
    await execute(worker, setup.tenant, "UPDATE subscriptions SET current_period_end = :at WHERE id = :id",
                  at=ended, id=subscription)  # fmt: skip

    await drain(worker)  # declined, no retry left: the final action
    waiting = "SELECT status, cancel_at_period_end FROM subscriptions WHERE id = :id"
    assert tuple((await one(worker, setup.tenant, waiting, id=subscription)).values()) == ("active", True)
    await BillingRun(worker.database, worker.accounts).run()

    shown = await one(worker, setup.tenant, "SELECT status, ended_at FROM subscriptions WHERE id = :id",
                      id=subscription)  # fmt: skip
    assert (shown["status"], shown["ended_at"]) == ("canceled", ended)
    first, last = await rows(worker, setup.tenant, BILLED)
    assert (first["status"], first["total"]) == ("uncollectible", 4 * 5)
    assert (last["total"], last["period_start"]) == (7 * 5, ended)
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.canceled"
