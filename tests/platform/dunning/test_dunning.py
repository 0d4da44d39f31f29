"""Dunning end to end: a billing run's charge fails at the sandbox, the invoice is retried on the
tenant's schedule by the dunning run through the real worker, and the subscription goes past_due,
then active again, canceled or unpaid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from billplane_sandbox.payment_methods import DECLINED, INSUFFICIENT_FUNDS, SUCCEEDS

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
    set_default_method,
    subscribe,
    subscription_status,
    types,
)
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import drain

INVOICE = "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices"


async def _renewal_fails(client: Client, worker: Runtime, setup: Setup) -> tuple[int, int]:
    """The subscription's period ends, the billing run invoices it and its charge is declined."""
    subscription = await subscribe(client, setup)
    await drain(worker)
    await period_ends(worker, setup, subscription)
    await drain(worker)
    invoice = await one(worker, setup.tenant, INVOICE)
    return subscription, invoice["id"]


async def _retry_now(worker: Runtime, setup: Setup, invoice: int) -> None:
    """Time passes until the retry is due (the due time moves back by as much as the wait)."""
    await execute(
        worker, setup.tenant,
        "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute' WHERE id = :id", id=invoice,
    )  # fmt: skip
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)


async def test_a_failed_renewal_schedules_a_retry_and_the_subscription_goes_past_due(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    before = await database_now(worker)
    subscription, invoice_id = await _renewal_fails(client, worker, setup)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    due = invoice["next_payment_attempt_at"]
    assert before + timedelta(days=3) <= due <= await database_now(worker) + timedelta(days=3)
    assert await subscription_status(worker, setup, subscription) == "past_due"
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.past_due"
    # The failure's event shows when it is tried again.
    [failed] = await rows(worker, setup.tenant, "SELECT data FROM events WHERE type = 'invoice.payment_failed'")
    assert failed["data"]["next_payment_attempt_at"] is not None
    shown = (await client.get(f"/v1/invoices/{invoice_id}", headers=setup.tenant.headers)).json()
    assert shown["attempt_count"] == 1
    assert shown["next_payment_attempt_at"] is not None


async def test_retries_follow_the_schedule_from_the_first_failure(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    _, invoice_id = await _renewal_fails(client, worker, setup)
    await execute(
        worker, setup.tenant,
        "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute' WHERE id = :id", id=invoice_id,
    )  # fmt: skip
    # The retry settles after its due time; the next one is first failure + 5 days all the same, the
    # first failure being the due time - 3 days (the due time was moved, so that anchor moved with it).
    moved = (await one(worker, setup.tenant, INVOICE))["next_payment_attempt_at"]
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    invoice = await one(worker, setup.tenant, INVOICE)
    assert invoice["attempt_count"] == 2
    assert invoice["next_payment_attempt_at"] == moved - timedelta(days=3) + timedelta(days=5)
    payments = await rows(worker, setup.tenant, "SELECT status, failure_code FROM payments ORDER BY id")
    assert [(row["status"], row["failure_code"]) for row in payments] == [("failed", "card_declined")] * 2


async def test_a_retry_that_is_not_due_yet_is_not_made(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    await _renewal_fails(client, worker, setup)
    # The run sees every tenant of the database (earlier tests' too): this tenant's rows tell.
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    assert (await one(worker, setup.tenant, INVOICE))["attempt_count"] == 1
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 1


async def test_a_successful_retry_pays_the_invoice_and_the_subscription_is_active_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, INSUFFICIENT_FUNDS)
    subscription, invoice_id = await _renewal_fails(client, worker, setup)
    await set_default_method(worker, setup, SUCCEEDS)  # the customer updates the card

    await _retry_now(worker, setup, invoice_id)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["next_payment_attempt_at"]) == ("paid", None)
    assert await subscription_status(worker, setup, subscription) == "active"
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.recovered"
    paid = await rows(worker, setup.tenant, "SELECT status, amount FROM payments ORDER BY id")
    assert [(row["status"], row["amount"]) for row in paid] == [("failed", PRICE), ("succeeded", PRICE)]
    # The run's charge and dunning's retry: each payment is created pending, then settled.
    assert await types(worker, setup.tenant, "payment") == [
        "payment.created",
        "payment.failed",
        "payment.created",
        "payment.succeeded",
    ]


FINAL = {
    "cancel": ("canceled", "uncollectible", "subscription.canceled"),
    "mark_unpaid": ("unpaid", "open", "subscription.unpaid"),
}


@pytest.mark.parametrize("action", FINAL)
async def test_after_the_last_retry_fails_the_final_action_applies(
    action: str, client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    final_status, invoice_status, event = FINAL[action]
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    body = {"dunning_retry_days": [1, 2], "dunning_final_action": action}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200
    subscription, invoice_id = await _renewal_fails(client, worker, setup)
    await _retry_now(worker, setup, invoice_id)
    assert await subscription_status(worker, setup, subscription) == "past_due"  # one retry left
    await execute(
        worker, setup.tenant,
        "INSERT INTO invoice_items (customer_id, subscription_id, description, quantity, unit_amount, amount, "
        "currency) VALUES (:customer, :id, 'Unused time', 1, -300, -300, 'USD')",
        customer=setup.customer, id=subscription,
    )  # fmt: skip

    await _retry_now(worker, setup, invoice_id)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt_at"]) == (
        invoice_status, 3, None,
    )  # fmt: skip
    assert await subscription_status(worker, setup, subscription) == final_status
    assert event in await event_types(worker, setup.tenant, "subscription", subscription)
    # Nothing more is retried.
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 3
    assert (await one(worker, setup.tenant, INVOICE))["attempt_count"] == 3
    # A canceled subscription's credit is its customer's (``customer_credit``); an unpaid one keeps it.
    credit = await one(worker, setup.tenant, "SELECT subscription_id FROM invoice_items")
    assert credit["subscription_id"] == (None if action == "cancel" else subscription)
    if action == "cancel":
        assert "invoice.marked_uncollectible" in await event_types(worker, setup.tenant, "invoice", invoice_id)
        cancel = await rows(worker, setup.tenant, "SELECT status FROM outbox WHERE kind = 'subscription.cancel'")
        assert len(cancel) == 1  # mirrored to the sandbox like an API cancel


async def test_an_empty_schedule_applies_the_final_action_at_the_first_failure(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    body = {"dunning_retry_days": [], "dunning_final_action": "mark_unpaid"}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200
    subscription, _ = await _renewal_fails(client, worker, setup)
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    assert (await one(worker, setup.tenant, INVOICE))["next_payment_attempt_at"] is None


async def test_a_retry_without_a_usable_payment_method_counts_as_a_failed_attempt(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    _, invoice_id = await _renewal_fails(client, worker, setup)
    await execute(worker, setup.tenant, "UPDATE payment_methods SET is_default = false")

    await _retry_now(worker, setup, invoice_id)

    invoice = await one(worker, setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 2)
    assert invoice["next_payment_attempt_at"] is not None
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 1  # nothing was charged


async def test_a_manual_invoice_is_not_dunned(client: Client, admin_headers: dict[str, str], worker: Runtime) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    body = {"customer_id": setup.customer, "currency": "USD", "lines": [{"description": "x", "unit_amount": 500}]}
    invoice = (await client.post("/v1/invoices", json=body, headers=setup.tenant.headers)).json()
    await client.post(f"/v1/invoices/{invoice['id']}/finalize", headers=setup.tenant.headers)
    assert (await client.post(f"/v1/invoices/{invoice['id']}/pay", headers=setup.tenant.headers)).status_code == 202
    await drain(worker)
    row = await one(worker, setup.tenant, INVOICE)
    assert (row["status"], row["attempt_count"], row["next_payment_attempt_at"]) == ("open", 1, None)
    assert await types(worker, setup.tenant, "subscription") == []


async def test_two_dunning_runs_at_once_charge_each_due_invoice_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    import anyio  # noqa: PLC0415

    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    _, invoice_id = await _renewal_fails(client, worker, setup)
    await execute(
        worker, setup.tenant,
        "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute' WHERE id = :id", id=invoice_id,
    )  # fmt: skip
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(DunningRun(worker.database, worker.jobs, worker.accounts).run)
    await drain(worker)
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 2  # the first charge and one retry
