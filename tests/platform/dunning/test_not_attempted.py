"""An invoice whose charge cannot even be made (the customer has no usable payment method) is
dunned like one whose payment failed: the dunning run makes its first attempt, counts the refusal
as a failed attempt with its reason, schedules the retries and moves the subscription to past_due,
then to the final action."""

from __future__ import annotations

from datetime import timedelta

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.dunning_run import DunningRun
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    PRICE,
    Client,
    Setup,
    database_now,
    execute,
    one,
    period_ends,
    sandbox_customer,
    subscribe,
    subscription_status,
)
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import drain

INVOICE = "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices"


async def _renewal_without_a_method(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> tuple[Setup, int]:
    """A subscription renews while its customer has no payment method: the run cannot charge it."""
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, prefix="nat")
    subscription = await subscribe(client, setup)
    await drain(worker)
    await execute(worker, setup.tenant, "UPDATE payment_methods SET is_default = false")
    # Not drained: the run queued no charge, and a worker run could start the periodic dunning run.
    await period_ends(worker, setup, subscription)
    return setup, subscription


async def _dunning(worker: Runtime) -> None:
    """A dunning run, and the charges it queued. It sees every tenant of the test database (earlier
    tests' too), so the tests look at their own tenant's rows, not at the run's counts."""
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)


async def test_an_invoice_that_cannot_be_charged_enters_the_retry_schedule(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _renewal_without_a_method(client, admin_headers, worker)
    before = await database_now(worker)

    await _dunning(worker)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    due = invoice["next_payment_attempt_at"]
    assert due is not None
    assert before + timedelta(days=3) <= due <= await database_now(worker) + timedelta(days=3)
    assert await subscription_status(worker, setup, subscription) == "past_due"
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.past_due"
    [failed] = await rows(worker, setup.tenant, "SELECT data FROM events WHERE type = 'invoice.payment_failed'")
    assert failed["data"]["attempt_count"] == 1
    assert failed["data"]["next_payment_attempt_at"] is not None
    failure = failed["data"]["payment_failure"]
    assert (failure["code"], failure["payment_id"]) == ("charge_not_attempted", None)
    assert "no default payment method" in failure["message"]
    assert await rows(worker, setup.tenant, "SELECT id FROM payments") == []  # nothing was charged
    # Counted once: the next run finds nothing due until the retry's time.
    await _dunning(worker)
    assert (await one(worker, setup.tenant, INVOICE))["attempt_count"] == 1


async def test_the_retries_run_out_into_the_final_action(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _renewal_without_a_method(client, admin_headers, worker)
    body = {"dunning_retry_days": [1], "dunning_final_action": "cancel"}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200
    await _dunning(worker)
    await execute(worker, setup.tenant, "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute'")

    await _dunning(worker)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt_at"]) == (
        "uncollectible",
        2,
        None,
    )
    assert await subscription_status(worker, setup, subscription) == "canceled"


async def test_a_method_added_before_the_first_attempt_is_charged(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription = await _renewal_without_a_method(client, admin_headers, worker)
    await execute(worker, setup.tenant, "UPDATE payment_methods SET is_default = true")  # the customer fixes it

    await _dunning(worker)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("paid", 0)
    paid = await rows(worker, setup.tenant, "SELECT status, amount FROM payments")
    assert [(row["status"], row["amount"]) for row in paid] == [("succeeded", PRICE)]
    assert await subscription_status(worker, setup, subscription) == "active"
