"""/v1/payments: a payment's amounts and refunds, and every list filter (rows written with SQL)."""

from __future__ import annotations

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import Client, list_ids, seed


async def test_get_payment_with_refunds(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    response = await client.get(f"/v1/payments/{billing.payments['succeeded']}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["amount"], body["currency"], body["status"], body["refunded_amount"]) == (
        1000,
        "USD",
        "succeeded",
        300,
    )
    assert (body["customer_id"], body["invoice_id"]) == (billing.ada, billing.invoices["paid"])
    assert (body["provider"], body["provider_payment_id"], body["failure_code"]) == ("sandbox", "pay_1", None)
    refunds = [(r["amount"], r["currency"], r["status"], r["reason"], r["provider_refund_id"]) for r in body["refunds"]]
    assert refunds == [(100, "USD", "succeeded", "duplicate", None), (200, "USD", "succeeded", None, "re_2")]
    assert body["refunds"][0]["id"] < body["refunds"][1]["id"]


async def test_failed_payment(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    body = (await client.get(f"/v1/payments/{billing.payments['failed']}", headers=tenant.headers)).json()
    assert (body["status"], body["failure_code"], body["failure_message"]) == ("failed", "card_declined", "Declined.")
    assert (body["invoice_id"], body["refunds"], body["refunded_amount"], body["metadata"]) == (None, [], 0, {})


async def test_every_payment_filter(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    pays = billing.payments
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({}, [pays["succeeded"], pays["pending"], pays["failed"], pays["canceled"]]),
        ({"customer_id": billing.bob}, [pays["failed"], pays["canceled"]]),
        ({"invoice_id": billing.invoices["open"]}, [pays["pending"]]),
        ({"invoice_id": billing.invoices["draft"]}, []),
        ({"status": "failed"}, [pays["failed"]]),
        ({"customer_id": billing.ada, "status": "succeeded"}, [pays["succeeded"]]),
        (
            {"customer_id": billing.bob, "invoice_id": billing.invoices["void"], "status": "canceled"},
            [pays["canceled"]],
        ),
        ({"customer_id": 999_999}, []),
    ]
    for params, expected in cases:
        assert await list_ids(client, tenant, "payments", **params) == expected, params
