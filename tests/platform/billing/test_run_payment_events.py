"""A billing run's charges are events too: each pending payment it creates has its
``payment.created``, written in the run's statement (where the payment's id is known), showing the
payment as the API shows it, after its invoice's events and before the payment's outcome, and
fanned out to the tenant's endpoints like the run's other events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing.test_billing_run import DAY, Client, subscribe
from tests.platform.billing.test_run_charges import daily_plan
from tests.platform.invoices.helpers import connect_sandbox, customer, payment_method, rows
from tests.platform.sync_fakes import as_worker, drain


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


async def test_each_charge_of_a_run_has_its_payment_created_event(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "runpay")
    account = await connect_sandbox(client, tenant)
    endpoint = {"url": "https://hooks.example.com/payments", "enabled_events": ["payment.created"]}
    made = await client.post("/v1/webhook-endpoints", json=endpoint, headers=tenant.headers)
    assert made.status_code == 201, made.text
    plan = await daily_plan(worker, tenant)
    now = datetime.now(UTC)
    due = {"current_period_start": now - 1.5 * DAY, "current_period_end": now - 0.5 * DAY}
    ada = await customer(client, tenant)
    await payment_method(worker, tenant, ada, account, SUCCEEDS)
    for quantity in (1, 2):  # two invoices, two charges
        await subscribe(worker, tenant, plan, ada, quantity=quantity, **due)

    await BillingRun(worker.database, worker.accounts).run()

    payments = await rows(worker, tenant, "SELECT id, invoice_id FROM payments ORDER BY id")
    assert len(payments) == 2
    events = await rows(worker, tenant, "SELECT id, type, object_type, object_id, data FROM events ORDER BY id")
    created = [event for event in events if event["type"] == "payment.created"]
    assert [(event["object_type"], event["object_id"]) for event in created] == [
        ("payment", payment["id"]) for payment in payments
    ]
    for payment, event in zip(payments, created, strict=True):
        shown = (await client.get(f"/v1/payments/{payment['id']}", headers=tenant.headers)).json()
        assert shown["status"] == "pending"
        assert event["data"] == shown
        [finalized] = [
            other["id"]
            for other in events
            if (other["type"], other["object_id"]) == ("invoice.finalized", payment["invoice_id"])
        ]
        assert finalized < event["id"]  # the invoice is open before anything charges it
    queued = await rows(
        worker, tenant, "SELECT d.event_id FROM webhook_deliveries d WHERE d.endpoint_id = :id ORDER BY d.event_id",
        id=made.json()["id"],
    )  # fmt: skip
    assert [row["event_id"] for row in queued] == [event["id"] for event in created]

    await drain(worker)  # the charges, at the sandbox

    for payment, event in zip(payments, created, strict=True):
        later = await rows(
            worker, tenant, "SELECT id, type FROM events WHERE object_type = 'payment' AND object_id = :id ORDER BY id",
            id=payment["id"],
        )  # fmt: skip
        assert [row["type"] for row in later] == ["payment.created", "payment.succeeded"]
        assert later[0]["id"] == event["id"]
