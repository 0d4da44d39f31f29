"""The OpenAPI document: served at /schema, an operation id and a description on every route."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient


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
