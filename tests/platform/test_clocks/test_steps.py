"""How an advance steps: a subscription already due at the clock's time is billed there, not at
the next due time; and the clock is ready only once the charges of its last step are settled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS

from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.dunning.helpers import Client, on_a_clock, set_default_method, subscribe
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import URL, _advance

T0 = datetime(2030, 1, 15, 9, tzinfo=UTC)


async def test_the_clock_is_ready_once_its_last_steps_charges_are_settled(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix="ready")
    await subscribe(client, setup, trial_days=0)
    await drain(worker)
    renewal = datetime(2030, 2, 15, 9, tzinfo=UTC)  # the advance's target is the renewal itself
    to = {"to": renewal.isoformat()}
    assert (await client.post(f"{URL}/{clock}/advance", json=to, headers=setup.tenant.headers)).status_code == 202

    await worker_services(worker).clocks.run()  # the advancer alone: no drain of the worker's jobs

    types = [row["type"] for row in await rows(worker, setup.tenant, "SELECT type FROM events ORDER BY id")]
    after_ready = types[types.index("test_clock.ready") + 1 :]
    assert after_ready == []  # the renewal's payment.succeeded and invoice.paid came before it
    renewed = await rows(worker, setup.tenant, "SELECT status FROM invoices WHERE period_start = :at", at=renewal)
    assert renewed == [{"status": "paid"}]


async def test_a_subscription_due_at_the_clocks_time_is_billed_there_then_boundary_by_boundary(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # Paid after its period ended while unpaid, a subscription restarts its cycle at that moment
    # (dunning's recovery): its period ends at the clock's time, due as the next advance starts.
    setup, clock = await on_a_clock(client, admin_headers, worker, DECLINED, frozen_time=T0, prefix="steps")
    settings = {"dunning_retry_days": [1], "dunning_final_action": "mark_unpaid"}
    assert (await client.patch("/v1/billing-settings", json=settings, headers=setup.tenant.headers)).status_code == 200
    await subscribe(client, setup, trial_days=0)
    await drain(worker)
    recovered = T0 + timedelta(days=40)
    await _advance(client, worker, setup, clock, recovered)  # the renewal declined twice: unpaid
    [unpaid] = await rows(worker, setup.tenant, "SELECT id FROM invoices WHERE attempt_count > 0")
    await set_default_method(worker, setup, SUCCEEDS)
    assert (await client.post(f"/v1/invoices/{unpaid['id']}/pay", headers=setup.tenant.headers)).status_code == 202
    await drain(worker)

    await _advance(client, worker, setup, clock, recovered + timedelta(days=95))

    billed = await rows(
        worker, setup.tenant,
        "SELECT period_start, finalized_at, paid_at FROM invoices WHERE period_start >= :at ORDER BY id", at=recovered,
    )  # fmt: skip
    starts = [recovered, *(datetime(2030, month, 24, 9, tzinfo=UTC) for month in (3, 4, 5))]
    # Each invoiced, and its charge made, at its own boundary.
    assert [tuple(row.values()) for row in billed] == [(at, at, at) for at in starts]


async def test_deleting_a_clock_stops_the_retries_of_its_deleted_customers_invoices(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # Scheduled on the clock's time (2024 here), the retries would all fall due at once on real time.
    setup, clock = await on_a_clock(
        client, admin_headers, worker, DECLINED, frozen_time=datetime(2024, 1, 1, 9, tzinfo=UTC), prefix="clockdel"
    )
    headers = setup.tenant.headers
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)  # its first invoice declined: a retry on the clock's Jan 4
    assert (await client.post(f"/v1/subscriptions/{subscription}/cancel", headers=headers)).status_code == 200
    assert (await client.delete(f"/v1/customers/{setup.customer}", headers=headers)).status_code == 204
    assert (await client.delete(f"{URL}/{clock}", headers=headers)).status_code == 204

    await worker_services(worker).dunning.run()
    await drain(worker)

    [invoice] = await rows(
        worker, setup.tenant, "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices"
    )
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt_at"]) == ("open", 1, None)
    updated = await rows(
        worker, setup.tenant, "SELECT data FROM events WHERE type = 'invoice.updated' AND object_id = :id",
        id=invoice["id"],
    )  # fmt: skip
    assert [event["data"]["next_payment_attempt_at"] for event in updated][-1:] == [None]
