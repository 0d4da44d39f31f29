"""POST /v1/payments/{id}/resolve: the tenant settles a charge billplane could not confirm and
cannot ask its provider about, from what the tenant found at the provider."""

from __future__ import annotations

from typing import Any

from billplane_sandbox.payment_methods import ANSWER_LOST, UNREACHABLE

from billplane.payments.models import Payment as PaymentRow
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert
from tests.platform.dunning.helpers import Client, one
from tests.platform.dunning.stuck import INVOICE, PAYMENT, Stuck, age, sandbox_host, stuck_renewal
from tests.platform.invoices.helpers import event_types


def _path(payment_id: int) -> str:
    return f"/v1/payments/{payment_id}/resolve"


async def _waiting(client: Client, admin_headers: dict[str, str], worker: Runtime, token: str) -> Stuck:
    """A payment whose charge gave up 11 minutes ago, at a provider that cannot be asked."""
    stuck = await stuck_renewal(client, admin_headers, worker, token)
    await age(worker, stuck)
    app_runtime: Runtime = client.app.state.runtime
    app_runtime.plugins = sandbox_host(lookup=False)  # find_payment would fail the test if called
    return stuck


async def _resolve(client: Client, stuck: Stuck, body: dict[str, Any]) -> Any:
    return await client.post(_path(stuck.payment), json=body, headers=stuck.setup.tenant.headers)


async def test_no_charge_at_the_provider_fails_the_payment_and_dunning_takes_over(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await _waiting(client, admin_headers, worker, UNREACHABLE)

    response = await _resolve(client, stuck, {"outcome": "failed"})

    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["status"], shown["failure_code"], shown["action_required"]) == ("failed", "resolved_by_tenant", None)
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    assert invoice["next_payment_attempt_at"] is not None  # the retry schedule took it
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.failed",
    ]


async def test_a_charge_found_at_the_provider_pays_the_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await _waiting(client, admin_headers, worker, ANSWER_LOST)

    response = await _resolve(client, stuck, {"outcome": "succeeded", "provider_payment_id": "pay_found_by_hand"})

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["provider_payment_id"]) == ("succeeded", "pay_found_by_hand")
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "paid"
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]
    again = await _resolve(client, stuck, {"outcome": "failed"})
    assert again.status_code == 409, again.text  # settled: nothing to resolve any more
    assert "succeeded" in again.json()["detail"]


async def _recorded_by_webhook(worker: Runtime, stuck: Stuck, *, extra_cents: int = 0) -> int:
    """A succeeded payment of the customer on no invoice, as the provider's webhook records a charge
    that names neither billplane's payment nor an invoice: its id."""
    async with worker.database.tenant_session(stuck.setup.tenant.schema) as session:
        payment = await session.get_one(PaymentRow, stuck.payment)
        recorded: int = await insert(
            session, "payments", customer_id=payment.customer_id, amount=payment.amount + extra_cents,
            currency=payment.currency, status="succeeded", provider="sandbox",
            provider_account_id=payment.provider_account_id, provider_payment_id="pay_from_webhook",
        )  # fmt: skip
    return recorded


async def test_a_charge_another_payment_records_pays_the_invoice_through_it_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await _waiting(client, admin_headers, worker, ANSWER_LOST)
    recorded = await _recorded_by_webhook(worker, stuck)

    response = await _resolve(client, stuck, {"outcome": "succeeded", "provider_payment_id": "pay_from_webhook"})

    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["status"], shown["failure_code"], shown["provider_payment_id"]) == ("canceled", "duplicate", None)
    assert f"payment {recorded}" in shown["failure_message"]
    other = await one(worker, stuck.setup.tenant, "SELECT invoice_id, status FROM payments WHERE id = :id", id=recorded)
    assert other == {"invoice_id": stuck.invoice, "status": "succeeded"}
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.canceled",
    ]
    assert await event_types(worker, stuck.setup.tenant, "payment", recorded) == ["payment.updated"]
    again = await _resolve(client, stuck, {"outcome": "failed"})
    assert again.status_code == 409, again.text  # canceled: nothing to resolve any more


async def test_a_charge_another_payment_records_on_other_terms_is_not_counted_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await _waiting(client, admin_headers, worker, ANSWER_LOST)
    before = await one(worker, stuck.setup.tenant, PAYMENT)
    recorded = await _recorded_by_webhook(worker, stuck, extra_cents=1)

    response = await _resolve(client, stuck, {"outcome": "succeeded", "provider_payment_id": "pay_from_webhook"})

    assert response.status_code == 409, response.text
    assert f"payment {recorded} already records pay_from_webhook" in response.json()["detail"]
    assert await one(worker, stuck.setup.tenant, f"{PAYMENT} WHERE id = {stuck.payment}") == before
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "open"
    assert await event_types(worker, stuck.setup.tenant, "payment", recorded) == []


async def test_bad_bodies_name_the_field_and_change_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await _waiting(client, admin_headers, worker, UNREACHABLE)
    before = await one(worker, stuck.setup.tenant, PAYMENT)
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("outcome", {"outcome": "refunded"}),
        ("outcome", {}),
        ("provider_payment_id", {"outcome": "succeeded"}),
    ]
    for field, body in bodies:
        response = await _resolve(client, stuck, body)
        assert response.status_code in {400, 422}, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text
    named = await _resolve(client, stuck, {"outcome": "failed", "provider_payment_id": "pay_1"})
    assert named.status_code == 422
    assert named.json()["errors"][0]["field"] == "provider_payment_id"
    assert await one(worker, stuck.setup.tenant, PAYMENT) == before


async def test_only_a_payment_waiting_at_a_provider_that_cannot_be_asked_is_resolved(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    headers = stuck.setup.tenant.headers

    too_recent = await client.post(_path(stuck.payment), json={"outcome": "failed"}, headers=headers)
    assert too_recent.status_code == 409
    assert "ask again after" in too_recent.json()["detail"]

    await age(worker, stuck)
    askable = await client.post(_path(stuck.payment), json={"outcome": "failed"}, headers=headers)
    assert askable.status_code == 409  # the sandbox can be asked: billplane asks rather than take anyone's word
    assert f"POST /v1/payments/{stuck.payment}/sync" in askable.json()["detail"]

    mine = await create_tenant(client, admin_headers, "res")
    theirs = await client.post(_path(stuck.payment), json={"outcome": "failed"}, headers=mine.headers)
    assert theirs.status_code == 404
    payment = await one(worker, stuck.setup.tenant, PAYMENT)
    assert (payment["status"], payment["provider_payment_id"]) == ("pending", None)
