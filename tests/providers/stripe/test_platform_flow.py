"""billplane with the real Stripe plugin, end to end against the fake Stripe: an account connected
through the API, customers and subscriptions mirrored by the real worker, webhooks through the
real endpoint. Only Stripe is fake (and it checks every request against Stripe's spec)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import FAST, clear_jobs, drain
from tests.providers.stripe.answer_lost import first_attempt, stripe_slow_once
from tests.providers.stripe.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.providers.stripe.fake_stripe import events, objects
from tests.providers.stripe.fake_stripe.server import FakeStripe

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def worker(runtime: Runtime, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    # The plugin host reads operator options when it builds an adapter: the app's and the worker's
    # both send Stripe calls to the fake.
    monkeypatch.setenv("BILLPLANE_PROVIDER_STRIPE_API_BASE", fake_stripe.url)
    runtime.sync_options = FAST  # a subscription waiting for its customer looks again at once
    await clear_jobs(runtime)
    return runtime


async def connect(client: Client, tenant: CreatedTenant, secret_key: str = SECRET_KEY) -> Any:
    body = {
        "provider": "stripe",
        "mode": "test",
        "credentials": {"secret_key": secret_key},
        "webhook_secret": WEBHOOK_SECRET,
    }
    return await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)


async def test_a_refused_secret_key_stores_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripebad")
    refused = await connect(client, tenant, secret_key="sk_test_revoked_0000000000")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "credentials"
    assert "sk_test_revoked_0000000000" not in refused.text
    listed = await client.get("/v1/provider-accounts", headers=tenant.headers)
    assert listed.json()["data"] == []


async def test_customers_and_subscriptions_reach_stripe_and_its_webhooks_come_back(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripeflow")
    connected = await connect(client, tenant)
    assert connected.status_code == 201, connected.text
    account_id = connected.json()["id"]

    created = await client.post(
        "/v1/customers", json={"email": "ada@example.com", "name": "Ada"}, headers=tenant.headers
    )
    customer_id = created.json()["id"]
    await drain(worker)
    customer = (await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)).json()
    assert customer["sync_status"] == "synced"
    [mapping] = customer["provider_ids"]
    assert mapping["provider"] == "stripe"
    assert fake_stripe.store.customers[mapping["id"]]["email"] == "ada@example.com"

    subscription = await mirrored_to_stripe(client, worker, tenant, customer_id=customer_id, quantity=3)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert (shown["provider"], shown["provider_account_id"], shown["sync_status"]) == ("stripe", account_id, "synced")
    at_stripe = fake_stripe.store.subscriptions[shown["provider_subscription_id"]]
    [item] = at_stripe["items"]["data"]
    assert item["quantity"] == 3
    assert fake_stripe.store.prices[item["price"]["id"]]["unit_amount"] == 1200

    # Stripe says the renewal failed: the subscription goes past_due here.
    now = datetime.now(UTC)
    state = objects.fixture(
        "subscription",
        id=shown["provider_subscription_id"],
        status="past_due",
        customer=mapping["id"],
        pause_collection=None,
    )
    headers, body = events.sign(
        events.event("customer.subscription.updated", state, created=int(now.timestamp())), [WEBHOOK_SECRET], now
    )
    delivered = await client.post(f"/v1/webhooks/stripe/{account_id}", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    tampered = await client.post(f"/v1/webhooks/stripe/{account_id}", content=body + b" ", headers=headers)
    assert tampered.status_code == 400
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert shown["status"] == "past_due"
    async with worker.database.tenant_session(tenant.schema) as session:
        applied = await session.scalar(text("SELECT count(*) FROM provider_events WHERE status = 'applied'"))
    assert applied == 1


async def test_every_refund_of_one_charge_refunded_is_stored_and_a_redelivery_is_not(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    # One Stripe event listing two refunds: each becomes its own stored event (the store keeps one
    # row per account and event id), and the same delivery again stores neither a second time.
    tenant = await create_tenant(client, admin_headers, "striperefunds")
    connected = await connect(client, tenant)
    assert connected.status_code == 201, connected.text
    account_id = connected.json()["id"]
    refunds = [
        objects.fixture("refund", id=f"re_two_{n}", amount=100 * n, payment_intent="pi_two", status="succeeded")
        for n in (1, 2)
    ]
    charge = objects.fixture(
        "charge", id="ch_two", payment_intent="pi_two", refunds={"object": "list", "data": refunds}
    )
    now = datetime.now(UTC)
    headers, body = events.sign(
        events.event("charge.refunded", charge, created=int(now.timestamp())), [WEBHOOK_SECRET], now
    )

    delivered = await client.post(f"/v1/webhooks/stripe/{account_id}", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json() == {"received": 2, "duplicates": 0}
    again = await client.post(f"/v1/webhooks/stripe/{account_id}", content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"received": 0, "duplicates": 2}
    await drain(worker)  # refunds of a payment billplane does not know: stored and reported, never crashed on

    async with worker.database.tenant_session(tenant.schema) as session:
        stored = (
            await session.execute(
                text("SELECT provider_object_id FROM provider_events WHERE type = 'refund.updated' ORDER BY id")
            )
        ).scalars()
        assert list(stored) == ["re_two_1", "re_two_2"]


async def test_a_payment_method_registers_once_the_customer_is_at_stripe(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripepm")
    assert (await connect(client, tenant)).status_code == 201
    customer_id = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()["id"]
    url = f"/v1/customers/{customer_id}/payment-methods"

    # Not at Stripe yet (its sync is queued): Stripe keeps payment methods on its own customers.
    early = await client.post(url, json={"token": "pm_card_visa"}, headers=tenant.headers)
    assert early.status_code == 409, early.text
    assert "POST /v1/customers" in early.json()["detail"]
    await drain(worker)
    registered = await client.post(url, json={"token": "pm_card_visa"}, headers=tenant.headers)
    assert registered.status_code == 201, registered.text
    method = registered.json()
    assert (method["provider"], method["type"], method["brand"], method["last4"]) == ("stripe", "card", "visa", "4242")
    [mapping] = (await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)).json()["provider_ids"]
    assert fake_stripe.store.payment_methods[method["provider_payment_method_id"]]["customer"] == mapping["id"]
    # billplane's default is Stripe's too: Stripe charges the invoices it issues with its own.
    settings = fake_stripe.store.customers[mapping["id"]]["invoice_settings"]
    assert settings["default_payment_method"] == method["provider_payment_method_id"]


async def test_what_is_asked_of_stripe_again_is_made_again_not_replayed(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    # Stripe replays what it answered a key for a day: a key that named only the token replayed
    # the first attach and default, whatever had happened since.
    tenant = await create_tenant(client, admin_headers, "stripepmagain")
    assert (await connect(client, tenant)).status_code == 201
    customer_id = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()["id"]
    await drain(worker)
    url = f"/v1/customers/{customer_id}/payment-methods"
    [mapping] = (await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)).json()["provider_ids"]

    # Visa the default, then Mastercard, then Visa again: Stripe's default follows billplane's.
    for token in ("pm_card_visa", "pm_card_mastercard", "pm_card_visa"):
        made = await client.post(url, json={"token": token}, headers=tenant.headers)
        assert (made.status_code, made.json()["is_default"]) == (201, True), made.text
        assert fake_stripe.store.customers[mapping["id"]]["invoice_settings"]["default_payment_method"] == token

    # Detached (at Stripe too), then registered again: Stripe refuses a method it detached, and
    # billplane does not show it attached.
    [visa] = [m for m in (await client.get(url, headers=tenant.headers)).json()["data"] if m["is_default"]]
    assert (await client.delete(f"{url}/{visa['id']}", headers=tenant.headers)).status_code == 204
    again = await client.post(url, json={"token": "pm_card_visa"}, headers=tenant.headers)
    assert again.status_code == 422, again.text
    assert again.json()["errors"][0]["field"] == "token"
    shown = [m["provider_payment_method_id"] for m in (await client.get(url, headers=tenant.headers)).json()["data"]]
    assert shown == ["pm_card_mastercard"]


async def test_a_customer_edited_between_two_attempts_of_its_create_is_made_once_and_then_updated(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    fake_stripe: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe made the customer at the first attempt, whose answer was lost; the tenant changed its
    email before the retry. The retry sends what the first attempt sent, and gets that customer
    back (with the new email, Stripe answered idempotency_error: the create failed, and a manual
    sync would have made a second customer); the email follows in the PATCH's own row."""
    tenant = await create_tenant(client, admin_headers, "stripecus")
    assert (await connect(client, tenant)).status_code == 201
    stripe_slow_once(worker, fake_stripe, monkeypatch, "/v1/customers")
    created = await client.post("/v1/customers", json={"email": "ada@example.com"}, headers=tenant.headers)
    path = f"/v1/customers/{created.json()['id']}"

    await first_attempt(worker, fake_stripe.store.customers)
    edited = await client.patch(path, json={"email": "ada@example.org"}, headers=tenant.headers)
    assert edited.status_code == 200, edited.text
    await drain(worker, soon=3.0)

    [made] = fake_stripe.store.customers.values()
    assert made["email"] == "ada@example.org"
    shown = (await client.get(path, headers=tenant.headers)).json()
    assert (shown["sync_status"], [ref["id"] for ref in shown["provider_ids"]]) == ("synced", [made["id"]])
    async with worker.database.tenant_session(tenant.schema) as session:  # the email is not kept there
        assert (await session.execute(text("SELECT kind, sent FROM outbox ORDER BY id"))).all() == [
            ("customer.ensure", None),
            ("customer.update", None),
        ]


