"""Shared steps of the invoice tests: a sandbox account, customers with payment methods, invoices."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert

Client = AsyncTestClient[Litestar]
SANDBOX_KEY = "sk_sandbox_invoices_0123456789"
WEBHOOK_SECRET = "whsec_invoices_0123456789"


async def connect_sandbox(client: Client, tenant: CreatedTenant) -> int:
    body = {
        "provider": "sandbox",
        "mode": "test",
        "credentials": {"api_key": SANDBOX_KEY},
        "webhook_secret": WEBHOOK_SECRET,
    }
    response = await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    account_id: int = response.json()["id"]
    return account_id


async def customer(client: Client, tenant: CreatedTenant, name: str = "Ada") -> int:
    response = await client.post("/v1/customers", json={"name": name}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    customer_id: int = response.json()["id"]
    return customer_id


async def payment_method(
    runtime: Runtime, tenant: CreatedTenant, customer_id: int, account_id: int, token: str, *, default: bool = True
) -> int:
    """A stored payment method (a provider token) of the customer at the account."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        return await insert(
            session, "payment_methods", customer_id=customer_id, provider="sandbox", provider_account_id=account_id,
            provider_payment_method_id=token, is_default=default, brand="visa", last4="4242",
        )  # fmt: skip


async def draft(client: Client, tenant: CreatedTenant, customer_id: int, *amounts: int) -> dict[str, Any]:
    lines = [{"description": f"line {index}", "unit_amount": amount} for index, amount in enumerate(amounts)]
    body = {"customer_id": customer_id, "currency": "USD", "lines": lines}
    response = await client.post("/v1/invoices", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    invoice: dict[str, Any] = response.json()
    return invoice


async def act(client: Client, tenant: CreatedTenant, invoice_id: int, action: str, **body: Any) -> Any:
    return await client.post(f"/v1/invoices/{invoice_id}/{action}", json=body or None, headers=tenant.headers)


async def rows(runtime: Runtime, tenant: CreatedTenant, query: str, **binds: object) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        result = await session.execute(text(query), binds)
        return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def event_types(runtime: Runtime, tenant: CreatedTenant, object_type: str, object_id: int) -> list[str]:
    found = await rows(
        runtime, tenant, "SELECT type FROM events WHERE object_type = :kind AND object_id = :id ORDER BY id",
        kind=object_type, id=object_id,
    )  # fmt: skip
    return [row["type"] for row in found]
