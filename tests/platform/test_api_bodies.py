"""Bodies and parameters at the API's edge, the same on every route.

An action whose body fields are all optional takes no body at all (the defaults); a route that
needs a body and gets none is a readable 422; a route that takes no body refuses one (an unknown
field is a 422, wherever it is sent); and every tenant route refuses a query parameter it does not
take or a NUL character, whatever dependency reads the database.
"""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import CreatedTenant, create_tenant

Client = AsyncTestClient[Litestar]
REQUIRED = "a JSON body is required"


def _errors(response: object) -> list[tuple[str, str]]:
    body = response.json()  # type: ignore[attr-defined]
    return [(error["field"], error["message"]) for error in body["errors"]]


@pytest.fixture
async def tenant(client: Client, admin_headers: dict[str, str]) -> CreatedTenant:
    return await create_tenant(client, admin_headers, "body")


async def _subscription(client: Client, tenant: CreatedTenant) -> str:
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    product = (await client.post("/v1/products", json={"name": "P"}, headers=tenant.headers)).json()
    plan = {
        "product_id": product["id"],
        "name": "Flat",
        "pricing_model": "flat",
        "amount": 1000,
        "currency": "USD",
        "billing_interval": "month",
    }
    created_plan = await client.post("/v1/plans", json=plan, headers=tenant.headers)
    assert created_plan.status_code == 201, created_plan.text
    body = {"customer_id": customer["id"], "plan_id": created_plan.json()["id"]}
    created = await client.post("/v1/subscriptions", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    return f"/v1/subscriptions/{created.json()['id']}"


async def _endpoint(client: Client, tenant: CreatedTenant) -> str:
    body = {"url": "https://hooks.example.com/billing"}
    created = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    return f"/v1/webhook-endpoints/{created.json()['id']}"


async def test_actions_with_only_optional_fields_take_no_body(client: Client, tenant: CreatedTenant) -> None:
    first = await _subscription(client, tenant)
    paused = await client.post(f"{first}/pause", headers=tenant.headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["resume_at"] is None
    canceled = await client.post(f"{first}/cancel", headers=tenant.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"  # the default: now, not at the period's end

    second = await _subscription(client, tenant)
    at_end = await client.post(f"{second}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    assert at_end.status_code == 200, at_end.text
    assert at_end.json()["cancel_at_period_end"] is True
    unknown = await client.post(f"{second}/pause", json={"until": "soon"}, headers=tenant.headers)
    assert unknown.status_code == 422, unknown.text
    assert [field for field, _ in _errors(unknown)] == ["until"]

    endpoint = await _endpoint(client, tenant)
    replayed = await client.post(f"{endpoint}/replay", headers=tenant.headers)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["queued"] > 0  # the default `since`: the last 24 hours, these events included


async def test_a_missing_required_body_is_a_readable_422(
    client: Client, tenant: CreatedTenant, admin_headers: dict[str, str]
) -> None:
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    for method, path, headers in (
        ("POST", "/v1/customers", tenant.headers),
        ("PATCH", f"/v1/customers/{customer['id']}", tenant.headers),
        ("POST", "/v1/webhook-endpoints", tenant.headers),
        ("POST", "/v1/admin/tenants", admin_headers),
    ):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 422, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert _errors(response) == [("$", REQUIRED)], (method, path)
        assert REQUIRED in response.json()["detail"]
    unchanged = await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert unchanged.json()["name"] == "Ada"


async def test_a_route_without_a_body_refuses_one(
    client: Client, tenant: CreatedTenant, admin_headers: dict[str, str]
) -> None:
    endpoint = await _endpoint(client, tenant)
    rotated = await client.post(f"{endpoint}/rotate-secret", json={"secret": "mine"}, headers=tenant.headers)
    assert rotated.status_code == 422, rotated.text
    assert [field for field, _ in _errors(rotated)] == ["secret"]
    assert "takes no body" in _errors(rotated)[0][1]

    suspended = await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", json={"reason": 1}, headers=admin_headers)
    assert suspended.status_code == 422, suspended.text
    assert [field for field, _ in _errors(suspended)] == ["reason"]
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200  # not suspended

    for body in ([1], "void it", 7, True):
        response = await client.post(f"{endpoint}/rotate-secret", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert [field for field, _ in _errors(response)] == ["$"], body
    two = await client.post(f"{endpoint}/rotate-secret", json={"a": 1, "b": 2}, headers=tenant.headers)
    assert [field for field, _ in _errors(two)] == ["a", "b"]

    # Nothing, `{}` and `null` say nothing: the action runs.
    for content in (b"", b"{}", b"null"):
        headers = {**tenant.headers, "Content-Type": "application/json"}
        response = await client.post(f"{endpoint}/rotate-secret", content=content, headers=headers)
        assert response.status_code == 200, (content, response.text)
    not_json = await client.post(f"{endpoint}/rotate-secret", content=b"{nope", headers=tenant.headers)
    assert not_json.status_code == 400, not_json.text

    # A DELETE takes none either: a body there is a mistake (a condition the route never reads).
    deleted = await client.request("DELETE", endpoint, json={"if_unused": True}, headers=tenant.headers)
    assert deleted.status_code == 422, deleted.text
    assert [field for field, _ in _errors(deleted)] == ["if_unused"]
    assert (await client.get(endpoint, headers=tenant.headers)).status_code == 200  # not deleted
    empty = {**tenant.headers, "Content-Type": "application/json"}
    assert (await client.request("DELETE", endpoint, content=b"{}", headers=empty)).status_code == 204


def _tenant_operations(document: dict[str, object]) -> list[tuple[str, str]]:
    paths: dict[str, dict[str, dict[str, object]]] = document["paths"]  # type: ignore[assignment]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, methods in paths.items()
        for method, operation in methods.items()
        if {"apiKey": []} in (operation.get("security") or [])  # type: ignore[operator]
    ]


async def test_every_tenant_route_refuses_an_unknown_parameter_and_a_nul(client: Client, tenant: CreatedTenant) -> None:
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    for params in ({"expand": "everything"}, {"x": "a\x00b"}):
        response = await client.get(f"/v1/customers/{customer['id']}", params=params, headers=tenant.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["source"] == "query"
    current = await client.get("/v1/tenant", params={"expand": "x"}, headers=tenant.headers)
    assert current.status_code == 422, current.text
    assert [field for field, _ in _errors(current)] == ["expand"]

    document = (await client.get("/schema/openapi.json")).json()
    operations = _tenant_operations(document)
    assert len(operations) >= 60
    for method, path in operations:
        response = await client.request(method, path, params={"zz_unknown": "1"}, headers=tenant.headers)
        assert response.status_code == 422, (method, path, response.text)
        assert [field for field, _ in _errors(response)] == ["zz_unknown"], (method, path)
