"""The OpenAPI document: served at /schema, an operation id and a description on every route."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import create_tenant
from tests.platform.provider_accounts_fake import FakeProvider

# Examples that name a succeeded payment, which no API call can make in a new tenant.
NEEDS_A_PAYMENT = {"/v1/refunds"}


async def test_schema_is_served_with_operation_ids_and_docs(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    operations = [op for methods in document["paths"].values() for op in methods.values()]
    assert len(operations) >= 10
    for operation in operations:
        assert operation.get("operationId"), operation
        assert operation.get("description") or operation.get("summary"), operation["operationId"]
    assert len({op["operationId"] for op in operations}) == len(operations)
    for page in ("/schema", "/schema/swagger"):
        response = await client.get(page)
        assert response.status_code == 200, page
        assert "text/html" in response.headers["content-type"]


async def test_every_request_body_has_an_example_that_works(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    tenant = await create_tenant(client, admin_headers)
    product = (await client.post("/v1/products", json={"name": "P"}, headers=tenant.headers)).json()
    # The provider-account example names `sandbox`: a stand-in where that distribution is not installed.
    FakeProvider(name="sandbox", accept="sk_sandbox_").install(client.app)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if "requestBody" not in operation:
                continue
            examples = operation["requestBody"]["content"]["application/json"]["schema"].get("examples")
            assert examples, f"{method.upper()} {path} has no example body"
            if method != "post" or "{" in path:
                continue
            body = examples[0] | ({"product_id": product["id"]} if "product_id" in examples[0] else {})
            headers = admin_headers if path.startswith("/v1/admin") else tenant.headers
            response = await client.post(path, json=body, headers=headers)
            if path in NEEDS_A_PAYMENT:  # well-formed: refused only for naming a payment a new tenant lacks
                assert [error["field"] for error in response.json()["errors"]] == ["payment_id"], response.text
                continue
            assert response.status_code == 201, (path, response.text)
