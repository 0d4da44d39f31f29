"""Tenant isolation over every tenant route, taken from the app's route table.

Two tenants get identical data. Every tenant route is called with tenant A's key, with path
parameters naming tenant B's objects; A must never read B's rows (B's marker never appears) nor
change them (B's schema content is byte-for-byte the same afterwards). Routes added later are
covered automatically; a route with a path parameter this file cannot fill fails until a sample is
added to PATH_SAMPLES.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.app import create_app
from billplane.audit.models import AuditEvent
from billplane.db.tenant_models import tenant_metadata
from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import (
    their_invoice,
    their_invoice_item,
    their_payment,
    their_payment_method,
    their_provider_event,
    their_refund,
    their_subscription,
)
from tests.platform.listable import events_listable
from tests.platform.provider_accounts_fake import FakeProvider, good_body
from tests.platform.test_clocks.samples import their_clock

# Webhooks take no tenant key: the provider's signature for one account authenticates them (their
# own tests cover that a delivery reaches only that account's tenant: test_webhooks.py).
NOT_TENANT_ROUTES = re.compile(r"^/(v1/admin|v1/webhooks|health|schema|swagger)(/|$)")
Client = AsyncTestClient[Litestar]


async def _their_customer(client: Client, theirs: CreatedTenant) -> str:
    response = await client.post("/v1/customers", json={"name": theirs.slug}, headers=theirs.headers)
    return str(response.json()["id"])


async def _their_product(client: Client, theirs: CreatedTenant) -> str:
    response = await client.post("/v1/products", json={"name": theirs.slug}, headers=theirs.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _their_plan(client: Client, theirs: CreatedTenant) -> str:
    # Tiered, with a feature, so a leaked delete or update would show in pricing_tiers and plan_features too.
    body = {
        "product_id": int(await _their_product(client, theirs)),
        "name": theirs.slug,
        "pricing_model": "tiered",
        "currency": "USD",
        "billing_interval": "month",
        "tiers": [{"up_to": 10, "unit_amount_decimal": "0.5"}, {"up_to": None, "unit_amount": 1}],
        "features": [{"key": "seats", "limit": 5}],
    }
    response = await client.post("/v1/plans", json=body, headers=theirs.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _their_provider_account(client: Client, theirs: CreatedTenant) -> str:
    # Accounts live in the control schema: test_provider_accounts.py checks B's rows there too.
    FakeProvider().install(client.app)
    body = good_body(label=theirs.slug, webhook_secret=f"whsec_{theirs.slug}")
    response = await client.post("/v1/provider-accounts", json=body, headers=theirs.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _their_webhook_endpoint(client: Client, theirs: CreatedTenant) -> str:
    body = {"url": f"https://{theirs.slug.replace('_', '-')}.example.com/hooks"}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=theirs.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _their_event(client: Client, theirs: CreatedTenant) -> str:
    # Creating an endpoint records an event that only B has.
    await _their_webhook_endpoint(client, theirs)
    await events_listable(client.app.state.runtime.settings.database.url)
    response = await client.get("/v1/events?type=webhook_endpoint.created", headers=theirs.headers)
    return str(response.json()["data"][-1]["id"])


# Path parameter name -> how to make an object of that kind that only tenant B has, returning its id.
# Both tenants hold the same seed rows, so this object's id exists in B alone.
PATH_SAMPLES: dict[str, Callable[[Client, CreatedTenant], Awaitable[str]]] = {
    "customer_id": _their_customer,
    "product_id": _their_product,
    "plan_id": _their_plan,
    "subscription_id": their_subscription,
    "invoice_id": their_invoice,
    "item_id": their_invoice_item,
    "payment_id": their_payment,
    "refund_id": their_refund,
    "method_id": their_payment_method,
    "account_id": _their_provider_account,
    "provider_event_id": their_provider_event,
    "endpoint_id": _their_webhook_endpoint,
    "event_id": _their_event,
    "clock_id": their_clock,
}


# Valid bodies for routes whose required fields are checked before the objects they name: with
# `{}`, a 422 would answer before the 404 the test expects.
BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/v1/customers/{customer_id:int}/payment-methods"): {"token": "pm_sandbox_succeeds"},
}


def tenant_routes() -> list[tuple[str, str]]:
    # Building the app opens no connection, so the route table is known at collection time.
    settings = Settings(
        database=DatabaseSettings(url="postgresql://collect@127.0.0.1:1/none"),
        security=SecuritySettings(admin_key="x" * 32, secret_key="y" * 32),
    )
    routes = []
    for route in create_app(settings).routes:
        if isinstance(route, HTTPRoute) and not NOT_TENANT_ROUTES.match(route.path):
            routes += [
                (str(method), route.path) for method in sorted(route.methods) if method not in {"HEAD", "OPTIONS"}
            ]
    return routes


def test_the_route_table_has_tenant_routes() -> None:
    assert ("GET", "/v1/tenant") in tenant_routes()


async def _seed(client: Client, runtime: Runtime, tenant: CreatedTenant) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        session.add_all(AuditEvent(actor="seed", action=f"seed.{i}", data={"n": i}) for i in range(3))
    for i in range(3):
        await client.post("/v1/customers", json={"name": f"seed {i}", "external_id": f"s{i}"}, headers=tenant.headers)


async def _content(runtime: Runtime, tenant: CreatedTenant) -> str:
    parts = []
    async with runtime.database.transaction() as connection:
        for table in tenant_metadata.sorted_tables:
            rows = await connection.execute(
                text(f'SELECT to_jsonb(t)::text FROM "{tenant.schema}".{table.name} t ORDER BY 1')
            )
            parts.append(f"{table.name}: {json.dumps(list(rows.scalars()))}")
    return "\n".join(parts)


async def _fill(path: str, client: Client, owner: CreatedTenant) -> str:
    filled = path
    for name in re.findall(r"\{(\w+)(?::\w+)?\}", path):
        if name not in PATH_SAMPLES:
            pytest.fail(f"add a PATH_SAMPLES entry for {{{name}}} so the isolation test covers {path}")
        value = await PATH_SAMPLES[name](client, owner)
        filled = re.sub(rf"\{{{name}(?::\w+)?\}}", value, filled)
    return filled


@pytest.mark.parametrize(("http_method", "path"), tenant_routes())
async def test_tenant_route_never_crosses_tenants(
    http_method: str, path: str, client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> None:
    mine, theirs = await create_tenant(client, admin_headers, "iso"), await create_tenant(client, admin_headers, "iso")
    for tenant in (mine, theirs):
        await _seed(client, runtime, tenant)
    target = await _fill(path, client, theirs)
    before = await _content(runtime, theirs)

    body: dict[str, object] | None = {} if http_method in {"POST", "PUT", "PATCH"} else None
    body = BODIES.get((http_method, path), body)
    response = await client.request(http_method, target, headers=mine.headers, json=body)

    assert response.status_code < 500, response.text
    assert theirs.slug not in response.text
    assert await _content(runtime, theirs) == before
    if "{" in path:  # naming another tenant's object must look exactly like naming nothing
        assert response.status_code == 404
