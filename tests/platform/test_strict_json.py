"""No JSON float is accepted in any body, on any route: money is never a float."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import create_tenant, unique_slug

Client = AsyncTestClient[Litestar]


async def test_a_float_anywhere_in_a_body_is_422_naming_its_path(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    product = await client.post("/v1/products", json={"name": "P"}, headers=tenant.headers)
    plan = {
        "product_id": product.json()["id"],
        "name": "Flat",
        "pricing_model": "flat",
        "amount": 1000.0,
        "currency": "USD",
        "billing_interval": "month",
    }
    response = await client.post("/v1/plans", json=plan, headers=tenant.headers)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["amount"]
    nested = await client.post("/v1/customers", json={"metadata": {"score": 1.5}}, headers=tenant.headers)
    assert nested.status_code == 422
    assert nested.json()["errors"][0]["field"] == "metadata.score"
    assert (await client.get("/v1/plans", headers=tenant.headers)).json()["data"] == []
    assert (await client.get("/v1/customers", headers=tenant.headers)).json()["data"] == []


async def test_the_operator_api_refuses_floats_too(client: Client, admin_headers: dict[str, str]) -> None:
    response = await client.post("/v1/admin/tenants", json={"slug": unique_slug(), "name": 1.0}, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_floats_are_judged_only_after_authentication(client: Client) -> None:
    response = await client.post("/v1/customers", json={"metadata": {"x": 1.5}})
    assert response.status_code == 401
