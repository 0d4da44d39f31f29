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


async def test_a_nul_character_anywhere_is_422_naming_where_and_nothing_is_written(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    in_body = await client.post("/v1/customers", json={"name": "a\x00b"}, headers=tenant.headers)
    assert in_body.status_code == 422, in_body.text
    assert [error["field"] for error in in_body.json()["errors"]] == ["name"]
    in_key = await client.post("/v1/customers", json={"metadata": {"k\x00": "v"}}, headers=tenant.headers)
    assert [error["field"] for error in in_key.json()["errors"]] == ["metadata.k\\u0000"]
    in_value = await client.post("/v1/customers", json={"metadata": {"k": "\x00"}}, headers=tenant.headers)
    assert [error["field"] for error in in_value.json()["errors"]] == ["metadata.k"]
    assert (await client.get("/v1/customers", headers=tenant.headers)).json()["data"] == []

    for path in ("/v1/customers", "/v1/events"):  # a list read with one statement, and one in a transaction
        in_query = await client.get(
            path, params={"external_id": "x\x00", "object_type": "x\x00"}, headers=tenant.headers
        )
        assert in_query.status_code == 422, (path, in_query.text)
        [error] = in_query.json()["errors"]
        assert error["source"] == "query"


async def test_a_body_that_is_not_json_is_400_on_routes_without_a_body_too(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    headers = tenant.headers | {"Content-Type": "application/x-www-form-urlencoded"}
    refused = await client.post("/v1/invoices/1/void", content=b"x", headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "bad_request"


async def test_a_body_of_the_wrong_shape_is_named_as_the_whole_body(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    response = await client.post("/v1/customers", json=[], headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["$"]


async def test_a_value_of_another_json_type_is_not_converted(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    product = await client.post("/v1/products", json={"name": "P"}, headers=tenant.headers)
    plan = {"product_id": product.json()["id"], "name": "Flat", "pricing_model": "flat", "amount": "1000",
            "currency": "USD", "billing_interval": "month"}  # fmt: skip
    response = await client.post("/v1/plans", json=plan, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["amount"]
    nested = await client.post(
        "/v1/usage-records",
        json={"records": [{"subscription_id": "1", "quantity": 1, "timestamp": "2030-01-01T00:00:00Z",
                           "client_event_id": "e"}]},
        headers=tenant.headers,
    )  # fmt: skip
    assert nested.status_code == 422, nested.text
    assert [error["field"] for error in nested.json()["errors"]] == ["records[0].subscription_id"]
    assert (await client.get("/v1/plans", headers=tenant.headers)).json()["data"] == []
    accepted = await client.post("/v1/plans", json=plan | {"amount": 1000}, headers=tenant.headers)
    assert accepted.status_code == 201, accepted.text  # times, currencies and the rest as JSON sends them


async def test_a_query_parameter_the_route_does_not_take_is_422(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    for path in ("/v1/customers", "/v1/events", "/v1/invoices"):  # one-statement reads, and reads in a transaction
        response = await client.get(path, params={"custmer_id": "5"}, headers=tenant.headers)
        assert response.status_code == 422, (path, response.text)
        [error] = response.json()["errors"]
        assert (error["field"], error["source"]) == ("custmer_id", "query")
        assert "limit" in error["message"]  # says what the route takes
    assert (await client.get("/v1/invoices", params={"customer_id": "5"}, headers=tenant.headers)).status_code == 200
    operator = await client.get("/v1/admin/tenants", params={"limt": "5"}, headers=admin_headers)
    assert operator.status_code == 422, operator.text
