"""The operator API: tenants and API keys, and the bad input it must refuse."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import create_tenant, unique_slug
from tests.platform.billing_seed import insert, subscribed

Client = AsyncTestClient[Litestar]


async def test_create_tenant_returns_tenant_and_first_key(client: Client, admin_headers: dict[str, str]) -> None:
    slug = unique_slug()
    response = await client.post("/v1/admin/tenants", json={"slug": slug, "name": "Acme"}, headers=admin_headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tenant"]["slug"] == slug
    assert body["tenant"]["status"] == "active"
    assert body["tenant"]["schema_revision"]
    assert body["api_key"]["key"].startswith(body["api_key"]["prefix"])
    fetched = await client.get(f"/v1/admin/tenants/{slug}", headers=admin_headers)
    assert fetched.json()["name"] == "Acme"
    assert "key" not in fetched.text.lower() or body["api_key"]["key"] not in fetched.text


async def test_clear_key_is_never_stored(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    async with runtime.database.control_session() as session:
        dump = await session.scalar(
            text("SELECT string_agg(k::text, ' ') FROM control.api_keys k WHERE tenant_id = :id"), {"id": tenant.id}
        )
    assert dump is not None
    assert tenant.key not in dump
    assert tenant.key[:12] in dump  # the display prefix is kept, so the row is the right one


async def test_list_tenants_pages_with_a_cursor(client: Client, admin_headers: dict[str, str]) -> None:
    created = {(await create_tenant(client, admin_headers, "page")).slug for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/admin/tenants", params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen += [tenant["slug"] for tenant in page["data"]]
        # Insert between pages: keyset paging must neither skip nor repeat a row.
        created.add((await create_tenant(client, admin_headers, "page")).slug) if len(seen) == 2 else None
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert created <= set(seen)


async def test_bad_cursor_and_limit_are_422(client: Client, admin_headers: dict[str, str]) -> None:
    bad_cursor = await client.get("/v1/admin/tenants", params={"cursor": "nope!"}, headers=admin_headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    bad_limit = await client.get("/v1/admin/tenants", params={"limit": "1000"}, headers=admin_headers)
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["field"] == "limit"


async def test_invalid_slug_is_422_naming_the_field(client: Client, admin_headers: dict[str, str]) -> None:
    for slug in ["A", "1abc", "a", "has-dash", "x" * 41, 'a"; drop schema control cascade; --']:
        response = await client.post("/v1/admin/tenants", json={"slug": slug, "name": "x"}, headers=admin_headers)
        assert response.status_code == 422, (slug, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [error["field"] for error in response.json()["errors"]] == ["slug"]


async def test_injection_slug_builds_no_sql(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    slug = 'a"; drop schema control cascade; --'
    response = await client.post("/v1/admin/tenants", json={"slug": slug, "name": "x"}, headers=admin_headers)
    assert response.status_code == 422
    async with runtime.database.control_session() as session:
        schemas = set((await session.execute(text("SELECT nspname FROM pg_namespace"))).scalars())
    assert "control" in schemas
    assert not any('"' in schema or ";" in schema for schema in schemas)


async def test_missing_and_unknown_fields_are_422(client: Client, admin_headers: dict[str, str]) -> None:
    missing = await client.post("/v1/admin/tenants", json={"name": "x"}, headers=admin_headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "slug"
    unknown = await client.post(
        "/v1/admin/tenants", json={"slug": unique_slug(), "name": "x", "plan": "gold"}, headers=admin_headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "plan"
    malformed = await client.post(
        "/v1/admin/tenants", content=b"{not json", headers=admin_headers | {"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith("application/problem+json")


async def test_duplicate_slug_is_409_and_changes_nothing(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    again = await client.post("/v1/admin/tenants", json={"slug": tenant.slug, "name": "Other"}, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    current = await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)
    assert current.json()["name"] == tenant.slug.title()
    keys = await client.get(f"/v1/admin/tenants/{tenant.slug}/api-keys", headers=admin_headers)
    assert len(keys.json()["data"]) == 1


async def test_admin_routes_need_the_admin_key(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    for headers in [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, tenant.headers]:
        response = await client.get("/v1/admin/tenants", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_delete_tenant_drops_its_schema(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 404
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 401
    async with runtime.database.control_session() as session:
        exists = await session.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :schema"), {"schema": tenant.schema}
        )
    assert exists == 0
    assert (await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 404


async def test_a_tenant_holding_money_at_its_providers_is_not_deleted(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    # Its schema gone, a subscription Stripe bills would go on charging, and a pending payment
    # could be settled no more: refused, as deleting one of its provider accounts would be.
    tenant = await create_tenant(client, admin_headers)
    url = f"/v1/admin/tenants/{tenant.slug}"
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        payment = await insert(session, "payments", customer_id=customer, amount=500, currency="USD", status="pending")
        _, subscription = await subscribed(session, provider="stripe")
    refused = await client.delete(url, headers=admin_headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        f"tenant {tenant.slug!r} cannot be deleted yet: 1 live subscriptions are billed by their provider: cancel "
        "them first; payments or refunds are still pending: let them settle, or resolve them"
    )
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200  # all there
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE payments SET status = 'failed' WHERE id = :id"), {"id": payment})
        await session.execute(text("UPDATE subscriptions SET status = 'canceled' WHERE id = :id"), {"id": subscription})
    assert (await client.delete(url, headers=admin_headers)).status_code == 204


async def test_issue_and_revoke_keys(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    issued = await client.post(f"/v1/admin/tenants/{tenant.slug}/api-keys", headers=admin_headers)
    assert issued.status_code == 201
    second = {"Authorization": f"Bearer {issued.json()['key']}"}
    assert (await client.get("/v1/tenant", headers=second)).json()["slug"] == tenant.slug
    revoke = await client.delete(f"/v1/admin/tenants/{tenant.slug}/api-keys/{tenant.key_id}", headers=admin_headers)
    assert revoke.status_code == 204
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 401
    assert (await client.get("/v1/tenant", headers=second)).status_code == 200
    listed = (await client.get(f"/v1/admin/tenants/{tenant.slug}/api-keys", headers=admin_headers)).json()["data"]
    assert [key["revoked_at"] is not None for key in listed] == [True, False]
    assert all("key" not in key for key in listed)


async def test_list_api_keys_pages_with_a_cursor(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    path = f"/v1/admin/tenants/{tenant.slug}/api-keys"
    issued = [tenant.key_id] + [(await client.post(path, headers=admin_headers)).json()["id"] for _ in range(4)]
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        assert all("key" not in key for key in page["data"])
        seen += [key["id"] for key in page["data"]]
        if len(seen) == 2:  # issued between pages: keyset paging neither skips nor repeats a key
            issued.append((await client.post(path, headers=admin_headers)).json()["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == issued  # oldest first, each once
    first = (await client.get(path, headers=admin_headers)).json()
    assert (len(first["data"]), first["next_cursor"]) == (6, None)  # the default limit holds them all


async def test_api_keys_list_refuses_bad_cursors_limits_and_parameters(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    path = f"/v1/admin/tenants/{tenant.slug}/api-keys"
    refused: dict[str, str] = {}
    for params in [{"cursor": "nope!"}, {"limit": "0"}, {"revoked": "false"}]:
        response = await client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 422, (params, response.text)
        [error] = response.json()["errors"]
        refused[error["field"]] = error["message"]
    assert refused == {
        "cursor": "not a cursor returned by this API",
        "limit": "Expected `int` >= 1",
        "revoked": "not a query parameter of this route (it takes: cursor, limit)",
    }
    unknown = await client.get(f"/v1/admin/tenants/{unique_slug()}/api-keys", headers=admin_headers)
    assert unknown.status_code == 404, unknown.text


async def test_revoking_another_tenants_key_is_404(client: Client, admin_headers: dict[str, str]) -> None:
    first = await create_tenant(client, admin_headers)
    second = await create_tenant(client, admin_headers)
    response = await client.delete(f"/v1/admin/tenants/{first.slug}/api-keys/{second.key_id}", headers=admin_headers)
    assert response.status_code == 404
    assert (await client.get("/v1/tenant", headers=second.headers)).status_code == 200


async def test_body_over_one_mebibyte_is_413(client: Client, admin_headers: dict[str, str]) -> None:
    huge = {"slug": unique_slug(), "name": "x" * (1024 * 1024)}
    response = await client.post("/v1/admin/tenants", json=huge, headers=admin_headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/v1/admin/tenants/{huge['slug']}", headers=admin_headers)).status_code == 404
