"""Every POST route honours Idempotency-Key: taken from the app's route table, so new routes are
covered automatically. A POST route without a sample request below fails until one is added.
Provider webhooks are the exception: they deduplicate by the provider's event id instead."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from billplane.app import create_app
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from tests.conftest import CreatedTenant, create_tenant, unique_slug
from tests.platform.billing_seed import their_provider_event, their_subscription
from tests.platform.invoices.idempotency_samples import INVOICE_SAMPLES
from tests.platform.provider_accounts_fake import FakeProvider, good_body
from tests.platform.test_clocks.samples import CLOCK_SAMPLES

Client = AsyncTestClient[Litestar]
# (path, body) for a valid first request, made with the tenant's key (or the admin key under /v1/admin).
Sample = Callable[[Client, CreatedTenant], Awaitable[tuple[str, dict[str, Any]]]]


async def _new_tenant(_client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return "/v1/admin/tenants", {"slug": unique_slug("idem"), "name": "Idem"}


async def _new_customer(_client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return "/v1/customers", {"email": "idem@example.com", "metadata": {"k": "v"}}


async def _new_product(_client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return "/v1/products", {"name": "Idem", "metadata": {"k": "v"}}


async def _new_plan(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    product = await client.post("/v1/products", json={"name": "Idem"}, headers=tenant.headers)
    assert product.status_code == 201, product.text
    tiers = [{"up_to": 10, "unit_amount_decimal": "0.125"}, {"up_to": None, "unit_amount": 1}]
    return "/v1/plans", {
        "product_id": product.json()["id"],
        "name": "Idem",
        "pricing_model": "tiered",
        "currency": "usd",
        "billing_interval": "month",
        "tiers": tiers,
    }


async def _new_provider_account(client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    FakeProvider().install(client.app)
    return "/v1/provider-accounts", good_body(webhook_secret="whsec_idempotent_0000")


async def _check_provider_account(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    path, body = await _new_provider_account(client, tenant)
    account = await client.post(path, json=body, headers=tenant.headers)
    assert account.status_code == 201, account.text
    return f"/v1/provider-accounts/{account.json()['id']}/check", {}


async def _customer_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    customer = await client.post("/v1/customers", json={"name": "Idem"}, headers=tenant.headers)
    assert customer.status_code == 201, customer.text
    return f"/v1/customers/{customer.json()['id']}/sync", {}


async def _product_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    product = await client.post("/v1/products", json={"name": "Idem"}, headers=tenant.headers)
    assert product.status_code == 201, product.text
    return f"/v1/products/{product.json()['id']}/sync", {}


async def _plan_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    path, body = await _new_plan(client, tenant)
    plan = await client.post(path, json=body, headers=tenant.headers)
    assert plan.status_code == 201, plan.text
    return f"/v1/plans/{plan.json()['id']}/sync", {}


async def _subscription_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return f"/v1/subscriptions/{await their_subscription(client, tenant)}/sync", {}


async def _usage_records(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    record = {"quantity": 1, "timestamp": "2025-01-15T10:00:00Z", "client_event_id": "idem-1"}
    return "/v1/usage-records", {
        "records": [record | {"subscription_id": int(await their_subscription(client, tenant))}]
    }


async def _new_subscription(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    _, plan = await _new_plan(client, tenant)
    created = await client.post("/v1/plans", json=plan, headers=tenant.headers)
    customer = await client.post("/v1/customers", json={"name": "Idem"}, headers=tenant.headers)
    assert created.status_code == customer.status_code == 201, created.text
    return "/v1/subscriptions", {"customer_id": customer.json()["id"], "plan_id": created.json()["id"]}


def _subscription_action(
    action: str, body: dict[str, Any], *, first: tuple[str, dict[str, Any]] | None = None
) -> Sample:
    """``action`` on a new subscription, after the action ``first`` (its path and body) if given."""

    async def sample(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
        path, create = await _new_subscription(client, tenant)
        subscription = await client.post(path, json=create, headers=tenant.headers)
        url = f"/v1/subscriptions/{subscription.json()['id']}"
        if first is not None:
            step, step_body = first
            assert (await client.post(f"{url}/{step}", json=step_body, headers=tenant.headers)).status_code == 200
        return f"{url}/{action}", body

    return sample


async def _new_webhook_endpoint(_client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return "/v1/webhook-endpoints", {"url": "https://hooks.example.com/idem", "enabled_events": ["invoice.*"]}


async def _webhook_endpoint_action(client: Client, tenant: CreatedTenant, action: str) -> tuple[str, dict[str, Any]]:
    path, body = await _new_webhook_endpoint(client, tenant)
    endpoint = await client.post(path, json=body, headers=tenant.headers)
    assert endpoint.status_code == 201, endpoint.text
    return f"/v1/webhook-endpoints/{endpoint.json()['id']}/{action}", {}


async def _reapply_provider_event(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    # An ignored event of the tenant's own: the only kind a reapply takes.
    return f"/v1/provider-events/{await their_provider_event(client, tenant)}/reapply", {}


def _samples() -> dict[str, Sample]:
    async def action(name: str, _client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
        return f"/v1/admin/tenants/{tenant.slug}/{name}", {}

    def admin_action(name: str) -> Sample:
        return lambda client, tenant: action(name, client, tenant)

    return {
        "/v1/admin/tenants": _new_tenant,
        "/v1/admin/tenants/{slug:str}/suspend": admin_action("suspend"),
        "/v1/admin/tenants/{slug:str}/resume": admin_action("resume"),
        "/v1/admin/tenants/{slug:str}/api-keys": admin_action("api-keys"),
        "/v1/customers": _new_customer,
        "/v1/products": _new_product,
        "/v1/plans": _new_plan,
        "/v1/provider-accounts": _new_provider_account,
        "/v1/provider-accounts/{account_id:int}/check": _check_provider_account,
        "/v1/customers/{customer_id:int}/sync": _customer_sync,
        "/v1/products/{product_id:int}/sync": _product_sync,
        "/v1/plans/{plan_id:int}/sync": _plan_sync,
        "/v1/subscriptions/{subscription_id:int}/sync": _subscription_sync,
        "/v1/usage-records": _usage_records,
        "/v1/subscriptions": _new_subscription,
        "/v1/subscriptions/{subscription_id:int}/cancel": _subscription_action("cancel", {"at_period_end": True}),
        "/v1/subscriptions/{subscription_id:int}/pause": _subscription_action("pause", {}),
        "/v1/subscriptions/{subscription_id:int}/resume": _subscription_action("resume", {}, first=("pause", {})),
        "/v1/subscriptions/{subscription_id:int}/undo-cancel": _subscription_action(
            "undo-cancel", {}, first=("cancel", {"at_period_end": True})
        ),
        "/v1/subscriptions/{subscription_id:int}/preview": _subscription_action("preview", {"quantity": 3}),
        "/v1/webhook-endpoints": _new_webhook_endpoint,
        "/v1/webhook-endpoints/{endpoint_id:int}/replay": lambda c, t: _webhook_endpoint_action(c, t, "replay"),
        "/v1/webhook-endpoints/{endpoint_id:int}/rotate-secret": lambda c, t: _webhook_endpoint_action(
            c, t, "rotate-secret"
        ),
        "/v1/provider-events/{provider_event_id:int}/reapply": _reapply_provider_event,
        **INVOICE_SAMPLES,
        **CLOCK_SAMPLES,
    }


SAMPLES = _samples()


def post_routes() -> list[str]:
    settings = Settings(
        database=DatabaseSettings(url="postgresql://collect@127.0.0.1:1/none"),
        security=SecuritySettings(admin_key="x" * 32, secret_key="y" * 32),
    )
    return [
        route.path
        for route in create_app(settings).routes
        if isinstance(route, HTTPRoute)
        and "POST" in route.methods
        # Provider webhooks carry no Idempotency-Key: each event is stored once by its own id.
        and not re.match(r"^/(schema|v1/webhooks)", route.path)
    ]


def test_there_are_post_routes_to_check() -> None:
    assert {"/v1/admin/tenants", "/v1/customers"} <= set(post_routes())


@pytest.mark.parametrize("route", post_routes())
async def test_post_route_replays_its_first_response(route: str, client: Client, admin_headers: dict[str, str]) -> None:
    if route not in SAMPLES:
        pytest.fail(f"add a SAMPLES entry for POST {route} so its Idempotency-Key handling is tested")
    tenant = await create_tenant(client, admin_headers, "idem")
    path, body = await SAMPLES[route](client, tenant)
    auth = admin_headers if path.startswith("/v1/admin") else tenant.headers
    headers = auth | {"Idempotency-Key": unique_slug("key")}

    first = await client.post(path, json=body, headers=headers)
    again = await client.post(path, json=body, headers=headers)
    mismatch = await client.post(path, json=body | {"unexpected_difference": 1}, headers=headers)

    assert 200 <= first.status_code < 300, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers.get("idempotent-replayed") == "true"
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["field"] == "Idempotency-Key"
