"""Tenant API keys: each key resolves to its own tenant; revoked, unknown and suspended keys fail."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import create_tenant

Client = AsyncTestClient[Litestar]


async def test_each_key_resolves_to_its_own_tenant(client: Client, admin_headers: dict[str, str]) -> None:
    first = await create_tenant(client, admin_headers)
    second = await create_tenant(client, admin_headers)
    for tenant in (first, second):
        response = await client.get("/v1/tenant", headers=tenant.headers)
        assert response.status_code == 200, response.text
        assert response.json()["slug"] == tenant.slug
        assert response.json()["id"] == tenant.id


async def test_unknown_and_malformed_keys_are_401(client: Client) -> None:
    for headers in [{}, {"Authorization": "Bearer bpk_unknown"}, {"Authorization": "Token x"}, {"Authorization": ""}]:
        response = await client.get("/v1/tenant", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 401


async def test_admin_key_is_not_a_tenant_key(client: Client, admin_headers: dict[str, str]) -> None:
    assert (await client.get("/v1/tenant", headers=admin_headers)).status_code == 401


async def test_suspended_tenant_gets_403_until_resumed(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200  # now cached
    suspended = await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", headers=admin_headers)
    assert suspended.json()["status"] == "suspended"
    response = await client.get("/v1/tenant", headers=tenant.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    await client.post(f"/v1/admin/tenants/{tenant.slug}/resume", headers=admin_headers)
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200


async def test_the_operator_key_on_a_tenant_route_is_told_what_it_is(
    client: Client, admin_headers: dict[str, str]
) -> None:
    refused = await client.get("/v1/tenant", headers=admin_headers)
    assert refused.status_code == 401
    assert "operator (admin) key" in refused.json()["detail"]
    unknown = await client.get("/v1/tenant", headers={"Authorization": "Bearer bpk_nope"})
    assert unknown.json()["detail"] == "unknown or revoked API key"
