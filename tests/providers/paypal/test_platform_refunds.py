"""billplane's refunds of PayPal sales whose answers were lost, end to end against the fake PayPal.

billplane refunds a subscription's sale with ``POST /v2/payments/captures/{id}/refund`` and its
refund id as ``invoice_id``; PayPal then reports the refund as ``PAYMENT.SALE.REFUNDED``, whose
resource has no field for that ``invoice_id`` (PayPal's specs describe none). A refund whose every
answer was lost is still billplane's: the event settles it rather than recording a second refund
that counts the money again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.sync_fakes import drain
from tests.platform.test_provider_billing_events import rows
from tests.providers.paypal import payloads
from tests.providers.paypal.fake_paypal import FakePayPal
from tests.providers.paypal.test_platform_flow import Client, connect, deliver, seed

REFUNDS = "SELECT id, status, provider_refund_id, amount FROM refunds ORDER BY id"
_CAPTURES = "/v2/payments/captures/"


async def _paid_sale(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> tuple[CreatedTenant, int, int, str]:
    """A tenant whose customer's PayPal subscription was billed 30.00 USD, which billplane recorded
    from ``PAYMENT.SALE.COMPLETED``: (tenant, account id, payment id, sale id)."""
    tenant = await create_tenant(client, admin_headers, "paypalrefund")
    account_id = (await connect(client, tenant)).json()["id"]
    subscription = await seed(worker, tenant, "per_seat")
    await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    await drain(worker)
    url = f"/v1/subscriptions/{subscription}"
    provider_id = (await client.get(url, headers=tenant.headers)).json()["provider_subscription_id"]
    paypal.approve(provider_id)
    sale_id = paypal.bill_cycle(provider_id, value="30.00")
    await deliver(client, account_id, payloads.sale_completed(subscription_id=provider_id, sale_id=sale_id))
    await drain(worker)
    [payment] = await rows(worker, tenant, "SELECT id, status, amount FROM payments")
    assert (payment["status"], payment["amount"]) == ("succeeded", 3000)
    return tenant, account_id, payment["id"], sale_id


async def _refund_answer_lost(
    client: Client, tenant: CreatedTenant, worker: Runtime, paypal: FakePayPal, *, payment: int, amount: int
) -> tuple[int, str]:
    """billplane refunds ``amount`` of the payment; PayPal makes the refund, and no answer ever
    reaches billplane (the first lost, the retries under the same request id failing): the row
    gives up and the refund stays pending. Returns (billplane's refund id, PayPal's)."""
    made = set(paypal.refunds)
    paypal.lose_next_answer(_CAPTURES)
    for _ in range(worker.sync_options.max_attempts - 1):
        paypal.fail_next(_CAPTURES, 502)
    created = await client.post("/v1/refunds", json={"payment_id": payment, "amount": amount}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    await drain(worker)
    refund = created.json()["id"]
    held = await rows(worker, tenant, f"SELECT status, provider_refund_id FROM refunds WHERE id = {refund}")
    assert held == [{"status": "pending", "provider_refund_id": None}]
    [paypals] = set(paypal.refunds) - made
    return refund, paypals


def _reported(paypal: FakePayPal, refund_id: str, sale_id: str) -> dict[str, Any]:
    """PayPal's PAYMENT.SALE.REFUNDED for one of its refunds."""
    amount = paypal.refunds[refund_id]["amount"]
    total = str(Decimal(amount["value"]))
    return payloads.sale_refunded(total=total, currency=amount["currency_code"], sale_id=sale_id, refund_id=refund_id)


async def _refunded_amount(worker: Runtime, tenant: CreatedTenant) -> int:
    [payment] = await rows(worker, tenant, "SELECT refunded_amount FROM payments")
    return int(payment["refunded_amount"])


async def test_a_sale_refund_whose_answer_was_lost_is_settled_by_its_event_not_recorded_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    tenant, account_id, payment, sale_id = await _paid_sale(client, admin_headers, worker, paypal)
    ours, paypals = await _refund_answer_lost(client, tenant, worker, paypal, payment=payment, amount=500)
    assert await _refunded_amount(worker, tenant) == 500  # reserved when the refund was made

    await deliver(client, account_id, _reported(paypal, paypals, sale_id))
    await drain(worker)

    # Before: a second refund of 500 was recorded from the event, and the payment counted 1000 refunded.
    assert await rows(worker, tenant, REFUNDS) == [
        {"id": ours, "status": "succeeded", "provider_refund_id": paypals, "amount": 500}
    ]
    assert await _refunded_amount(worker, tenant) == 500


async def test_a_sale_refund_two_unanswered_refunds_could_be_is_not_guessed_and_waits(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    tenant, account_id, payment, sale_id = await _paid_sale(client, admin_headers, worker, paypal)
    first, paypals = await _refund_answer_lost(client, tenant, worker, paypal, payment=payment, amount=500)
    second, _ = await _refund_answer_lost(client, tenant, worker, paypal, payment=payment, amount=500)

    await deliver(client, account_id, _reported(paypal, paypals, sale_id))
    await drain(worker)

    # Either could be the one PayPal reports: neither is settled from it, and no third is recorded.
    assert await rows(worker, tenant, REFUNDS) == [
        {"id": first, "status": "pending", "provider_refund_id": None, "amount": 500},
        {"id": second, "status": "pending", "provider_refund_id": None, "amount": 500},
    ]
    assert await _refunded_amount(worker, tenant) == 1000
    # The event waits for their answers (or the tenant's word); the settled payment is not flagged:
    # a flag on it could not be cleared, and would keep every later one off it.
    [stored] = await rows(worker, tenant, "SELECT status FROM provider_events WHERE type = 'refund.updated'")
    assert stored["status"] == "received"
    [payment_row] = await rows(worker, tenant, "SELECT action_required FROM payments")
    assert payment_row["action_required"] is None


async def test_a_sale_refund_of_another_amount_is_recorded_as_a_refund_of_its_own(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    """A refund made at PayPal (its dashboard) beside billplane's unanswered one: it is not billplane's."""
    tenant, account_id, payment, sale_id = await _paid_sale(client, admin_headers, worker, paypal)
    ours, _ = await _refund_answer_lost(client, tenant, worker, paypal, payment=payment, amount=500)

    dashboard = payloads.sale_refunded(total="3.00", sale_id=sale_id, refund_id="7DASHBOARD0000000")
    await deliver(client, account_id, dashboard)
    await drain(worker)

    [kept, recorded] = await rows(worker, tenant, REFUNDS)
    assert kept == {"id": ours, "status": "pending", "provider_refund_id": None, "amount": 500}
    assert (recorded["status"], recorded["provider_refund_id"], recorded["amount"]) == (
        "succeeded", "7DASHBOARD0000000", 300,
    )  # fmt: skip
    assert await _refunded_amount(worker, tenant) == 800