async def mirrored_to_stripe(
    client: Client, worker: Runtime, tenant: CreatedTenant, customer_id: int | None = None, **subscription: object
) -> int:
    """A per-seat subscription (of a new customer unless named), mirrored to the tenant's Stripe
    account: its id. Subscriptions are written by the billing engine; here a row stands in for it."""
    if customer_id is None:
        created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
        customer_id = created.json()["id"]
    async with worker.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="API")
        plan = await insert(
            session, "plans", product_id=product, name="Team", pricing_model="per_seat", amount=1200,
            currency="USD", billing_interval="month",
        )  # fmt: skip
        made = await insert(
            session, "subscriptions", customer_id=customer_id, plan_id=plan, status="active", **subscription
        )
    assert (await client.post(f"/v1/subscriptions/{made}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)
    return made


async def test_a_subscriptions_metadata_edited_in_billplane_reaches_stripe(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripemeta")
    assert (await connect(client, tenant)).status_code == 201
    subscription = await mirrored_to_stripe(client, worker, tenant, metadata={"tier": "gold", "region": "eu"})
    url = f"/v1/subscriptions/{subscription}"
    at_stripe = fake_stripe.store.subscriptions[
        (await client.get(url, headers=tenant.headers)).json()["provider_subscription_id"]
    ]
    assert (at_stripe["metadata"]["tier"], at_stripe["metadata"]["region"]) == ("gold", "eu")

    edited = await client.patch(url, json={"metadata": {"tier": "platinum"}}, headers=tenant.headers)
    assert (edited.status_code, edited.json()["sync_status"]) == (200, "pending"), edited.text
    await drain(worker)
    assert at_stripe["metadata"] == {
        "tier": "platinum", "billplane_subscription_id": str(subscription), "billplane_tenant_id": str(tenant.id),
    }  # fmt: skip
    assert (await client.get(url, headers=tenant.headers)).json()["sync_status"] == "synced"

    # The same metadata again is no edit: nothing is queued.
    again = await client.patch(url, json={"metadata": {"tier": "platinum"}}, headers=tenant.headers)
    assert (again.status_code, again.json()["sync_status"]) == (200, "synced"), again.text
    async with worker.database.tenant_session(tenant.schema) as session:
        rows = await session.scalar(text("SELECT count(*) FROM outbox WHERE kind = 'subscription.metadata'"))
    assert rows == 1


async def test_stripes_news_of_a_subscription_is_not_held_back_nor_dropped_for_a_metadata_edit(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "stripemetanews")
    account_id = (await connect(client, tenant)).json()["id"]
    subscription = await mirrored_to_stripe(client, worker, tenant)
    url = f"/v1/subscriptions/{subscription}"
    shown = (await client.get(url, headers=tenant.headers)).json()
    # Stripe's renewal failed a minute ago; its event reaches billplane after a metadata edit.
    failed_at = int(datetime.now(UTC).timestamp()) - 60
    state = objects.fixture(
        "subscription", id=shown["provider_subscription_id"], status="past_due", pause_collection=None,
        customer=fake_stripe.store.subscriptions[shown["provider_subscription_id"]]["customer"],
    )  # fmt: skip
    edited = await client.patch(url, json={"metadata": {"note": "vip"}}, headers=tenant.headers)
    assert edited.status_code == 200, edited.text

    headers, body = events.sign(
        events.event("customer.subscription.updated", state, created=failed_at), [WEBHOOK_SECRET], datetime.now(UTC)
    )
    assert (await client.post(f"/v1/webhooks/stripe/{account_id}", content=body, headers=headers)).status_code == 200
    await drain(worker)
    shown = (await client.get(url, headers=tenant.headers)).json()
    assert (shown["status"], shown["metadata"], shown["sync_status"]) == ("past_due", {"note": "vip"}, "synced")
