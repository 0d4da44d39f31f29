"""API key scopes: a key does what its scopes allow and is refused the rest (403, nothing written);
keys are issued with scopes through the operator API, which checks them."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from billplane.api import scopes
from billplane.app import create_app
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from tests.conftest import CreatedTenant, create_tenant

Client = AsyncTestClient[Litestar]


def _resources() -> set[str]:
    settings = Settings(
        database=DatabaseSettings(url="postgresql://collect@127.0.0.1:1/none"),
        security=SecuritySettings(admin_key="x" * 32, secret_key="y" * 32),
    )
    paths = [route.path for route in create_app(settings).routes if isinstance(route, HTTPRoute)]
    # The operator's routes take the admin key, provider webhooks their provider's signature.
    return {path.split("/")[2] for path in paths if re.match(r"^/v1/(?!admin|webhooks)[^/]+", path)}


def test_every_tenant_route_names_a_resource_a_scope_can_name() -> None:
    assert _resources() == set(scopes.RESOURCES) | scopes.UNSCOPED


@pytest.mark.parametrize(
    ("granted", "method", "path", "verdict"),
    [
        (["*"], "DELETE", "/v1/customers/1", "allowed"),
        (["read"], "GET", "/v1/invoices/7", "allowed"),
        (["read"], "POST", "/v1/invoices/7/pay", "refused"),
        (["customers:write"], "GET", "/v1/customers", "allowed"),  # write covers reads
        (["customers:write"], "PATCH", "/v1/customers/1", "allowed"),
        (["customers:read"], "PATCH", "/v1/customers/1", "refused"),
        (["customers:write"], "GET", "/v1/plans", "refused"),
        (["usage-records:write"], "POST", "/v1/subscriptions/1/preview", "refused"),  # an action writes
        (["events:read"], "GET", "/v1/tenant", "allowed"),  # who the key belongs to: no scope needed
    ],
)
def test_scopes_allow_what_they_name(granted: list[str], method: str, path: str, verdict: str) -> None:
    allowed = scopes.allows(granted, scopes.needed(method, path))
    assert ("allowed" if allowed else "refused") == verdict


async def _key(
    client: Client, admin_headers: dict[str, str], tenant: CreatedTenant, granted: list[str]
) -> dict[str, str]:
    issued = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/api-keys", json={"scopes": granted}, headers=admin_headers
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["scopes"] == granted
    return {"Authorization": f"Bearer {issued.json()['key']}"}


async def test_a_read_only_key_reads_and_is_refused_writes(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "scope")
    reader = await _key(client, admin_headers, tenant, ["read"])

    listed = await client.get("/v1/customers", headers=reader)
    refused = await client.post("/v1/customers", json={"name": "Ada"}, headers=reader)

    assert listed.status_code == 200, listed.text
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "this API key's scopes do not allow customers:write"
    assert (await client.get("/v1/customers", headers=tenant.headers)).json()["data"] == []  # nothing written
    assert (await client.get("/v1/tenant", headers=reader)).status_code == 200


async def test_a_key_for_one_resource_is_refused_the_others(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "scope")
    reporter = await _key(client, admin_headers, tenant, ["usage-records:write"])

    reported = await client.post("/v1/usage-records", json={"records": []}, headers=reporter)
    other = await client.get("/v1/customers", headers=reporter)

    assert reported.status_code == 422, reported.text  # past the scope check, refused for its body
    assert other.status_code == 403, other.text
    assert other.json()["detail"] == "this API key's scopes do not allow customers:read"


async def test_keys_are_issued_with_checked_scopes(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "scope")
    path = f"/v1/admin/tenants/{tenant.slug}/api-keys"

    bad = await client.post(path, json={"scopes": ["read", "customers:delete", "ledger:read"]}, headers=admin_headers)
    default = await client.post(path, headers=admin_headers)
    twice = await client.post(path, json={"scopes": ["plans:read", "plans:read"]}, headers=admin_headers)

    assert bad.status_code == 422, bad.text
    assert [error["field"] for error in bad.json()["errors"]] == ["scopes[1]", "scopes[2]"]
    assert (default.status_code, default.json()["scopes"]) == (201, ["*"])
    assert twice.json()["scopes"] == ["plans:read"]
    listed = (await client.get(path, headers=admin_headers)).json()["data"]
    assert [key["scopes"] for key in listed] == [["*"], ["*"], ["plans:read"]]  # the first key, then the two issued
