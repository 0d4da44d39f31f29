"""A clocked customer's invoices carry the clock's time, not the wall clock's: finalized, due,
paid and voided at the clock's frozen time, whether the tenant acts through the API or the clock's
billing pays them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billplane_sandbox.payment_methods import SUCCEEDS
from sqlalchemy import text

from billplane.billing.invoicing import DAYS_UNTIL_DUE
from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.dunning.helpers import Client, on_a_clock, subscribe
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain

URL = "/v1/test-clocks"
T0 = datetime(2031, 3, 10, 12, tzinfo=UTC)


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_invoice_actions_of_a_clocked_customer_happen_on_its_clock(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, _ = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="clk")
    draft = {"customer_id": setup.customer, "currency": "USD", "lines": [{"description": "x", "unit_amount": 700}]}
    paid, voided = [(await client.post("/v1/invoices", json=draft, headers=setup.tenant.headers)).json() for _ in "ab"]

    for invoice in (paid, voided):
        finalized = await client.post(
            f"/v1/invoices/{invoice['id']}/finalize", json={"days_until_due": 14}, headers=setup.tenant.headers
        )
        assert finalized.status_code == 200, finalized.text
        assert (finalized.json()["finalized_at"], finalized.json()["due_at"]) == (_at(T0), _at(T0 + timedelta(14)))
    assert (await client.post(f"/v1/invoices/{paid['id']}/pay", headers=setup.tenant.headers)).status_code == 202
    await drain(worker)
    voiding = await client.post(f"/v1/invoices/{voided['id']}/void", headers=setup.tenant.headers)

    assert voiding.json()["voided_at"] == _at(T0)
    shown = (await client.get(f"/v1/invoices/{paid['id']}", headers=setup.tenant.headers)).json()
    assert (shown["status"], shown["paid_at"]) == ("paid", _at(T0))
    [event] = await rows(worker, setup.tenant, "SELECT data FROM events WHERE type = 'invoice.paid'")
    assert event["data"]["paid_at"] == _at(T0)


async def test_a_renewal_on_the_clock_is_paid_at_the_clock_time(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="clk")
    await subscribe(client, setup, trial_days=0)
    await drain(worker)

    to = {"to": _at(T0 + timedelta(days=40))}
    assert (await client.post(f"{URL}/{clock}/advance", json=to, headers=setup.tenant.headers)).status_code == 202
    await worker_services(worker).clocks.run()
    await drain(worker)

    first, invoice = await rows(
        worker, setup.tenant, "SELECT status, period_start, finalized_at, due_at, paid_at FROM invoices ORDER BY id"
    )
    # The first period's, invoiced when the subscription was created: on the clock's time as well.
    assert (first["status"], first["period_start"], first["finalized_at"], first["paid_at"]) == ("paid", T0, T0, T0)
    renewal = datetime(2031, 4, 10, 12, tzinfo=UTC)
    assert (invoice["status"], invoice["period_start"], invoice["paid_at"]) == ("paid", renewal, renewal)
    # Finalized by the clock's billing step: on the clock's time too, due the usual days later.
    assert (invoice["finalized_at"], invoice["due_at"]) == (renewal, renewal + timedelta(days=DAYS_UNTIL_DUE))


async def test_an_unpaid_subscription_set_to_cancel_ends_at_its_period_end_on_the_clock(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The clock stops at its period end, which the run acts on (``locked.MOVED``), and does not
    jump to the target: its end, and its last invoice (the item left for it), are dated there.
    Before, the step went to the target and the invoice was finalized and paid there."""
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="clk")
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)
    item = {"customer_id": setup.customer, "subscription_id": subscription, "amount": 300, "currency": "USD"}
    added = await client.post("/v1/invoice-items", json=item | {"description": "x"}, headers=setup.tenant.headers)
    assert added.status_code == 201, added.text
    async with worker.database.tenant_session(setup.tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET status = 'unpaid', cancel_at_period_end = true"))

    to = {"to": _at(T0 + timedelta(days=40))}
    assert (await client.post(f"{URL}/{clock}/advance", json=to, headers=setup.tenant.headers)).status_code == 202
    await worker_services(worker).clocks.run()
    await drain(worker)

    period_end = datetime(2031, 4, 10, 12, tzinfo=UTC)
    [ended] = await rows(worker, setup.tenant, f"SELECT * FROM subscriptions WHERE id = {subscription}")
    last = (await rows(worker, setup.tenant, "SELECT * FROM invoices ORDER BY id"))[-1]
    assert (last["total"], last["finalized_at"], last["paid_at"]) == (300, period_end, period_end)
    assert (ended["status"], ended["ended_at"]) == ("canceled", period_end), ended
