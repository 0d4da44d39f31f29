"""Paying invoices end to end: the installed sandbox provider, an account connected through the API,
the real job queue and worker (`drain`), and the real webhook endpoint for pending outcomes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from billplane_sandbox import events, payment_methods
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.plugin import PLUGIN

from billplane.payments.models import Payment
from billplane.payments.operations import charge_request
from billplane.plugins import AdapterContext, ChargeRequest, ChargeResult, ProviderAdapter
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.invoices.helpers import (
    WEBHOOK_SECRET,
    Client,
    act,
    connect_sandbox,
    customer,
    draft,
    event_types,
    payment_method,
    rows,
)
from tests.platform.sync_fakes import as_worker, drain


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


async def open_invoice(
    client: Client, runtime: Runtime, tenant: CreatedTenant, token: str, *amounts: int
) -> tuple[int, dict[str, Any]]:
    """A sandbox account, a customer whose default payment method is ``token``, and an open invoice."""
    account = await connect_sandbox(client, tenant)
    ada = await customer(client, tenant)
    await payment_method(runtime, tenant, ada, account, token)
    invoice = await draft(client, tenant, ada, *amounts)
    finalized = await act(client, tenant, invoice["id"], "finalize")
    assert finalized.status_code == 200, finalized.text
    return account, finalized.json()


async def payments_of(client: Client, tenant: CreatedTenant, invoice_id: int) -> list[dict[str, Any]]:
    response = await client.get("/v1/payments", params={"invoice_id": invoice_id}, headers=tenant.headers)
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def invoice_of(client: Client, tenant: CreatedTenant, invoice_id: int) -> dict[str, Any]:
    shown: dict[str, Any] = (await client.get(f"/v1/invoices/{invoice_id}", headers=tenant.headers)).json()
    return shown


async def test_a_payment_that_succeeds_pays_the_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    account, invoice = await open_invoice(client, worker, tenant, payment_methods.SUCCEEDS, 1500, 499)

    accepted = await act(client, tenant, invoice["id"], "pay")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "open"  # the charge happens in the worker
    [pending] = await payments_of(client, tenant, invoice["id"])
    assert (pending["status"], pending["amount"], pending["currency"], pending["provider_payment_id"]) == (
        "pending",
        1999,
        "USD",
        None,
    )
    outbox = "SELECT kind, object_id, provider_account_id, status FROM outbox WHERE kind = 'payment.charge'"
    assert await rows(worker, tenant, outbox) == [
        {"kind": "payment.charge", "object_id": pending["id"], "provider_account_id": account, "status": "pending"}
    ]
    again = await act(client, tenant, invoice["id"], "pay")
    assert again.status_code == 409, again.text  # one payment at a time

    await drain(worker)
    paid = await invoice_of(client, tenant, invoice["id"])
    assert (paid["status"], paid["amount_paid"], paid["amount_due"], paid["attempt_count"]) == ("paid", 1999, 0, 0)
    assert paid["paid_at"] is not None
    [succeeded] = await payments_of(client, tenant, invoice["id"])
    assert succeeded["status"] == "succeeded"
    assert succeeded["provider_payment_id"].startswith("sbx_pay_")
    assert (await rows(worker, tenant, outbox))[0]["status"] == "done"
    assert await event_types(worker, tenant, "invoice", invoice["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    assert await event_types(worker, tenant, "payment", succeeded["id"]) == ["payment.created", "payment.succeeded"]

    refused = await act(client, tenant, invoice["id"], "pay")
    assert refused.status_code == 409, refused.text  # pay on a paid invoice
    assert "paid" in refused.json()["detail"]
    await drain(worker)  # the row once more (a duplicate job): nothing is charged twice
    assert len(await payments_of(client, tenant, invoice["id"])) == 1


async def test_paying_creates_the_pending_payment_with_its_event(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    _, invoice = await open_invoice(client, worker, tenant, payment_methods.SUCCEEDS, 700)
    endpoint = {"url": "https://hooks.example.com/payments", "enabled_events": ["payment.*"]}
    made = await client.post("/v1/webhook-endpoints", json=endpoint, headers=tenant.headers)
    assert made.status_code == 201, made.text

    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 409  # refused: no second event

    [pending] = await payments_of(client, tenant, invoice["id"])
    [created] = await rows(worker, tenant, "SELECT id, type, object_id, data FROM events WHERE object_type = 'payment'")
    assert (created["type"], created["object_id"], created["data"]) == ("payment.created", pending["id"], pending)
    assert pending["status"] == "pending"
    queued = await rows(worker, tenant, "SELECT endpoint_id, event_id FROM webhook_deliveries")
    assert queued == [{"endpoint_id": made.json()["id"], "event_id": created["id"]}]


async def test_a_declined_payment_leaves_the_invoice_open_and_counts_the_attempt(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    account, invoice = await open_invoice(client, worker, tenant, payment_methods.DECLINED, 2500)
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    await drain(worker)
    declined = await invoice_of(client, tenant, invoice["id"])
    assert (declined["status"], declined["amount_paid"], declined["attempt_count"]) == ("open", 0, 1)
    [failed] = await payments_of(client, tenant, invoice["id"])
    assert (failed["status"], failed["failure_code"]) == ("failed", "card_declined")
    assert failed["failure_message"]
    assert await event_types(worker, tenant, "payment", failed["id"]) == ["payment.created", "payment.failed"]
    assert (await event_types(worker, tenant, "invoice", invoice["id"]))[-1] == "invoice.payment_failed"

    # Another try with another of the customer's payment methods, named in the request.
    works = await payment_method(
        worker, tenant, invoice["customer_id"], account, payment_methods.SUCCEEDS, default=False
    )
    retried = await act(client, tenant, invoice["id"], "pay", payment_method_id=works)
    assert retried.status_code == 202, retried.text
    await drain(worker)
    paid = await invoice_of(client, tenant, invoice["id"])
    assert (paid["status"], paid["amount_paid"], paid["attempt_count"]) == ("paid", 2500, 1)
    assert [payment["status"] for payment in await payments_of(client, tenant, invoice["id"])] == [
        "failed",
        "succeeded",
    ]


@pytest.mark.parametrize(
    ("token", "builder", "outcome"),
    [
        (payment_methods.PENDING_SUCCEEDS, events.payment_succeeded, ("paid", 1, 0, "succeeded")),
        (payment_methods.PENDING_FAILS, events.payment_failed, ("open", 0, 1, "failed")),
    ],
)
async def test_a_pending_payment_settles_through_the_providers_webhook(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    token: str,
    builder: Any,
    outcome: tuple[str, int, int, str],
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    account, invoice = await open_invoice(client, worker, tenant, token, 800)
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    await drain(worker)
    [pending] = await payments_of(client, tenant, invoice["id"])
    assert pending["status"] == "pending"
    assert pending["provider_payment_id"].startswith("sbx_pay_")
    assert (await invoice_of(client, tenant, invoice["id"]))["status"] == "open"
    for action in ("pay", "void"):  # money is in flight
        assert (await act(client, tenant, invoice["id"], action)).status_code == 409

    webhook = events.sign(builder(pending["provider_payment_id"]), WEBHOOK_SECRET)
    delivered = await client.post(f"/v1/webhooks/sandbox/{account}", content=webhook.body, headers=webhook.headers)
    assert delivered.status_code == 200, delivered.text
    await drain(worker)
    settled = await invoice_of(client, tenant, invoice["id"])
    [payment] = await payments_of(client, tenant, invoice["id"])
    status, paid_share, attempts, payment_status = outcome
    assert (settled["status"], settled["amount_paid"], settled["attempt_count"], payment["status"]) == (
        status,
        800 * paid_share,
        attempts,
        payment_status,
    )
    applied = await rows(worker, tenant, "SELECT status, detail FROM provider_events")
    assert applied == [{"status": "applied", "detail": None}]


async def test_no_usable_payment_method_or_account_is_refused_and_writes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    ada = await customer(client, tenant)
    invoice = await draft(client, tenant, ada, 100)
    await act(client, tenant, invoice["id"], "finalize")
    no_account = await act(client, tenant, invoice["id"], "pay")
    assert no_account.status_code == 409, no_account.text

    account = await connect_sandbox(client, tenant)
    no_method = await act(client, tenant, invoice["id"], "pay")
    assert (no_method.status_code, no_method.json()["errors"][0]["field"]) == (422, "payment_method_id")
    bob = await customer(client, tenant, "Bob")
    bobs = await payment_method(worker, tenant, bob, account, payment_methods.SUCCEEDS)
    not_hers = await act(client, tenant, invoice["id"], "pay", payment_method_id=bobs)
    assert (not_hers.status_code, not_hers.json()["errors"][0]["field"]) == (422, "payment_method_id")
    assert await rows(worker, tenant, "SELECT id FROM payments") == []
    assert await rows(worker, tenant, "SELECT id FROM outbox WHERE kind = 'payment.charge'") == []


def crashing_host(keys: list[str], tenant_id: int) -> PluginHost:
    """The real sandbox, whose first charge for ``tenant_id`` reaches the provider and then dies
    before it is recorded (the worker also charges what earlier tests of its database left due)."""

    class CrashingSandbox(SandboxAdapter):
        async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
            if not idempotency_key.startswith(f"billplane-{tenant_id}-"):
                return await super().charge(request, idempotency_key=idempotency_key)
            keys.append(idempotency_key)
            result = await super().charge(request, idempotency_key=idempotency_key)
            if len(keys) == 1:
                raise ConnectionResetError("lost the answer")  # the charge happened; its answer did not arrive
            return result

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        return CrashingSandbox(context, context.credentials)  # type: ignore[arg-type]

    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter))
    return host


async def test_a_charge_whose_answer_was_lost_is_retried_with_the_same_key(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pay")
    _, invoice = await open_invoice(client, worker, tenant, payment_methods.SUCCEEDS, 300)
    keys: list[str] = []
    worker.plugins = crashing_host(keys, tenant.id)
    # The retry well after the drain: a backoff of 1-2 s could fall within the second the drain
    # waits for follow-ups, on a loaded machine, and run before the row is looked at.
    worker.sync_options = dataclasses.replace(worker.sync_options, base_delay=60.0)
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    await drain(worker)
    [row] = await rows(worker, tenant, "SELECT id, status, attempts FROM outbox WHERE kind = 'payment.charge'")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert (await payments_of(client, tenant, invoice["id"]))[0]["status"] == "pending"
    await rows(worker, tenant, "UPDATE outbox SET next_attempt_at = now() WHERE id = :id RETURNING id", id=row["id"])
    await drain(worker)
    assert keys == [f"billplane-{tenant.id}-{row['id']}"] * 2  # one outbox row, one key: one charge
    [payment] = await payments_of(client, tenant, invoice["id"])
    assert payment["status"] == "succeeded"
    assert (await invoice_of(client, tenant, invoice["id"]))["status"] == "paid"


async def test_a_charge_keeps_the_provider_customer_it_was_sent_for(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # Rebuilt from the customer's mapping of the day, a retry after the customer was created
    # again at the provider sent another customer under the same key, and reconciliation asked
    # for the charge under the new one: not found, the payment failed, and dunning charged again.
    tenant = await create_tenant(client, admin_headers, "paycus")
    account, invoice = await open_invoice(client, worker, tenant, payment_methods.UNREACHABLE, 300)
    worker.sync_options = dataclasses.replace(worker.sync_options, base_delay=60.0)
    await drain(worker)  # the customer reaches the sandbox first
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    await drain(worker)
    [sent_for] = await rows(worker, tenant, "SELECT provider_customer_id FROM provider_customers")
    [payment] = await payments_of(client, tenant, invoice["id"])
    assert payment["status"] == "pending"

    await rows(worker, tenant, "UPDATE provider_customers SET provider_customer_id = 'cus_again' RETURNING 1")
    async with worker.database.tenant_session(tenant.schema) as session:
        row = await session.get(Payment, payment["id"])
        assert row is not None
        request = await charge_request(session, row, account)
    assert request.provider_customer_id == sent_for["provider_customer_id"]
