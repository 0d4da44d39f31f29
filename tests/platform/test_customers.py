"""/v1/customers: create, find, update, delete, list with filters, and the input it refuses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant

Client = AsyncTestClient[Litestar]


async def _customer(client: Client, tenant: CreatedTenant, **fields: object) -> dict[str, object]:
    response = await client.post("/v1/customers", json=fields, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_get_update_delete(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _customer(client, tenant, email="ada@example.com", name="Ada", metadata={"crm": "1"})
    path = f"/v1/customers/{created['id']}"
    assert (await client.get(path, headers=tenant.headers)).json() == created
    patched = await client.patch(path, json={"name": None, "metadata": {"tier": "gold"}}, headers=tenant.headers)
    assert patched.status_code == 200
    assert patched.json()["name"] is None
    assert patched.json()["email"] == "ada@example.com"
    assert patched.json()["metadata"] == {"tier": "gold"}
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    assert (await client.delete(path, headers=tenant.headers)).status_code == 404


async def test_external_id_is_unique_per_tenant_only(client: Client, admin_headers: dict[str, str]) -> None:
    first, second = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    kept = await _customer(client, first, external_id="u-1", email="same@example.com")
    await _customer(client, second, external_id="u-1", email="same@example.com")  # another tenant: fine
    duplicate = await client.post("/v1/customers", json={"external_id": "u-1"}, headers=first.headers)
    assert duplicate.status_code == 409
    other = await _customer(client, first, external_id="u-2")
    clash = await client.patch(f"/v1/customers/{other['id']}", json={"external_id": "u-1"}, headers=first.headers)
    assert clash.status_code == 409
    # Deleting frees the external id for a new customer.
    await client.delete(f"/v1/customers/{kept['id']}", headers=first.headers)
    await _customer(client, first, external_id="u-1")


async def test_find_by_email_and_external_id(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    ada = await _customer(client, tenant, email="Ada@Example.com", external_id="a")
    await _customer(client, tenant, email="bob@example.com", external_id="b")
    by_email = await client.get("/v1/customers", params={"email": "ada@example.COM"}, headers=tenant.headers)
    assert [row["id"] for row in by_email.json()["data"]] == [ada["id"]]
    by_external = await client.get("/v1/customers", params={"external_id": "a"}, headers=tenant.headers)
    assert [row["id"] for row in by_external.json()["data"]] == [ada["id"]]


async def test_created_range_filter(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    old, new = await _customer(client, tenant), await _customer(client, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("UPDATE customers SET created_at = now() - interval '10 days' WHERE id = :id"), {"id": old["id"]}
        )
    cutoff = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    recent = await client.get("/v1/customers", params={"created_gte": cutoff}, headers=tenant.headers)
    older = await client.get("/v1/customers", params={"created_lt": cutoff}, headers=tenant.headers)
    assert [row["id"] for row in recent.json()["data"]] == [new["id"]]
    assert [row["id"] for row in older.json()["data"]] == [old["id"]]


async def test_pages_never_skip_or_repeat(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    expected = [(await _customer(client, tenant))["id"] for _ in range(7)]
    seen: list[object] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/customers", params=params, headers=tenant.headers)).json()
        seen += [row["id"] for row in page["data"]]
        if len(seen) == 3:  # rows inserted between pages appear once, at the end
            expected.append((await _customer(client, tenant))["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_deleting_a_customer_with_a_live_subscription_is_409(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    customer = await _customer(client, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await session.scalar(text("INSERT INTO products (name) VALUES ('P') RETURNING id"))
        plan = await session.scalar(
            text(
                "INSERT INTO plans (product_id, name, pricing_model, amount, currency, billing_interval) "
                "VALUES (:p, 'Basic', 'flat', 1000, 'USD', 'month') RETURNING id"
            ),
            {"p": product},
        )
        await session.execute(
            text("INSERT INTO subscriptions (customer_id, plan_id, status) VALUES (:c, :p, 'active')"),
            {"c": customer["id"], "p": plan},
        )
    response = await client.delete(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert response.status_code == 409
    assert (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).status_code == 200


async def test_invalid_input_names_each_field_and_writes_nothing(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    cases = {
        "email": {"email": "not-an-email"},
        "metadata": {"metadata": {f"k{i}": "v" for i in range(51)}},
        "surprise": {"surprise": 1},
        "name": {"name": ""},
    }
    for field, body in cases.items():
        response = await client.post("/v1/customers", json=body, headers=tenant.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text
    long_key = await client.post("/v1/customers", json={"metadata": {"k" * 41: "v"}}, headers=tenant.headers)
    long_value = await client.post("/v1/customers", json={"metadata": {"k": "v" * 501}}, headers=tenant.headers)
    assert long_key.status_code == long_value.status_code == 422
    listing = await client.get("/v1/customers", headers=tenant.headers)
    assert listing.json()["data"] == []


async def test_ids_of_another_tenant_are_404_like_unknown_ids(client: Client, admin_headers: dict[str, str]) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _customer(client, theirs)
    foreign = await _customer(client, theirs)
    unknown = await client.get("/v1/customers/999999", headers=mine.headers)
    crossed = await client.get(f"/v1/customers/{foreign['id']}", headers=mine.headers)
    assert crossed.status_code == unknown.status_code == 404
    assert crossed.json().keys() == unknown.json().keys()
    assert crossed.json()["code"] == unknown.json()["code"]


async def test_ids_and_cursors_beyond_bigint_are_refused_cleanly(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    huge = 2**63
    assert (await client.get(f"/v1/customers/{huge}", headers=tenant.headers)).status_code == 404
    forged = base64.urlsafe_b64encode(f"[{huge}]".encode()).decode().rstrip("=")
    response = await client.get("/v1/customers", params={"cursor": forged}, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "cursor",
        "source": "query",
        "message": "not a cursor returned by this API",
    }
    bad_limit = await client.get("/v1/customers", params={"limit": "0"}, headers=tenant.headers)
    assert bad_limit.json()["errors"][0]["source"] == "query"
