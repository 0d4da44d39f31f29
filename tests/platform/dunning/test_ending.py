"""Dunning ends when the tenant closes the failing invoice itself: voiding it, or marking it
uncollectible, stops its retries, and a past_due subscription that nothing else keeps past_due is
active again (docs/concepts/dunning.md, "Ending dunning by hand")."""

from __future__ import annotations

import pytest
from billplane_sandbox.payment_methods import DECLINED

from billplane.billing.dunning_run import DunningRun
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    Client,
    Setup,
    execute,
    period_ends,
    sandbox_customer,
    subscribe,
    subscription_status,
)
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import drain

INVOICES = "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices ORDER BY id"
ACTIONS = {"void": "void", "mark-uncollectible": "uncollectible"}


async def _period_ends(worker: Runtime, setup: Setup, subscription: int) -> None:
    """The subscription's current period ended a minute ago; the billing run invoices and charges it."""
    await period_ends(worker, setup, subscription)
    await drain(worker)


async def _failing_renewal(client: Client, admin_headers: dict[str, str], worker: Runtime) -> tuple[Setup, int, int]:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    subscription = await subscribe(client, setup)
    await drain(worker)
    await _period_ends(worker, setup, subscription)
    [invoice] = await rows(worker, setup.tenant, INVOICES)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    assert invoice["next_payment_attempt_at"] is not None
    assert await subscription_status(worker, setup, subscription) == "past_due"
    return setup, subscription, invoice["id"]


@pytest.mark.parametrize("action", ACTIONS)
async def test_closing_the_failing_invoice_ends_dunning_and_the_subscription_is_active_again(
    action: str, client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, invoice_id = await _failing_renewal(client, admin_headers, worker)

    response = await client.post(f"/v1/invoices/{invoice_id}/{action}", headers=setup.tenant.headers)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["next_payment_attempt_at"]) == (ACTIONS[action], None)
    assert await subscription_status(worker, setup, subscription) == "active"
    assert (await event_types(worker, setup.tenant, "subscription", subscription))[-1] == "subscription.recovered"
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()
    assert shown["status"] == "active"
    # Not retried, even with a due time forced into the past: only open invoices are dunned.
    await execute(worker, setup.tenant, "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 day'")
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    assert len(await rows(worker, setup.tenant, "SELECT id FROM payments")) == 1


async def test_another_failing_invoice_keeps_the_subscription_past_due(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, subscription, first = await _failing_renewal(client, admin_headers, worker)
    await _period_ends(worker, setup, subscription)  # the next renewal fails as well
    [_, second] = await rows(worker, setup.tenant, INVOICES)
    assert (second["status"], second["attempt_count"]) == ("open", 1)

    voided = await client.post(f"/v1/invoices/{first}/void", headers=setup.tenant.headers)
    assert voided.status_code == 200, voided.text
    assert await subscription_status(worker, setup, subscription) == "past_due"
    assert "subscription.recovered" not in await event_types(worker, setup.tenant, "subscription", subscription)

    written_off = await client.post(f"/v1/invoices/{second['id']}/mark-uncollectible", headers=setup.tenant.headers)
    assert written_off.status_code == 200, written_off.text
    assert await subscription_status(worker, setup, subscription) == "active"


async def test_an_unpaid_subscription_stays_unpaid_when_its_invoice_is_voided(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED)
    body = {"dunning_retry_days": [], "dunning_final_action": "mark_unpaid"}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200
    subscription = await subscribe(client, setup)
    await drain(worker)
    await _period_ends(worker, setup, subscription)
    assert await subscription_status(worker, setup, subscription) == "unpaid"
    [invoice] = await rows(worker, setup.tenant, INVOICES)

    voided = await client.post(f"/v1/invoices/{invoice['id']}/void", headers=setup.tenant.headers)

    assert voided.status_code == 200, voided.text
    # The final action has applied: the tenant cancels it (its billing stopped at the failure).
    assert await subscription_status(worker, setup, subscription) == "unpaid"
