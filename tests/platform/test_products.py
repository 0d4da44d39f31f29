"""/v1/products: create, find, update (archive), delete, list with filters, and the input it refuses."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from tests.conftest import CreatedTenant, create_tenant

Client = AsyncTestClient[Litestar]


async def _product(client: Client, tenant: CreatedTenant, **fields: object) -> dict[str, Any]:
    response = await client.post("/v1/products", json={"name": "Pro"} | fields, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _plan(client: Client, tenant: CreatedTenant, product_id: object) -> dict[str, object]:
    body = {
        "product_id": product_id,
        "name": "Monthly",
        "pricing_model": "flat",
        "amount": 1000,
        "currency": "USD",
        "billing_interval": "month",
    }
    response = await client.post("/v1/plans", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    plan: dict[str, object] = response.json()
    return plan


async def _ids(client: Client, tenant: CreatedTenant, **params: str) -> list[object]:
    response = await client.get("/v1/products", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_create_get_update_delete(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _product(client, tenant, name="Pro", description="For teams", metadata={"sku": "pro-1"})
    assert created["active"] is True
    assert (created["name"], created["description"], created["metadata"]) == ("Pro", "For teams", {"sku": "pro-1"})
    path = f"/v1/products/{created['id']}"
    assert (await client.get(path, headers=tenant.headers)).json() == created
    patched = await client.patch(path, json={"description": None, "metadata": {"k": "v"}}, headers=tenant.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] is None
    assert patched.json()["name"] == "Pro"
    assert patched.json()["metadata"] == {"k": "v"}
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    assert (await client.delete(path, headers=tenant.headers)).status_code == 404
    assert (await client.patch(path, json={"name": "x"}, headers=tenant.headers)).status_code == 404


async def test_defaults(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _product(client, tenant, name="Basic")
    assert (created["active"], created["description"], created["metadata"]) == (True, None, {})
    inactive = await _product(client, tenant, name="Old", active=False)
    assert inactive["active"] is False


async def test_archive_and_reactivate(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    product = await _product(client, tenant)
    path = f"/v1/products/{product['id']}"
    archived = await client.patch(path, json={"active": False}, headers=tenant.headers)
    assert archived.status_code == 200
    assert archived.json()["active"] is False
    assert (await client.get(path, headers=tenant.headers)).json()["active"] is False
    restored = await client.patch(path, json={"active": True}, headers=tenant.headers)
    assert restored.json()["active"] is True


async def test_a_product_with_plans_cannot_be_deleted(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    product = await _product(client, tenant)
    plan = await _plan(client, tenant, product["id"])
    # Even an archived plan keeps its product.
    await client.patch(f"/v1/plans/{plan['id']}", json={"active": False}, headers=tenant.headers)
    path = f"/v1/products/{product['id']}"
    refused = await client.delete(path, headers=tenant.headers)
    assert refused.status_code == 409
    assert "archive it instead" in refused.json()["detail"]
    assert (await client.get(path, headers=tenant.headers)).json() == product
    # Once its only plan is gone, the product can go too.
    assert (await client.delete(f"/v1/plans/{plan['id']}", headers=tenant.headers)).status_code == 204
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204


def _add_plan_slowly(dsn: str, schema: str, product_id: int, inserted: threading.Event) -> None:
    """In its own thread and connection: insert a plan, then wait a second before committing."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            async with connection.transaction():
                await connection.execute(
                    f'INSERT INTO "{schema}".plans (product_id, name, pricing_model, amount, currency, '
                    "billing_interval) VALUES ($1, 'Late', 'flat', 100, 'USD', 'month')",
                    product_id,
                )
                inserted.set()
                await asyncio.sleep(1.0)
        finally:
            await connection.close()

    asyncio.run(run())


