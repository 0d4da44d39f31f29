"""billplane with the real PayPal plugin, end to end against the fake PayPal: an account connected
through the API, a subscription that waits for the customer's approval (its link shown by the API),
PayPal's verified webhook starting it, and a plan PayPal cannot bill refused up front."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import drain
from tests.providers.paypal import payloads
from tests.providers.paypal.conftest import WEBHOOK_ID, new_client_id
from tests.providers.paypal.fake_paypal import GOOD_SECRET, FakePayPal, sign_webhook

Client = AsyncTestClient[Litestar]
EXTRA: dict[str, dict[str, Any]] = {"metered": {"usage_aggregation": "sum"}, "package": {"package_size": 100}}


async def connect(client: Client, tenant: CreatedTenant, secret: str = GOOD_SECRET) -> Any:
    credentials = {"client_id": new_client_id(), "client_secret": secret, "webhook_id": WEBHOOK_ID}
    body = {"provider": "paypal", "mode": "test", "credentials": credentials}
    return await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)


async def seed(worker: Runtime, tenant: CreatedTenant, model: str) -> int:
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada", email="ada@example.com")
        product = await insert(session, "products", name="API")
        extra = EXTRA.get(model, {})
        plan = await insert(
            session, "plans", product_id=product, name=model, pricing_model=model, amount=1000, currency="USD",
            billing_interval="month", **extra,
        )  # fmt: skip
        return await insert(session, "subscriptions", customer_id=customer, plan_id=plan, status="incomplete")


async def test_a_wrong_client_secret_is_refused_with_paypals_message(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalbad")
    refused = await connect(client, tenant, secret="not-the-secret")
    assert refused.status_code == 422, refused.text
    assert "not-the-secret" not in refused.text
    assert (await client.get("/v1/provider-accounts", headers=tenant.headers)).json()["data"] == []


async def test_a_webhook_missing_an_event_billplane_needs_is_refused_naming_it(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalhook")
    # The fake serves the module's other tests: put back after this one.
    monkeypatch.setattr(paypal, "webhook_event_types", ["BILLING.SUBSCRIPTION.ACTIVATED", "PAYMENT.SALE.COMPLETED"])
    refused = await connect(client, tenant)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "credentials"
    assert "not subscribed to BILLING.SUBSCRIPTION.CANCELLED, " in error["message"]
    assert "PAYMENT.SALE.COMPLETED" not in error["message"]
    assert (await client.get("/v1/provider-accounts", headers=tenant.headers)).json()["data"] == []


async def test_the_approval_link_is_shown_until_paypals_webhook_starts_the_subscription(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalflow")
    connected = await connect(client, tenant)
    assert connected.status_code == 201, connected.text
    account_id = connected.json()["id"]
    subscription = await seed(worker, tenant, "per_seat")

    assert (await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert (shown["provider"], shown["status"], shown["sync_status"]) == ("paypal", "incomplete", "synced")
    assert shown["next_action"]["type"] == "redirect"
    assert shown["next_action"]["url"].startswith("https://")
    provider_id = shown["provider_subscription_id"]
    assert provider_id in paypal.subscriptions

    event = payloads.subscription_event(
        "BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", subscription_id=provider_id, at=datetime.now(UTC)
    )
    body = json.dumps(event).encode()
    headers = {name.lower(): value for name, value in sign_webhook(WEBHOOK_ID, body, datetime.now(UTC)).items()}
    delivered = await client.post(f"/v1/webhooks/paypal/{account_id}", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    forged = await client.post(
        f"/v1/webhooks/paypal/{account_id}", content=body.replace(b"ACTIVE", b"EXPIRED"), headers=headers
    )
    assert forged.status_code == 400
    await drain(worker)

    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert (shown["status"], shown["next_action"]) == ("active", None)


async def deliver(client: Client, account_id: int, event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    headers = {name.lower(): value for name, value in sign_webhook(WEBHOOK_ID, body, datetime.now(UTC)).items()}
    delivered = await client.post(f"/v1/webhooks/paypal/{account_id}", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text


async def test_a_payment_that_recovers_a_failed_cycle_makes_the_subscription_active_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalrecover")
    account_id = (await connect(client, tenant)).json()["id"]
    subscription = await seed(worker, tenant, "per_seat")
    await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    await drain(worker)
    url = f"/v1/subscriptions/{subscription}"
    provider_id = (await client.get(url, headers=tenant.headers)).json()["provider_subscription_id"]

    async def paypal_says(event_type: str, status: str, *, outstanding: str) -> None:
        event = payloads.subscription_event(
            event_type, status, outstanding=outstanding, subscription_id=provider_id, at=datetime.now(UTC)
        )
        with paypal.lock:  # what a read of the subscription at PayPal shows from now on
            paypal.subscriptions[provider_id].update(
                status=status, billing_info=event["resource"]["billing_info"], status_change_note=None
            )
        await deliver(client, account_id, event)
        await drain(worker)

    await paypal_says("BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", outstanding="0.00")
    await paypal_says("BILLING.SUBSCRIPTION.PAYMENT.FAILED", "ACTIVE", outstanding="30.00")
    assert (await client.get(url, headers=tenant.headers)).json()["status"] == "past_due"

    # PayPal's retry is paid: its balance and count of failures go back to 0, and it sends the sale.
    with paypal.lock:
        paypal.subscriptions[provider_id]["billing_info"].update(
            outstanding_balance={"currency_code": "USD", "value": "0.00"}, failed_payments_count=0
        )
    await deliver(client, account_id, payloads.sale_completed(subscription_id=provider_id, at=datetime.now(UTC)))
    await drain(worker)
    assert (await client.get(url, headers=tenant.headers)).json()["status"] == "active"

    # Failures up to the plan's threshold: PayPal suspends it and bills no more.
    await paypal_says("BILLING.SUBSCRIPTION.SUSPENDED", "SUSPENDED", outstanding="30.00")
    assert (await client.get(url, headers=tenant.headers)).json()["status"] == "unpaid"


async def test_metered_and_package_plans_are_refused_on_a_paypal_account(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalmodels")
    assert (await connect(client, tenant)).status_code == 201
    for model in ("metered", "package"):
        subscription = await seed(worker, tenant, model)
        refused = await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "plan_id"
        assert f"paypal accounts cannot bill {model} plans" in error["message"]


async def test_a_cancellation_sent_to_paypal_cannot_be_taken_back(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # PayPal has no cancellation at the period's end: the adapter cancels at once (the paid period
    # stays paid), so there is nothing to take back.
    tenant = await create_tenant(client, admin_headers, "paypalundo")
    connected = await connect(client, tenant)
    assert connected.status_code == 201, connected.text
    subscription = await seed(worker, tenant, "per_seat")
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text(
                "UPDATE subscriptions SET status = 'active', cancel_at_period_end = true, provider = 'paypal', "
                "provider_account_id = :account, provider_subscription_id = 'I-UNDO' WHERE id = :id"
            ).bindparams(account=connected.json()["id"], id=subscription)
        )
    url = f"/v1/subscriptions/{subscription}"
    refused = await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == "paypal accounts cannot take back the cancellation of a subscription"
    assert (await client.get(url, headers=tenant.headers)).json()["cancel_at_period_end"] is True
    async with worker.database.tenant_session(tenant.schema) as session:
        # Read in the table: GET /v1/events lists an event once older transactions have ended.
        written = await session.scalar(text("SELECT count(*) FROM events WHERE object_type = 'subscription'"))
    assert written == 0
