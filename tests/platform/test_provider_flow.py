"""End to end with the real parts: the installed `sandbox` provider, accounts stored through the API
and resolved by `DatabaseAccountSource`, the real job queue and worker, the real webhook endpoint.

Nothing here is faked. The one wrapper (`counting_host`) is the real sandbox adapter with a tally
of its `ensure_customer` calls, because the sandbox keeps no state that could be asked afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from billplane_sandbox import delivery, events, payment_methods
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.credentials import SandboxCredentials
from billplane_sandbox.plugin import PLUGIN
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.app import create_app
from billplane.plugins import AdapterContext, ChargeRequest, CustomerData, ProviderAdapter, ProviderRef
from billplane.plugins.contract import SubscriptionStatus
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from billplane.settings import Settings
from tests.conftest import ADMIN_KEY, CreatedTenant, create_tenant, unique_slug
from tests.platform.billing_seed import insert, subscribed
from tests.platform.sync_fakes import as_worker, clear_jobs, drain, wait_for_jobs

Client = AsyncTestClient[Litestar]
ACCOUNTS = "/v1/provider-accounts"
API_KEY = "sk_sandbox_e2e_0123456789"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    """A runtime on the test's loop that runs the real worker, with the real `DatabaseAccountSource`."""
    return await as_worker(runtime)


def counting_host(calls: list[str]) -> PluginHost:
    """A plugin host whose `sandbox` is the real adapter, noting each `ensure_customer` idempotency key."""

    class CountingSandbox(SandboxAdapter):
        async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
            calls.append(idempotency_key)
            return await super().ensure_customer(customer, idempotency_key=idempotency_key)

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        assert isinstance(context.credentials, SandboxCredentials)
        return CountingSandbox(context, context.credentials)

    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter))
    return host


async def connect_sandbox(client: Client, tenant: CreatedTenant, webhook_secret: str) -> dict[str, Any]:
    body = {
        "provider": "sandbox",
        "mode": "test",
        "credentials": {"api_key": API_KEY},
        "webhook_secret": webhook_secret,
    }
    response = await client.post(ACCOUNTS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


async def queued_for(runtime: Runtime, tenant: CreatedTenant, count: int, task: str) -> None:
    """Wait until the app's doorbell has deferred ``count`` jobs of ``task`` for this tenant (after its response)."""
    with anyio.fail_after(5):
        while True:
            jobs = await wait_for_jobs(runtime, 0)
            if sum(job["task"] == task and job["schema"] == tenant.schema for job in jobs) >= count:
                return
            await anyio.sleep(0.02)


async def stored_accounts(runtime: Runtime, tenant: CreatedTenant) -> int:
    async with runtime.database.control_session() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM control.provider_accounts WHERE tenant_id = :tenant"), {"tenant": tenant.id}
        )
    return int(count or 0)


