"""Bad input at the edges answers 4xx, never 500, and changes nothing: times outside billing's
calendar or without a zone, ids no BIGINT holds, a unique clash lost to a concurrent request, a
status filter that is not a status."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.api.problems import ConflictError
from billplane.customers.schemas import CustomerUpdate
from billplane.customers.service import CustomerService
from billplane.runtime import Runtime
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from tests.conftest import create_tenant

Client = AsyncTestClient[Litestar]


def _fields(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/test-clocks", {"frozen_time": "0001-01-01T00:00:00+01:00"}, "frozen_time"),
        ("/v1/test-clocks", {"frozen_time": "9999-06-01T00:00:00Z"}, "frozen_time"),
        ("/v1/test-clocks", {"frozen_time": "2030-01-01T00:00:00"}, "frozen_time"),
    ],
)
async def test_a_time_outside_billings_calendar_is_422_naming_it(
    client: Client, admin_headers: dict[str, str], path: str, body: dict[str, str], field: str
) -> None:
    tenant = await create_tenant(client, admin_headers, "edge")
    response = await client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    assert (await client.get(path, headers=tenant.headers)).json()["data"] == []


async def test_time_filters_and_a_pause_without_a_zone_are_422(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "edge")
    for path in ("/v1/customers", "/v1/events"):
        for value in ("2030-01-01T00:00:00", "9999-12-31T23:59:59-01:00"):
            response = await client.get(path, params={"created_gte": value}, headers=tenant.headers)
            assert response.status_code == 422, (path, value, response.text)
            assert response.json()["errors"][0]["source"] == "query"
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("INSERT INTO customers (name) VALUES ('Ada') RETURNING id"))
        product = await session.scalar(text("INSERT INTO products (name) VALUES ('P') RETURNING id"))
        plan = await session.scalar(
            text(
                "INSERT INTO plans (product_id, name, pricing_model, amount, currency, billing_interval) "
                "VALUES (:p, 'Flat', 'flat', 100, 'USD', 'month') RETURNING id"
            ),
            {"p": product},
        )
    line = {"description": "x", "unit_amount": 1, "period_start": "9999-12-31T23:00:00-02:00"}
    invoice = await client.post(
        "/v1/invoices", json={"customer_id": customer, "currency": "USD", "lines": [line]}, headers=tenant.headers
    )
    assert invoice.status_code == 422, invoice.text
    assert _fields(invoice) == ["lines[0].period_start"]
    created = await client.post(
        "/v1/subscriptions", json={"customer_id": customer, "plan_id": plan}, headers=tenant.headers
    )
    url = f"/v1/subscriptions/{created.json()['id']}"
    paused = await client.post(f"{url}/pause", json={"resume_at": "2030-01-01T00:00:00"}, headers=tenant.headers)
    assert paused.status_code == 422, paused.text
    assert _fields(paused) == ["resume_at"]
    assert (await client.get(url, headers=tenant.headers)).json()["status"] == "active"


async def test_an_api_key_id_no_bigint_holds_is_not_found(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "edge")
    response = await client.delete(
        f"/v1/admin/tenants/{tenant.slug}/api-keys/99999999999999999999", headers=admin_headers
    )
    assert response.status_code == 404, response.text


async def test_a_provider_event_status_that_is_not_one_is_422(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "edge")
    response = await client.get("/v1/provider-events", params={"status": "bogus"}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "status"


async def test_an_external_id_taken_by_a_concurrent_request_is_a_conflict(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "edge")
    ada = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()["id"]

    async def take_it() -> None:
        async with runtime.database.tenant_session(tenant.schema) as session:
            writer = OutboxWriter(session, tenant.id, tenant.schema, runtime.jobs, None, DefaultAccountCache())
            await CustomerService(session, lambda: SyncService(writer)).update(ada, CustomerUpdate(external_id="X"))

    async with runtime.database.tenant_session(tenant.schema) as other:
        # Another request inserts a customer with external_id X and has not committed yet: the
        # update's check does not see it, and its write waits on the index until it commits.
        await other.execute(text("INSERT INTO customers (name, external_id) VALUES ('Bob', 'X')"))
        update = asyncio.create_task(take_it())
        await asyncio.sleep(0.3)
        assert not update.done()
    with pytest.raises(ConflictError):
        await update
    shown = (await client.get(f"/v1/customers/{ada}", headers=tenant.headers)).json()
    assert shown["external_id"] is None


async def test_a_value_refused_by_a_pattern_is_told_in_words(client: Client, admin_headers: dict[str, str]) -> None:
    # msgspec's own text quotes the regular expression, with doubled backslashes.
    tenant = await create_tenant(client, admin_headers, "words")
    customer = await client.post("/v1/customers", json={"name": "Ada", "email": "nope"}, headers=tenant.headers)
    assert customer.status_code == 422
    assert customer.json()["errors"][0]["field"] == "email"
    assert customer.json()["errors"][0]["message"] == "must be an email address, such as ada@example.com"
    created = await client.post("/v1/admin/tenants", json={"slug": "Acme-Inc", "name": "Acme"}, headers=admin_headers)
    assert created.status_code == 422
    [error] = created.json()["errors"]
    assert error["field"] == "slug"
    assert "no capitals or hyphens" in error["message"]
    assert "regex" not in error["message"]
