"""Deleting a clock ends its time for the invoices its deleted customers leave open: none is
charged automatically on real time afterwards, whether dunning had attempted it on the clock or
never had (its first attempt was still due when the clock went: no payment method, no step since).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billplane_sandbox.payment_methods import DECLINED

from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.dunning.helpers import Client, Setup, on_a_clock, subscribe
from tests.platform.invoices.helpers import customer, rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import URL

FROZEN = datetime(2024, 1, 1, 9, tzinfo=UTC)  # long past: on real time, everything it scheduled is due


async def _gone(client: Client, setup: Setup, customer_id: int, subscription: int) -> None:
    headers = setup.tenant.headers
    assert (await client.post(f"/v1/subscriptions/{subscription}/cancel", headers=headers)).status_code == 200
    assert (await client.delete(f"/v1/customers/{customer_id}", headers=headers)).status_code == 204


async def _invoice_of(worker: Runtime, setup: Setup, customer_id: int) -> dict[str, Any]:
    [invoice] = await rows(
        worker, setup.tenant,
        "SELECT id, status, attempt_count, next_payment_attempt_at FROM invoices WHERE customer_id = :id",
        id=customer_id,
    )  # fmt: skip
    return invoice


async def test_a_deleted_clocks_never_attempted_invoices_are_left_open_like_its_dunned_ones(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, DECLINED, frozen_time=FROZEN, prefix="clkgone")
    headers = setup.tenant.headers
    declined = await subscribe(client, setup, trial_days=0)  # declined at once: a retry on the clock's Jan 4
    bob = await customer(client, setup.tenant, "Bob")  # no payment method: his first invoice is never attempted
    assert (
        await client.post(f"{URL}/{clock}/customers", json={"customer_id": bob}, headers=headers)
    ).status_code == 200
    body = {"customer_id": bob, "plan_id": setup.plan, "trial_period_days": 0}
    unpaid = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert unpaid.status_code == 201, unpaid.text
    await drain(worker)
    never = await _invoice_of(worker, setup, bob)
    assert (never["status"], never["attempt_count"], never["next_payment_attempt_at"]) == ("open", 0, None)
    await _gone(client, setup, setup.customer, declined)
    await _gone(client, setup, bob, unpaid.json()["id"])

    assert (await client.delete(f"{URL}/{clock}", headers=headers)).status_code == 204
    await worker_services(worker).dunning.run()  # real time's dunning: the clock's customers are its own now
    await drain(worker)

    # Both left open for the tenant to void or collect, neither dunned on real time.
    for customer_id in (setup.customer, bob):
        invoice = await _invoice_of(worker, setup, customer_id)
        assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt_at"]) == ("open", 1, None)
    assert await rows(worker, setup.tenant, "SELECT id FROM payments WHERE customer_id = :id", id=bob) == []
    events = await rows(
        worker, setup.tenant, "SELECT type, data FROM events WHERE object_type = 'invoice' AND object_id = :id "
        "AND type IN ('invoice.payment_failed', 'invoice.updated') ORDER BY id", id=never["id"],
    )  # fmt: skip
    assert [event["type"] for event in events] == ["invoice.payment_failed", "invoice.updated"]
    failure = events[0]["data"]["payment_failure"]
    assert (failure["code"], failure["payment_id"]) == ("charge_not_attempted", None)
    assert failure["message"] == f"test clock {clock} was deleted before this invoice's first attempt"
    assert events[-1]["data"]["next_payment_attempt_at"] is None
