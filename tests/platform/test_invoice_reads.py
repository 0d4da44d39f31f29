"""/v1/invoices: an invoice's amounts and lines (exact unit prices), and every list filter."""

from __future__ import annotations

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import Client, list_ids, seed


async def test_get_invoice_with_lines(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    response = await client.get(f"/v1/invoices/{billing.invoices['open']}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["number"], body["status"], body["currency"]) == ("INV-2", "open", "USD")
    assert (body["customer_id"], body["subscription_id"]) == (billing.ada, billing.subscriptions["trialing"])
    assert (body["subtotal"], body["total"], body["amount_paid"], body["amount_due"]) == (1450, 1450, 200, 1250)
    assert (body["period_start"], body["period_end"]) == ("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")
    metered, prorated = body["lines"]
    assert metered == {
        "id": metered["id"],
        "description": "API calls 1001-11000",
        "plan_id": billing.tiered,
        "quantity": 10_000,
        "unit_amount": None,  # 0.125 minor units is not whole: only the exact decimal string carries it
        "unit_amount_decimal": "0.125",
        "tier": 2,
        "amount": 1250,
        "currency": "USD",
        "period_start": "2025-01-01T00:00:00Z",
        "period_end": "2025-02-01T00:00:00Z",
        "proration": False,
    }
    assert (prorated["unit_amount"], prorated["unit_amount_decimal"], prorated["amount"]) == (200, "200", 200)
    assert (prorated["proration"], prorated["tier"], prorated["period_start"]) == (True, None, None)
    assert metered["id"] < prorated["id"]


async def test_paid_and_draft_invoices(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    paid = (await client.get(f"/v1/invoices/{billing.invoices['paid']}", headers=tenant.headers)).json()
    assert (paid["status"], paid["amount_due"]) == ("paid", 0)
    assert [(line["unit_amount"], line["unit_amount_decimal"]) for line in paid["lines"]] == [(1000, "1000")]
    draft = (await client.get(f"/v1/invoices/{billing.invoices['draft']}", headers=tenant.headers)).json()
    assert (draft["status"], draft["number"], draft["subscription_id"], draft["period_start"]) == (
        "draft",
        None,
        None,
        None,
    )
    assert (draft["lines"], draft["total"], draft["amount_due"], draft["metadata"]) == ([], 0, 0, {})


async def test_every_invoice_filter(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    invs = billing.invoices
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({}, [invs["paid"], invs["open"], invs["void"], invs["draft"]]),
        ({"customer_id": billing.ada}, [invs["paid"], invs["open"]]),
        ({"subscription_id": billing.subscriptions["past_due"]}, [invs["void"]]),
        ({"subscription_id": billing.subscriptions["canceled"]}, []),
        ({"status": "draft"}, [invs["draft"]]),
        ({"status": "uncollectible"}, []),
        ({"customer_id": billing.bob, "status": "void"}, [invs["void"]]),
        (
            {"customer_id": billing.ada, "subscription_id": billing.subscriptions["active"], "status": "paid"},
            [invs["paid"]],
        ),
        ({"customer_id": 999_999}, []),
    ]
    for params, expected in cases:
        assert await list_ids(client, tenant, "invoices", **params) == expected, params
