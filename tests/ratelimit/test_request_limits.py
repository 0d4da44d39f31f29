"""The size limits docs/operations/limits.md documents, on a tenant's real requests.

Each limit is read from the code that enforces it, and the page must state the same number, so
the page cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.api.pagination import MAX_LIMIT
from billplane.app import MAX_BODY_BYTES, create_app
from billplane.events.options import WebhookOptions
from billplane.runtime import Runtime
from billplane.settings import RateLimitSettings, Settings
from billplane.usage.schemas import MAX_BATCH
from tests.conftest import REPO, create_tenant

Client = AsyncTestClient[Litestar]
LIMITS_PAGE = REPO / "docs" / "operations" / "limits.md"


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The default rate limit, not this folder's tiny one: these tests are about sizes."""
    return create_app(Settings(database=settings.database, security=settings.security))


async def test_a_page_size_over_the_maximum_is_422_naming_limit(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    for limit in (0, MAX_LIMIT + 1):
        response = await client.get("/v1/customers", params={"limit": limit}, headers=tenant.headers)
        assert response.status_code == 422, limit
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [(error["field"], error["source"]) for error in response.json()["errors"]] == [("limit", "query")]
    assert (await client.get("/v1/customers", params={"limit": MAX_LIMIT}, headers=tenant.headers)).status_code == 200


async def test_a_body_over_the_maximum_is_413_and_writes_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    headers = tenant.headers | {"content-type": "application/json"}

    def body_of(size: int) -> bytes:
        start, end = b'{"email":"a@example.com","name":"', b'"}'
        return start + b"x" * (size - len(start) - len(end)) + end

    at_the_limit = await client.post("/v1/customers", content=body_of(MAX_BODY_BYTES), headers=headers)
    assert at_the_limit.status_code == 422  # read and parsed: refused only for its over-long name
    response = await client.post("/v1/customers", content=body_of(MAX_BODY_BYTES + 1), headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM customers")) == 0


async def test_a_usage_batch_over_the_maximum_is_422_naming_records(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    record = {"subscription_id": 1, "quantity": 1, "timestamp": "2026-01-01T00:00:00Z", "client_event_id": "e"}
    response = await client.post(
        "/v1/usage-records", json={"records": [record] * (MAX_BATCH + 1)}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["records"]


def _number(value: int) -> str:
    return f"{value:,}"


def test_the_limits_page_states_the_limits_the_code_enforces() -> None:
    page = Path(LIMITS_PAGE).read_text()
    defaults = RateLimitSettings()
    webhooks = WebhookOptions()
    expected = {
        "request body": f"{_number(MAX_BODY_BYTES)} bytes",
        "page size": f"1-{MAX_LIMIT}",
        "usage batch": f"{_number(MAX_BATCH)} records",
        "default rate": f"`BILLPLANE_RATE_LIMIT_PER_SECOND` | `{defaults.per_second}`",
        "default burst": f"`BILLPLANE_RATE_LIMIT_BURST` | `{defaults.burst}`",
        "webhook endpoints": f"| {webhooks.max_endpoints} per tenant",
        "replay": f"| {webhooks.max_replay_days} days |",
    }
    missing = {name: phrase for name, phrase in expected.items() if phrase not in page}
    assert not missing, f"{LIMITS_PAGE} does not state: {missing}"
