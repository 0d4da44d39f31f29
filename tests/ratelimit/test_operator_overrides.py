"""The operator sets a tenant's limit (PATCH /v1/admin/tenants/{slug}); every process applies it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.app import create_app
from billplane.ratelimit import RateLimits
from billplane.settings import Settings
from tests.conftest import CreatedTenant, create_tenant
from tests.other_process import listening_client, patient
from tests.ratelimit.conftest import BURST, ManualClock

Client = AsyncTestClient[Litestar]


async def _admitted(client: Client, tenant: CreatedTenant, attempts: int) -> int:
    """How many of ``attempts`` immediate requests the tenant gets through."""
    statuses = [(await client.get("/v1/tenant", headers=tenant.headers)).status_code for _ in range(attempts)]
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(200)


async def _patch(client: Client, admin_headers: dict[str, str], slug: str, body: Any) -> Any:
    return await client.patch(f"/v1/admin/tenants/{slug}", json=body, headers=admin_headers)


async def test_an_override_applies_at_once_and_null_restores_the_default(
    client: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).json()["rate_limit"] is None
    assert await _admitted(client, tenant, 10) == BURST

    updated = await _patch(client, admin_headers, tenant.slug, {"rate_limit": {"per_second": 5, "burst": 8}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["rate_limit"] == {"per_second": 5, "burst": 8}
    clock.advance(60)
    assert await _admitted(client, tenant, 20) == 8
    assert (await client.get("/v1/tenant", headers=tenant.headers)).headers["ratelimit-limit"] == "8"

    defaulted = await _patch(client, admin_headers, tenant.slug, {"rate_limit": {"per_second": 4}})
    assert defaulted.json()["rate_limit"] == {"per_second": 4, "burst": 8}  # burst: twice the rate

    restored = await _patch(client, admin_headers, tenant.slug, {"rate_limit": None})
    assert restored.json()["rate_limit"] is None
    clock.advance(60)
    assert await _admitted(client, tenant, 10) == BURST

    untouched = await _patch(client, admin_headers, tenant.slug, {})  # PATCH: nothing sent, nothing changed
    assert (untouched.status_code, untouched.json()["rate_limit"]) == (200, None)


async def test_zero_per_second_means_unlimited(
    client: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    tenant = await create_tenant(client, admin_headers)
    updated = await _patch(client, admin_headers, tenant.slug, {"rate_limit": {"per_second": 0}})
    assert updated.json()["rate_limit"] == {"per_second": 0, "burst": 1}
    assert await _admitted(client, tenant, 5 * BURST) == 5 * BURST
    assert "ratelimit-limit" not in (await client.get("/v1/tenant", headers=tenant.headers)).headers
    assert clock.now == ManualClock().now


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rate_limit": {"per_second": -1, "burst": 5}}, "rate_limit.per_second"),
        ({"rate_limit": {"per_second": 5, "burst": 0}}, "rate_limit.burst"),
        ({"rate_limit": {"per_second": 10_000_000, "burst": 5}}, "rate_limit.per_second"),
        ({"rate_limit": {"per_second": 1.5, "burst": 5}}, "rate_limit.per_second"),
        ({"rate_limit": {"burst": 5}}, "rate_limit.per_second"),
        ({"rate_limit": {"per_second": 5, "window": 5}}, "rate_limit.window"),
        ({"rate_limit": 100}, "rate_limit"),
        ({"slug": "renamed"}, "slug"),
    ],
)
async def test_a_bad_limit_is_422_naming_the_field_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    tenant = await create_tenant(client, admin_headers)
    await _patch(client, admin_headers, tenant.slug, {"rate_limit": {"per_second": 7, "burst": 9}})
    response = await _patch(client, admin_headers, tenant.slug, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [field]
    after = await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)
    assert after.json()["rate_limit"] == {"per_second": 7, "burst": 9}


async def test_an_unknown_tenant_is_404_and_tenant_keys_are_not_the_operator(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await _patch(client, admin_headers, "no_such_tenant", {"rate_limit": None})).status_code == 404
    as_tenant = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}", json={"rate_limit": {"per_second": 0}}, headers=tenant.headers
    )
    assert as_tenant.status_code == 401


@pytest.fixture
async def other(settings: Settings, clock: ManualClock) -> AsyncIterator[Client]:
    """A second API process on the same database whose key cache would keep a principal for a minute."""
    app = create_app(patient(settings))
    limits: RateLimits = app.state.rate_limits
    limits.limiter.clock = clock
    async with listening_client(app) as client:
        yield client


async def test_an_override_reaches_another_process(
    client: Client, other: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert await _admitted(other, tenant, 10) == BURST  # the principal, with no override, is cached there
    updated = await _patch(client, admin_headers, tenant.slug, {"rate_limit": {"per_second": 1, "burst": 20}})
    assert updated.status_code == 200

    for _ in range(60):  # only the announcement can tell the other process within its cache's minute
        clock.advance(60)
        response = await other.get("/v1/tenant", headers=tenant.headers)
        if response.headers["ratelimit-limit"] == "20":
            break
        await asyncio.sleep(0.05)
    assert response.headers["ratelimit-limit"] == "20"
    assert await _admitted(other, tenant, 30) == 19
