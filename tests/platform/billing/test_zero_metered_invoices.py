"""A metered period without usage that ends paused, or with the subscription (``cancel_at_period_end``),
is invoiced for 0, as an active one is and as Stripe invoices a metered period without usage: the
invoice is finalized and ``paid`` at once, with its events and their webhooks, and no charge is
attempted, although the customer has a payment method an open invoice would be charged to."""

from __future__ import annotations

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, another_plan, period_ends, sandbox_customer
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import as_worker


async def test_a_paused_or_ending_metered_period_without_usage_is_paid_at_0_without_a_charge(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    worker = await as_worker(runtime)
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, prefix="zero")
    headers = setup.tenant.headers
    endpoint = {"url": "https://hooks.example.com/billing", "enabled_events": ["invoice.*", "payment.*"]}
    assert (await client.post("/v1/webhook-endpoints", json=endpoint, headers=headers)).status_code == 201
    plan = await another_plan(client, setup, pricing_model="metered", amount=5, usage_aggregation="sum")
    subscriptions = {}
    for name, action, body in (("paused", "pause", {}), ("ending", "cancel", {"at_period_end": True})):
        created = await client.post(
            "/v1/subscriptions", json={"customer_id": setup.customer, "plan_id": plan}, headers=headers
        )
        assert created.status_code == 201, created.text
        subscriptions[name] = created.json()["id"]
        acted = await client.post(f"/v1/subscriptions/{subscriptions[name]}/{action}", json=body, headers=headers)
        assert acted.status_code == 200, acted.text

    for subscription in subscriptions.values():
        await period_ends(worker, setup, subscription)

    invoices = await rows(
        worker, setup.tenant,
        "SELECT i.id, i.subscription_id, i.status, i.total, i.amount_paid, i.paid_at IS NOT NULL AS paid, "
        "l.quantity, l.amount FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id ORDER BY i.id",
    )  # fmt: skip
    assert [{key: value for key, value in invoice.items() if key != "id"} for invoice in invoices] == [
        {"subscription_id": subscriptions[name], "status": "paid", "total": 0, "amount_paid": 0, "paid": True,
         "quantity": 0, "amount": 0}
        for name in ("paused", "ending")
    ]  # fmt: skip
    # No charge: no payment, no charge queued for the worker.
    assert await rows(worker, setup.tenant, "SELECT id FROM payments") == []
    assert await rows(worker, setup.tenant, "SELECT id FROM outbox WHERE kind = 'payment.charge'") == []
    for invoice in invoices:
        events = await rows(
            worker, setup.tenant,
            "SELECT e.type, count(d.event_id) AS deliveries FROM events e "
            "LEFT JOIN webhook_deliveries d ON d.event_id = e.id "
            "WHERE e.object_type = 'invoice' AND e.object_id = :id GROUP BY e.id, e.type ORDER BY e.id",
            id=invoice["id"],
        )  # fmt: skip
        assert events == [
            {"type": "invoice.created", "deliveries": 1},
            {"type": "invoice.finalized", "deliveries": 1},
            {"type": "invoice.paid", "deliveries": 1},
        ]
    states = await rows(
        worker, setup.tenant, "SELECT status FROM subscriptions WHERE id = ANY(:ids) ORDER BY id",
        ids=[subscriptions["paused"], subscriptions["ending"]],
    )  # fmt: skip
    assert [state["status"] for state in states] == ["paused", "canceled"]