async def rows(runtime: Runtime, tenant: CreatedTenant, query: str, **binds: object) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        result = await session.execute(text(query), binds)
        return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def test_a_connected_sandbox_account_mirrors_a_customer_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "flow")

    bad_key = {"provider": "sandbox", "mode": "test", "credentials": {"api_key": "sk_live_x"}, "webhook_secret": "w"}
    refused = await client.post(ACCOUNTS, json=bad_key, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert error["field"] == "credentials"
    assert "sk_sandbox_" in error["message"]  # the sandbox's own reason
    assert "sk_live_x" not in refused.text  # never echoed
    assert await stored_accounts(worker, tenant) == 0

    account = await connect_sandbox(client, tenant, "whsec_flow_0123456789")
    assert (account["provider"], account["mode"], account["is_default"]) == ("sandbox", "test", True)
    assert account["credentials_hint"] == {"api_key": "...6789"}
    assert account["webhook_secret_set"] is True
    assert API_KEY not in json.dumps(account)
    assert "whsec_flow_0123456789" not in json.dumps(account)

    created = await client.post("/v1/customers", json={"email": "grace@example.com"}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    customer = created.json()
    assert (customer["sync_status"], customer["provider_ids"]) == ("pending", [])

    calls: list[str] = []
    worker.plugins = counting_host(calls)
    # A create queues no job itself: a waiting worker's listener (or, here, the sweep) defers it.
    await drain(worker)
    path = f"/v1/customers/{customer['id']}"
    synced = (await client.get(path, headers=tenant.headers)).json()
    assert (synced["sync_status"], synced["last_sync_error"]) == ("synced", None)
    [provider_id] = synced["provider_ids"]
    assert (provider_id["provider"], provider_id["provider_account_id"]) == ("sandbox", account["id"])
    assert provider_id["id"].startswith("sbx_cus_")
    [outbox_row] = await rows(worker, tenant, "SELECT id, status FROM outbox")
    assert calls == [f"billplane-{tenant.id}-{outbox_row['id']}"]

    # The worker again (sweep included), and a manual sync with nothing to do: no new provider call.
    await drain(worker)
    resynced = await client.post(f"{path}/sync", headers=tenant.headers)
    assert resynced.status_code == 202, resynced.text
    await drain(worker)
    again = (await client.get(path, headers=tenant.headers)).json()
    assert (again["sync_status"], again["provider_ids"]) == ("synced", [provider_id])
    assert calls == [f"billplane-{tenant.id}-{outbox_row['id']}"]
    assert await rows(worker, tenant, "SELECT id, status FROM outbox") == [outbox_row | {"status": "done"}]
    mirrored = await rows(worker, tenant, "SELECT provider_customer_id FROM provider_customers")
    assert mirrored == [{"provider_customer_id": provider_id["id"]}]


async def test_rows_at_a_deleted_account_no_longer_decide_a_status_nor_are_sent_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "flow")
    account = await connect_sandbox(client, tenant, "whsec_gone_0123456789")
    created = await client.post("/v1/customers", json={"email": "ada@example.com"}, headers=tenant.headers)
    path = f"/v1/customers/{created.json()['id']}"
    await drain(worker)  # made at the sandbox, then an update failed there
    async with worker.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "outbox", kind="customer.update", object_id=created.json()["id"],
            provider_account_id=account["id"], status="failed", last_error="no such customer",
        )  # fmt: skip
        await session.execute(text("UPDATE customers SET sync_status = 'failed', last_sync_error = 'no such customer'"))

    deleted = await client.delete(f"{ACCOUNTS}/{account['id']}", headers=tenant.headers)
    assert deleted.status_code == 204, deleted.text
    shown = (await client.get(path, headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["last_sync_error"]) == ("none", None)
    assert [ref["provider_account_id"] for ref in shown["provider_ids"]] == [account["id"]]  # still named

    # Neither an edit (its provider_ids name the account) nor a manual sync sends anything there.
    assert (await client.patch(path, json={"name": "Ada"}, headers=tenant.headers)).status_code == 200
    assert (await client.post(f"{path}/sync", headers=tenant.headers)).status_code == 202
    assert await rows(worker, tenant, "SELECT kind, status FROM outbox ORDER BY id") == [
        {"kind": "customer.ensure", "status": "done"},
        {"kind": "customer.update", "status": "failed"},
    ]
    assert (await client.get(path, headers=tenant.headers)).json()["sync_status"] == "none"


async def test_a_customer_deleted_at_the_sandbox_is_created_there_again_by_a_manual_sync(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "flow")
    account = await connect_sandbox(client, tenant, "whsec_again_0123456789")
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    await drain(worker)
    path = f"/v1/customers/{customer['id']}"
    [first] = (await client.get(path, headers=tenant.headers)).json()["provider_ids"]

    deleted = events.sign(events.customer_deleted(first["id"]), "whsec_again_0123456789")
    assert (await post_webhook(client, account["id"], deleted)).json() == {"received": 1, "duplicates": 0}
    await drain(worker)
    assert (await client.get(path, headers=tenant.headers)).json()["provider_ids"] == []

    synced = await client.post(f"{path}/sync", headers=tenant.headers)
    assert synced.status_code == 202, synced.text
    assert synced.json()["sync_status"] == "pending"  # something was queued
    await drain(worker)
    again = (await client.get(path, headers=tenant.headers)).json()
    [second] = again["provider_ids"]
    assert again["sync_status"] == "synced"
    assert second["provider_account_id"] == account["id"]
    assert second["id"].startswith("sbx_cus_")
    assert second["id"] != first["id"]  # a new outbox row, a new key: a new customer at the provider
    ensures = await rows(worker, tenant, "SELECT kind, status FROM outbox ORDER BY id")
    assert ensures == [{"kind": "customer.ensure", "status": "done"}] * 2


async def subscription_at(runtime: Runtime, tenant: CreatedTenant, account_id: int, provider_id: str) -> int:
    """A local subscription mirrored at the tenant's sandbox account as ``provider_id``."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(
            session, provider="sandbox", provider_account_id=account_id, provider_subscription_id=provider_id
        )
        return subscription


async def post_webhook(client: Client, account_id: int, webhook: events.SignedWebhook) -> Any:
    """Exactly as docs/plugins/sandbox.md shows it: the signed body with the sandbox's own headers."""
    return await client.post(f"/v1/webhooks/sandbox/{account_id}", content=webhook.body, headers=webhook.headers)


async def test_signed_sandbox_webhooks_are_stored_once_applied_in_order_and_stay_in_their_tenant(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    mine, theirs = (
        await create_tenant(client, admin_headers, "flow"),
        await create_tenant(client, admin_headers, "flow"),
    )
    my_secret, their_secret = "whsec_mine_0123456789", "whsec_theirs_0123456789"
    my_account = (await connect_sandbox(client, mine, my_secret))["id"]
    their_account = (await connect_sandbox(client, theirs, their_secret))["id"]
    shared_id = "sbx_sub_same_everywhere"  # the same provider id at both accounts: the account decides
    my_subscription = await subscription_at(worker, mine, my_account, shared_id)
    their_subscription = await subscription_at(worker, theirs, their_account, shared_id)
    # The sandbox does not bill its subscriptions, so of its word billplane takes the end, not a
    # dunning status (its own): a cancellation at the period end shows the pipeline.
    subscriptions = "SELECT cancel_at_period_end, provider_event_at FROM subscriptions WHERE id = :id"
    stored = "SELECT event_id, type, status, detail, raw_body, applied_at FROM provider_events ORDER BY id"

    ending = events.subscription_updated(shared_id, "active", cancel_at_period_end=True, occurred_at=T0)
    ending_webhook = events.sign(ending, my_secret)
    first = await post_webhook(client, my_account, ending_webhook)
    assert (first.status_code, first.json()) == (200, {"received": 1, "duplicates": 0})
    [received] = await rows(worker, mine, stored)
    assert (received["status"], received["raw_body"]) == ("received", ending_webhook.body)
    assert await rows(worker, mine, subscriptions, id=my_subscription) == [
        {"cancel_at_period_end": False, "provider_event_at": None}
    ]

    await queued_for(worker, mine, 1, "billplane.apply_event")
    await drain(worker, sweep=False)
    assert await rows(worker, mine, subscriptions, id=my_subscription) == [
        {"cancel_at_period_end": True, "provider_event_at": T0}
    ]
    [applied] = await rows(worker, mine, stored)
    assert (applied["status"], applied["detail"]) == ("applied", None)

    # The same delivery again: a 200 duplicate that stores and changes nothing.
    duplicate = await post_webhook(client, my_account, ending_webhook)
    assert (duplicate.status_code, duplicate.json()) == (200, {"received": 0, "duplicates": 1})
    await drain(worker)
    assert await rows(worker, mine, stored) == [applied]

    # An older event of the same subscription, delivered late: stored, then ignored by the watermark.
    late = events.sign(
        events.subscription_updated(shared_id, "active", occurred_at=T0 - timedelta(minutes=1)), my_secret
    )
    assert (await post_webhook(client, my_account, late)).json() == {"received": 1, "duplicates": 0}
    await drain(worker)
    assert await rows(worker, mine, subscriptions, id=my_subscription) == [
        {"cancel_at_period_end": True, "provider_event_at": T0}
    ]
    ignored = (await rows(worker, mine, stored))[-1]
    assert (ignored["event_id"], ignored["status"]) == (json.loads(late.body)["id"], "ignored")
    assert ignored["detail"] == "older than the last event applied to this subscription"

    # Tampered: the body changed after signing, a signature from another secret, my event at their account.
    canceled = events.sign(events.subscription_canceled(shared_id, occurred_at=T0 + timedelta(hours=1)), my_secret)
    forged_body = events.SignedWebhook(ending_webhook.headers, ending_webhook.body.replace(b'"active"', b'"canceled"'))
    wrong_secret = events.sign(events.subscription_canceled(shared_id), "whsec_someone_else")
    for account_id, webhook in [(my_account, forged_body), (my_account, wrong_secret), (their_account, canceled)]:
        refused = await post_webhook(client, account_id, webhook)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    await drain(worker)
    assert len(await rows(worker, mine, stored)) == 2
    assert await rows(worker, mine, subscriptions, id=my_subscription) == [
        {"cancel_at_period_end": True, "provider_event_at": T0}
    ]

    # Their subscription has the same provider id, at their own account: nothing reached it.
    assert await rows(worker, theirs, stored) == []
    assert await rows(worker, theirs, subscriptions, id=their_subscription) == [
        {"cancel_at_period_end": False, "provider_event_at": None}
    ]


async def test_a_subscription_canceled_at_the_provider_leaves_its_credit_to_the_customer(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "flowcr")
    secret = "whsec_mine_0123456789"
    account = (await connect_sandbox(client, tenant, secret))["id"]
    subscription = await subscription_at(worker, tenant, account, "sbx_sub_credit")
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = (await session.execute(text("SELECT customer_id FROM subscriptions"))).scalar_one()
        # billplane bills it (the sandbox does not): its period was invoiced here, then a downgrade credited.
        billed = {"currency": "USD", "subtotal": 1000, "total": 1000, "status": "paid", "amount_paid": 1000}
        await insert(session, "invoices", customer_id=customer, subscription_id=subscription, **billed)
        await insert(
            session, "invoice_items", customer_id=customer, subscription_id=subscription, description="Unused time",
            quantity=1, unit_amount=-300, amount=-300, currency="USD",
        )  # fmt: skip

    canceled = events.sign(events.subscription_canceled("sbx_sub_credit", occurred_at=T0), secret)
    assert (await post_webhook(client, account, canceled)).status_code == 200
    await drain(worker)

    ended = await rows(worker, tenant, "SELECT status FROM subscriptions")
    assert ended == [{"status": "canceled"}]
    # The customer's next invoice takes it (``billing.customer_credit``).
    assert await rows(worker, tenant, "SELECT subscription_id FROM invoice_items") == [{"subscription_id": None}]


async def test_only_a_provider_that_bills_the_subscription_moves_its_period(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "flowper")
    secret = "whsec_mine_0123456789"
    account = (await connect_sandbox(client, tenant, secret))["id"]
    await subscription_at(worker, tenant, account, "sbx_sub_period")
    now = datetime.now(UTC).replace(microsecond=0)  # not due: no billing run moves it meanwhile
    local = (now - timedelta(days=1), now + timedelta(days=29))
    later = (local[1], local[1] + timedelta(days=30))
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("UPDATE subscriptions SET current_period_start = :start, current_period_end = :end"),
            {"start": local[0], "end": local[1]},
        )
    periods = "SELECT status, current_period_start, current_period_end FROM subscriptions"

    async def moved(status: SubscriptionStatus, occurred_at: datetime) -> list[dict[str, Any]]:
        event = events.subscription_updated(
            "sbx_sub_period",
            status,
            current_period_start=later[0],
            current_period_end=later[1],
            occurred_at=occurred_at,
        )
        assert (await post_webhook(client, account, events.sign(event, secret))).status_code == 200
        await drain(worker)
        return await rows(worker, tenant, periods)

    # The sandbox does not bill its subscriptions: billplane does, by its own period and dunning.
    assert await moved("past_due", T0) == [
        {"status": "active", "current_period_start": local[0], "current_period_end": local[1]}
    ]
    host = PluginHost(["sandbox"])  # now one that bills them, as Stripe and PayPal do: its period is taken
    host.register(dataclasses.replace(PLUGIN, bills_subscriptions=True))
    worker.plugins = host
    assert await moved("past_due", T0 + timedelta(minutes=1)) == [
        {"status": "past_due", "current_period_start": later[0], "current_period_end": later[1]}
    ]


@asynccontextmanager
async def serving(app: Litestar, sock: socket.socket) -> AsyncIterator[None]:
    """The app behind uvicorn on ``sock`` (a bound loopback socket), in a thread, stopped at the end."""
    server = uvicorn.Server(uvicorn.Config(app, loop="asyncio", http="h11", lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="billplane-e2e-server")
    thread.start()
    try:
        with anyio.fail_after(15):
            while not server.started:
                assert thread.is_alive(), "the server thread died while starting"
                await anyio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join, 15)
        assert not thread.is_alive(), "the server did not stop"


async def test_the_sandbox_delivers_a_pending_outcome_to_billplanes_own_endpoint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="billplane_sandbox")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # Operator options are set before anything reads them, as a deployment would set them.
        monkeypatch.setenv("BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL", base)
        monkeypatch.setenv("BILLPLANE_PROVIDER_SANDBOX_PENDING_DELAY_SECONDS", "0")
        app = create_app(settings)
        worker = Runtime.from_settings(settings)
        try:
            await clear_jobs(worker)
            async with serving(app, sock), httpx.AsyncClient(base_url=base, timeout=10) as http:
                await check_delivery(http, worker)
        finally:
            await worker.close()
    assert [record.getMessage() for record in caplog.records if record.name == "billplane_sandbox"] == []


