"""/v1/subscriptions: one subscription's fields, and every list filter (rows written with SQL)."""

from __future__ import annotations

from datetime import datetime

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import Client, list_ids, seed


async def test_get_subscription(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    response = await client.get(f"/v1/subscriptions/{billing.subscriptions['trialing']}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "id": billing.subscriptions["trialing"],
        "customer_id": billing.ada,
        "plan_id": billing.tiered,
        "status": "trialing",
        "quantity": 1,
        "current_period_start": None,
        "current_period_end": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "trial_start": None,
        "trial_end": None,
        "provider": None,
        "provider_account_id": None,
        "provider_subscription_id": None,
        "payment_method_id": None,
        "paused_at": None,
        "resume_at": None,
        "ended_at": None,
        "pending_plan_id": None,
        "pending_quantity": None,
        "next_action": None,
        "sync_status": "none",
        "last_sync_error": None,
        "synced_at": None,
        "metadata": {},
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None


async def test_every_subscription_filter(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    subs = billing.subscriptions
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({}, [subs["active"], subs["trialing"], subs["canceled"], subs["past_due"]]),
        ({"customer_id": billing.bob}, [subs["canceled"], subs["past_due"]]),
        ({"plan_id": billing.flat}, [subs["active"], subs["canceled"]]),
        ({"status": "past_due"}, [subs["past_due"]]),
        ({"status": "unpaid"}, []),
        ({"customer_id": billing.ada, "plan_id": billing.tiered, "status": "trialing"}, [subs["trialing"]]),
        ({"customer_id": billing.ada, "status": "canceled"}, []),
        ({"customer_id": 999_999}, []),
    ]
    for params, expected in cases:
        assert await list_ids(client, tenant, "subscriptions", **params) == expected, params
