"""Customers, products and plans: every change the API makes is an event, in GET /v1/events.

Each event's ``data`` is the object as the API shows it afterwards (a deleted one: as last shown);
a request refused, or one that changes nothing, writes none. A customer's create stays one
statement: its event and the event's webhook deliveries are part of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import bindparam, select, text
from sqlalchemy.types import DateTime

from billplane.customers.repository import json_time
from billplane.events.emit import WEBHOOKS_CHANNEL
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.heard import Channel, listening
from tests.platform.listable import events_listable

Client = AsyncTestClient[Litestar]
Body = dict[str, Any]


async def listed(client: Client, tenant: CreatedTenant, object_type: str, object_id: int | None = None) -> list[Body]:
    """Every event of ``object_type`` (of one object, with ``object_id``), oldest first, from GET /v1/events."""
    params: dict[str, Any] = {"object_type": object_type, "limit": 100}
    if object_id is not None:
        params["object_id"] = object_id
    found: list[Body] = []
    await events_listable(client.app.state.runtime.settings.database.url)
    while True:
        response = await client.get("/v1/events", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["data"]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


def types_of(events: list[Body]) -> list[str]:
    return [shown["type"] for shown in events]


async def shown(client: Client, tenant: CreatedTenant, path: str) -> Body:
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: Body = response.json()
    return body


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[Channel]:
    async with listening(database_url, WEBHOOKS_CHANNEL) as channel:
        yield channel


async def test_a_customers_create_update_and_delete_are_events_with_the_customer_the_api_shows(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    created = await client.post(
        "/v1/customers",
        json={"email": "ada@example.com", "name": "Ada", "metadata": {"k": "v"}},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    path = f"/v1/customers/{customer_id}"
    after_create = await shown(client, tenant, path)
    [first] = await listed(client, tenant, "customer", customer_id)
    assert (first["type"], first["object_type"], first["object_id"]) == ("customer.created", "customer", customer_id)
    assert first["data"] == after_create == created.json()

    patched = await client.patch(path, json={"name": "Ada King", "external_id": "u1"}, headers=tenant.headers)
    assert patched.status_code == 200, patched.text
    after_update = await shown(client, tenant, path)
    # The same values again change nothing: no second event.
    again = await client.patch(path, json={"name": "Ada King"}, headers=tenant.headers)
    assert again.status_code == 200
    events = await listed(client, tenant, "customer", customer_id)
    assert types_of(events) == ["customer.created", "customer.updated"]
    assert events[1]["data"] == after_update == patched.json()
    assert after_update["name"] == "Ada King"

    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    events = await listed(client, tenant, "customer", customer_id)
    assert types_of(events) == ["customer.created", "customer.updated", "customer.deleted"]
    assert events[2]["data"] == after_update  # as the API showed it last


async def test_refused_customer_requests_write_no_event(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    ada = (await client.post("/v1/customers", json={"external_id": "a"}, headers=tenant.headers)).json()
    bob = (await client.post("/v1/customers", json={"external_id": "b"}, headers=tenant.headers)).json()
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="API")
        plan = await insert(
            session, "plans", product_id=product, name="Basic", pricing_model="flat", amount=1000, currency="USD",
            billing_interval="month",
        )  # fmt: skip
        await insert(session, "subscriptions", customer_id=ada["id"], plan_id=plan, status="active")
    before = await listed(client, tenant, "customer")
    assert types_of(before) == ["customer.created", "customer.created"]

    refused = [
        await client.post("/v1/customers", json={"external_id": "a"}, headers=tenant.headers),  # taken
        await client.post("/v1/customers", json={"email": "not an email"}, headers=tenant.headers),
        await client.patch(f"/v1/customers/{bob['id']}", json={"external_id": "a"}, headers=tenant.headers),
        await client.delete(f"/v1/customers/{ada['id']}", headers=tenant.headers),  # a live subscription
        await client.patch("/v1/customers/999999", json={"name": "Nobody"}, headers=tenant.headers),
    ]

    assert [response.status_code for response in refused] == [409, 422, 409, 409, 404]
    assert await listed(client, tenant, "customer") == before


async def test_a_customers_create_writes_its_event_and_deliveries_in_its_one_statement(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, statements: list[str], heard: Channel
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    endpoints = {}
    for name, patterns in (("customers", ["customer.*"]), ("invoices", ["invoice.*"]), ("all", [])):
        body = {"url": f"https://{name}.example.com/hooks", "enabled_events": patterns}
        response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        endpoints[name] = response.json()["id"]
    assert (await client.post("/v1/customers", json={}, headers=tenant.headers)).status_code == 201  # warm caches
    await heard.until_now()

    statements.clear()
    created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)

    assert created.status_code == 201, created.text
    [create] = statements
    assert "INSERT INTO customers" in create
    assert "INSERT INTO events" in create
    assert "INSERT INTO webhook_deliveries" in create
    async with runtime.database.tenant_session(tenant.schema) as session:
        queued = await session.execute(
            text(
                "SELECT d.endpoint_id, e.type FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE e.object_type = 'customer' AND e.object_id = :id ORDER BY d.endpoint_id"
            ),
            {"id": created.json()["id"]},
        )
        assert [tuple(row) for row in queued] == [
            (endpoints["customers"], "customer.created"),
            (endpoints["all"], "customer.created"),
        ]
    assert await heard.until_now() == [tenant.schema]  # once, whatever the number of deliveries

    plain = await create_tenant(client, admin_headers, "emit")  # no endpoint: nothing to deliver, no notification
    made = await client.post("/v1/customers", json={"name": "Solo"}, headers=plain.headers)
    assert made.status_code == 201
    assert types_of(await listed(client, plain, "customer")) == ["customer.created"]
    assert await heard.until_now() == []


@pytest.mark.parametrize("microsecond", [0, 1, 100, 120000, 999999])
async def test_a_time_in_a_created_events_data_is_written_as_the_api_writes_it(
    runtime: Runtime, microsecond: int
) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, microsecond, tzinfo=UTC)
    async with runtime.database.control_session() as session:
        written = await session.scalar(select(json_time(bindparam("at", at, type_=DateTime(timezone=True)))))
        assert await session.scalar(select(json_time(bindparam("none", None, type_=DateTime(timezone=True))))) is None
    assert written == msgspec.json.encode(at).decode().strip('"')


async def _product(client: Client, tenant: CreatedTenant, **fields: object) -> Body:
    response = await client.post("/v1/products", json={"name": "Pro"} | fields, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: Body = response.json()
    return body


async def test_a_products_create_update_archive_and_delete_are_events(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    product = await _product(client, tenant, description="Dashboards")
    path = f"/v1/products/{product['id']}"
    after_create = await shown(client, tenant, path)
    renamed = await client.patch(path, json={"name": "Pro 2", "metadata": {"tier": "b"}}, headers=tenant.headers)
    after_rename = await shown(client, tenant, path)
    archived = await client.patch(path, json={"active": False}, headers=tenant.headers)
    after_archive = await shown(client, tenant, path)
    unchanged = await client.patch(path, json={"active": False, "name": "Pro 2"}, headers=tenant.headers)
    assert (renamed.status_code, archived.status_code, unchanged.status_code) == (200, 200, 200)
    deleted = await client.delete(path, headers=tenant.headers)
    assert deleted.status_code == 204

    events = await listed(client, tenant, "product", product["id"])
    assert types_of(events) == ["product.created", "product.updated", "product.updated", "product.deleted"]
    assert [shown_["data"] for shown_ in events] == [after_create, after_rename, after_archive, after_archive]
    assert after_create == product
    assert after_archive["active"] is False  # archiving is an update, as the API makes it a PATCH


async def test_a_plans_create_update_archive_and_delete_are_events(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    product = await _product(client, tenant)
    body = {
        "product_id": product["id"], "name": "Tiered", "currency": "USD", "billing_interval": "month",
        "pricing_model": "tiered", "tiers": [{"up_to": 10, "unit_amount": 5}, {"up_to": None, "unit_amount": 3}],
        "features": [{"key": "seats", "limit": 5}],
    }  # fmt: skip
    created = await client.post("/v1/plans", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    path = f"/v1/plans/{created.json()['id']}"
    after_create = await shown(client, tenant, path)
    repriced = await client.patch(
        path, json={"tiers": [{"up_to": None, "unit_amount_decimal": "0.5"}]}, headers=tenant.headers
    )
    after_reprice = await shown(client, tenant, path)
    archived = await client.patch(path, json={"active": False}, headers=tenant.headers)
    after_archive = await shown(client, tenant, path)
    same_price = await client.patch(
        path, json={"tiers": [{"up_to": None, "unit_amount_decimal": "0.5"}]}, headers=tenant.headers
    )
    assert [r.status_code for r in (repriced, archived, same_price)] == [200, 200, 200]
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204

    events = await listed(client, tenant, "plan", created.json()["id"])
    assert types_of(events) == ["plan.created", "plan.updated", "plan.updated", "plan.deleted"]
    assert [shown_["data"] for shown_ in events] == [after_create, after_reprice, after_archive, after_archive]
    assert after_create == created.json()
    assert after_reprice["tiers"] != after_create["tiers"]
    assert after_archive["active"] is False


async def test_refused_catalog_requests_write_no_event(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    product = await _product(client, tenant)
    flat = {"product_id": product["id"], "name": "Flat", "currency": "USD", "billing_interval": "month"}
    plan = (
        await client.post("/v1/plans", json=flat | {"pricing_model": "flat", "amount": 1000}, headers=tenant.headers)
    ).json()
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        await insert(session, "subscriptions", customer_id=customer, plan_id=plan["id"], status="active")
    products_before = await listed(client, tenant, "product")
    plans_before = await listed(client, tenant, "plan")
    assert (types_of(products_before), types_of(plans_before)) == (["product.created"], ["plan.created"])

    refused = [
        await client.delete(f"/v1/products/{product['id']}", headers=tenant.headers),  # it has plans
        await client.post("/v1/products", json={"name": ""}, headers=tenant.headers),
        await client.patch(f"/v1/products/{product['id']}", json={"name": None}, headers=tenant.headers),
        await client.post("/v1/plans", json=flat | {"pricing_model": "flat"}, headers=tenant.headers),  # no amount
        await client.patch(f"/v1/plans/{plan['id']}", json={"amount": 2000}, headers=tenant.headers),  # in use
        await client.delete(f"/v1/plans/{plan['id']}", headers=tenant.headers),  # in use
        await client.patch("/v1/plans/999999", json={"name": "Nothing"}, headers=tenant.headers),
    ]

    assert [response.status_code for response in refused] == [409, 422, 422, 422, 409, 409, 404]
    assert await listed(client, tenant, "product") == products_before
    assert await listed(client, tenant, "plan") == plans_before