async def test_a_plan_being_made_is_waited_for(
    client: Client, admin_headers: dict[str, str], database_url: str
) -> None:
    """The product row is locked before the check, so a plan committed meanwhile is seen, not missed."""
    tenant = await create_tenant(client, admin_headers)
    product = await _product(client, tenant)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    inserted = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(_add_plan_slowly, dsn, tenant.schema, product["id"], inserted))
    assert await asyncio.to_thread(inserted.wait, 30)
    # Sent while the plan is not yet committed (the test client blocks this loop until it answers).
    response = await client.delete(f"/v1/products/{product['id']}", headers=tenant.headers)
    await holder
    assert response.status_code == 409, response.text
    assert (await client.get(f"/v1/products/{product['id']}", headers=tenant.headers)).json() == product


async def test_filter_by_active(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    products = [await _product(client, tenant, name=f"p{i}") for i in range(5)]
    for archived in (products[1], products[3]):
        await client.patch(f"/v1/products/{archived['id']}", json={"active": False}, headers=tenant.headers)
    ids = [product["id"] for product in products]
    assert await _ids(client, tenant) == ids
    assert await _ids(client, tenant, active="true") == [ids[0], ids[2], ids[4]]
    assert await _ids(client, tenant, active="false") == [ids[1], ids[3]]


async def test_pages_never_skip_or_repeat(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    expected = [(await _product(client, tenant))["id"] for _ in range(7)]
    seen: list[object] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/products", params=params, headers=tenant.headers)).json()
        pages += 1
        assert len(page["data"]) <= 3
        seen += [row["id"] for row in page["data"]]
        if len(seen) == 3:  # rows inserted between pages appear once, at the end
            expected.append((await _product(client, tenant))["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


async def test_bad_cursor_and_limit_are_422(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    for params, field in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
    ):
        response = await client.get("/v1/products", params=params, headers=tenant.headers)
        assert response.status_code == 422, (params, response.text)
        assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_invalid_input_names_each_field_and_writes_nothing(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    cases: dict[str, dict[str, object]] = {
        "name": {"name": ""},
        "description": {"name": "P", "description": "d" * 5001},
        "metadata": {"name": "P", "metadata": {f"k{i}": "v" for i in range(51)}},
        "surprise": {"name": "P", "surprise": 1},
        "active": {"name": "P", "active": "maybe"},
    }
    for field, body in cases.items():
        response = await client.post("/v1/products", json=body, headers=tenant.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text
    missing = await client.post("/v1/products", json={}, headers=tenant.headers)
    assert missing.status_code == 422
    assert [error["field"] for error in missing.json()["errors"]] == ["name"]
    assert await _ids(client, tenant) == []


async def test_invalid_update_changes_nothing(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    product = await _product(client, tenant, description="keep")
    path = f"/v1/products/{product['id']}"
    for body, field in (({"name": None}, "name"), ({"name": ""}, "name"), ({"deleted": True}, "deleted")):
        response = await client.patch(path, json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text
    mixed = await client.patch(path, json={"description": "changed", "name": ""}, headers=tenant.headers)
    assert mixed.status_code == 422
    assert (await client.get(path, headers=tenant.headers)).json() == product


async def test_ids_of_another_tenant_are_404_like_unknown_ids(client: Client, admin_headers: dict[str, str]) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _product(client, mine)
    await _product(client, theirs)
    foreign = await _product(client, theirs, name=theirs.slug)  # id 2: mine has no product 2
    path = f"/v1/products/{foreign['id']}"
    unknown = await client.get("/v1/products/999999", headers=mine.headers)
    crossed = await client.get(path, headers=mine.headers)
    assert crossed.status_code == unknown.status_code == 404
    assert crossed.json().keys() == unknown.json().keys()
    assert theirs.slug not in crossed.text
    assert (await client.patch(path, json={"name": "mine now"}, headers=mine.headers)).status_code == 404
    assert (await client.delete(path, headers=mine.headers)).status_code == 404
    assert (await client.get(path, headers=theirs.headers)).json() == foreign
    assert foreign["id"] not in await _ids(client, mine)


async def test_an_id_beyond_bigint_is_404(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    response = await client.get(f"/v1/products/{2**64}", headers=tenant.headers)
    assert response.status_code == 404
