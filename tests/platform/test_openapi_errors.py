"""The OpenAPI document describes errors as the API sends them: problem details.

No operation documents Litestar's own error shape (`status_code`, `detail`, `extra`); each lists
the statuses its route can answer, with the `ProblemDetails` schema that `billplane.api.problems`
really sends; and a body that may be left out is not marked required.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from billplane.docsgen.openapi_pages import operations, pages, tag_slug
from tests.conftest import create_tenant, unique_slug

PROBLEM = "application/problem+json"
REF = {"$ref": "#/components/schemas/ProblemDetails"}
OPTIONAL_BODIES = {
    "finalizeInvoice",
    "payInvoice",
    "adminCreateApiKey",
    "cancelSubscription",
    "pauseSubscription",
    "replayWebhookEndpoint",
}
# PATCHes and DELETEs that can answer 409 of their own (a duplicate `external_id`, secrets that cannot be
# read, money still at a provider, a plan or subscription in a state that refuses it), and some that cannot.
CONFLICTING = {
    "updateCustomer",
    "updateProviderAccount",
    "updatePlan",
    "updateSubscription",
    "adminDeleteTenant",
    "deleteCustomer",
}
NEVER_CONFLICTING = {
    "adminUpdateTenant",
    "updateProduct",
    "updateWebhookEndpoint",
    "updateBillingSettings",
    "deleteWebhookEndpoint",
    "adminRevokeApiKey",
}


@pytest.fixture
async def document(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    served: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return served


def _statuses(operation: dict[str, Any]) -> set[str]:
    return {status for status in operation["responses"] if status[0] in "45"}


async def test_every_error_response_is_a_problem_document(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) >= 60
    for operation in found:
        errors = _statuses(dict(operation.spec))
        assert errors, operation.operation_id
        for status in errors:
            response = operation.spec["responses"][status]
            assert response["content"] == {PROBLEM: {"schema": REF}}, (operation.operation_id, status)
            assert response["description"], (operation.operation_id, status)
        assert "status_code" not in str(operation.spec["responses"]), operation.operation_id


async def test_each_operation_lists_what_its_route_answers(document: dict[str, Any]) -> None:
    for operation in operations(document):
        spec, errors = operation.spec, _statuses(dict(operation.spec))
        keys = {name for requirement in spec.get("security") or [] for name in requirement}
        where = (operation.operation_id, sorted(errors))
        if "apiKey" in keys:
            assert {"401", "403", "422", "429"} <= errors, where
        elif "adminKey" in keys:
            assert {"401", "422"} <= errors, where
            assert "403" not in errors, where
        if "{" in operation.path:
            assert "404" in errors, where
        else:
            assert "404" not in errors, where
        if operation.method in {"post", "patch"}:
            assert "400" in errors, where
        if keys and operation.method == "post":  # every POST takes an Idempotency-Key: 409 while it is in flight
            assert "409" in errors, where
        if operation.method == "get":
            assert "400" not in errors, where
    by_id = {operation.operation_id: operation.spec for operation in operations(document)}
    assert "409" in by_id["deleteCustomer"]["responses"]
    assert "409" not in by_id["getCustomer"]["responses"]
    # A PATCH or DELETE answers 409 only where its route refuses a change so, said or not in its description.
    for conflicting in CONFLICTING:
        assert "409" in by_id[conflicting]["responses"], conflicting
    for never in NEVER_CONFLICTING:
        assert "409" not in by_id[never]["responses"], never
    assert "503" in by_id["health"]["responses"]
    assert {"400", "404", "503"} <= set(by_id["receiveProviderWebhook"]["responses"])
    assert "401" not in by_id["receiveProviderWebhook"]["responses"]


async def test_a_patch_takes_no_idempotency_key_so_lists_no_409_of_it(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], database_url: str, document: dict[str, Any]
) -> None:
    tenant = await create_tenant(client, admin_headers, "oas")
    product = (await client.post("/v1/products", json={"name": "P"}, headers=tenant.headers)).json()
    key = unique_slug("key")
    # The key's lock held as by a first request still in flight (billplane.idempotency.store.begin).
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", f"{tenant.schema}:{key}")
        headers = tenant.headers | {"Idempotency-Key": key}
        posted = await client.post("/v1/products", json={"name": "Q"}, headers=headers)
        patched = await client.patch(f"/v1/products/{product['id']}", json={"name": "R"}, headers=headers)
    finally:
        await holder.close()
    assert (posted.status_code, patched.status_code) == (409, 200), patched.text
    by_id = {operation.operation_id: operation.spec for operation in operations(document)}
    assert "409" in by_id["createProduct"]["responses"]
    assert "409" not in by_id["updateProduct"]["responses"]


async def test_optional_bodies_are_not_required(document: dict[str, Any]) -> None:
    bodies = {op.operation_id: op.spec["requestBody"] for op in operations(document) if "requestBody" in op.spec}
    assert set(bodies) >= OPTIONAL_BODIES
    for operation_id, body in bodies.items():
        assert body.get("required", False) is (operation_id not in OPTIONAL_BODIES), operation_id


async def test_the_schema_is_what_the_api_sends(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], document: dict[str, Any]
) -> None:
    schemas = document["components"]["schemas"]
    problem, field_error = schemas["ProblemDetails"], schemas[schemas_ref(schemas["ProblemDetails"])]
    tenant = await create_tenant(client, admin_headers, "oas")
    sent = [
        await client.post("/v1/customers", json={"email": 1, "name": 2}, headers=tenant.headers),
        await client.get("/v1/customers", params={"custmer_id": "1"}, headers=tenant.headers),
        await client.get("/v1/customers/999", headers=tenant.headers),
        await client.get("/v1/customers", headers={"Authorization": "Bearer nope"}),
        await client.post("/v1/customers", content=b"{", headers=tenant.headers),
    ]
    assert [response.status_code for response in sent] == [422, 422, 404, 401, 400]
    for response in sent:
        assert response.headers["content-type"].startswith(PROBLEM)
        body = response.json()
        assert set(problem["required"]) <= set(body) <= set(problem["properties"]), body
        assert body["type"] == problem["properties"]["type"]["const"]
        assert body["code"] in problem["properties"]["code"]["enum"]
        for error in body.get("errors", []):
            assert set(field_error["required"]) <= set(error) <= set(field_error["properties"]), error


def schemas_ref(problem: dict[str, Any]) -> str:
    return str(problem["properties"]["errors"]["items"]["$ref"]).rsplit("/", 1)[-1]


async def test_the_reference_pages_show_the_errors(document: dict[str, Any]) -> None:
    reference = pages(document)
    get_customer = next(op for op in operations(document) if op.operation_id == "getCustomer")
    page = reference[f"{tag_slug(get_customer.tag)}.md"]
    section = page.split("{ #getCustomer }", 1)[1].split("\n## ", 1)[0]
    for status in ("401", "403", "404", "422", "429"):
        assert re.search(
            rf"^\| {status} \| .+ \| \[ProblemDetails\]\(schemas.md#ProblemDetails\)", section, re.MULTILINE
        ), status
    cancel = reference[f"{tag_slug('subscriptions')}.md"].split("{ #cancelSubscription }", 1)[1]
    assert "optional: left out, the defaults" in cancel.split("\n## ", 1)[0]


async def test_every_post_with_a_key_documents_the_idempotency_key_header(document: dict[str, Any]) -> None:
    posts = [
        (path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if method == "post"
    ]
    for path, operation in posts:
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        if operation.get("security"):
            assert len(headers) == 1, path
            assert headers[0]["required"] is False
            assert headers[0]["schema"]["maxLength"] == 255  # the store's limit
        else:  # a provider's webhook: signed by the provider, never retried with a key of the API's
            assert headers == [], path
    assert any(not operation.get("security") for _, operation in posts)