async def check_delivery(http: httpx.AsyncClient, worker: Runtime) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = await http.post("/v1/admin/tenants", json={"slug": unique_slug("flow"), "name": "Flow"}, headers=admin)
    assert created.status_code == 201, created.text
    tenant_body, key = created.json()["tenant"], created.json()["api_key"]
    tenant = CreatedTenant(tenant_body["id"], tenant_body["slug"], key["key"], key["id"])
    body = {"provider": "sandbox", "mode": "test", "credentials": {"api_key": API_KEY}, "webhook_secret": "whsec_dl_1"}
    connected = await http.post(ACCOUNTS, json=body, headers=tenant.headers)
    assert connected.status_code == 201, connected.text
    account_id = connected.json()["id"]

    # Charge as the billing engine will: through the account's own adapter, resolved from the database.
    assert worker.accounts is not None
    account = await worker.accounts.account(account_id)
    assert account is not None
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
    request = ChargeRequest(payment_id=1, amount=1999, currency="USD", payment_method=payment_methods.PENDING_SUCCEEDS)
    charged = await account.adapter.charge(request, idempotency_key=f"billplane-{tenant.id}-charge-1")
    assert charged.status == "pending"
    # The payment as the engine will have recorded it, pending, before any outcome is applied.
    async with worker.database.tenant_session(tenant.schema) as session:
        payment = await insert(
            session, "payments", customer_id=customer, status="pending", amount=1999, currency="USD",
            provider="sandbox", provider_account_id=account_id, provider_payment_id=charged.provider_payment_id,
        )  # fmt: skip
    # A retried charge (same key) settles with the same event; a charge billplane never recorded fails later.
    retried = await account.adapter.charge(request, idempotency_key=f"billplane-{tenant.id}-charge-1")
    assert retried.provider_payment_id == charged.provider_payment_id
    failing = ChargeRequest(payment_id=2, amount=500, currency="USD", payment_method=payment_methods.PENDING_FAILS)
    unknown = await account.adapter.charge(failing, idempotency_key=f"billplane-{tenant.id}-charge-2")
    # Three POSTs from this loop; the sandbox logs a warning for any not answered 2xx (none, below).
    await delivery.wait_for_deliveries()

    stored = await rows(
        worker, tenant, "SELECT event_id, type, provider_object_id, status, detail, raw_body FROM provider_events "
        "ORDER BY provider_object_id = :paid DESC", paid=charged.provider_payment_id,
    )  # fmt: skip
    assert [(row["type"], row["provider_object_id"], row["status"]) for row in stored] == [
        ("payment.succeeded", charged.provider_payment_id, "received"),
        ("payment.failed", unknown.provider_payment_id, "received"),
    ]
    await queued_for(worker, tenant, 2, "billplane.apply_event")  # deferred by the served app itself
    await drain(worker, sweep=False)
    outcomes = await rows(worker, tenant, "SELECT provider_object_id, status, detail FROM provider_events ORDER BY id")
    assert {row["provider_object_id"]: (row["status"], row["detail"]) for row in outcomes} == {
        charged.provider_payment_id: ("applied", None),
        unknown.provider_payment_id: (
            "ignored",
            "no local payment, invoice, subscription or customer matches this payment",
        ),
    }
    shown = await http.get(f"/v1/payments/{payment}", headers=tenant.headers)
    assert (shown.json()["status"], shown.json()["provider_payment_id"]) == ("succeeded", charged.provider_payment_id)
