"""Rate limits on real requests: 429 with Retry-After, per tenant, never for the operator or webhooks."""

from __future__ import annotations

import json

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.sync_fakes import SIGNATURE_HEADER, AccountRow, StaticAccounts, register_fakes, sign
from tests.ratelimit.conftest import BURST, ManualClock

Client = AsyncTestClient[Litestar]


async def test_over_the_limit_is_429_problem_json_with_retry_after(
    client: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    tenant = await create_tenant(client, admin_headers)
    admitted = [await client.get("/v1/tenant", headers=tenant.headers) for _ in range(BURST)]
    assert [response.status_code for response in admitted] == [200] * BURST
    assert [response.headers["ratelimit-remaining"] for response in admitted] == ["2", "1", "0"]
    assert {response.headers["ratelimit-limit"] for response in admitted} == {str(BURST)}

    refused = await client.get("/v1/customers", headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "1"  # 2 a second: the next token is 0.5 s away, rounded up
    assert (refused.headers["ratelimit-remaining"], refused.headers["ratelimit-reset"]) == ("0", "2")
    assert refused.headers.get_list("ratelimit-limit") == [str(BURST)]  # once, not again by the send hook

    clock.advance(0.5)
    assert (await client.get("/v1/customers", headers=tenant.headers)).status_code == 200
    assert (await client.get("/v1/customers", headers=tenant.headers)).status_code == 429


async def test_a_flooding_tenant_does_not_starve_another(
    client: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    flooder = await create_tenant(client, admin_headers, "flood")
    quiet = await create_tenant(client, admin_headers, "quiet")
    flood = [(await client.get("/v1/customers", headers=flooder.headers)).status_code for _ in range(20)]
    assert flood.count(200) == BURST
    assert flood.count(429) == 20 - BURST
    for _ in range(BURST):
        assert (await client.get("/v1/customers", headers=quiet.headers)).status_code == 200
        assert (await client.get("/v1/customers", headers=flooder.headers)).status_code == 429
    clock.advance(10)
    assert (await client.get("/v1/customers", headers=flooder.headers)).status_code == 200


async def test_a_429_is_not_stored_as_the_idempotency_keys_first_response(
    client: Client, admin_headers: dict[str, str], clock: ManualClock, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    for _ in range(BURST):
        await client.get("/v1/tenant", headers=tenant.headers)
    headers = tenant.headers | {"Idempotency-Key": "create-ada-1"}
    body = {"email": "ada@example.com", "name": "Ada"}
    refused = await client.post("/v1/customers", json=body, headers=headers)
    assert refused.status_code == 429
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM idempotency_keys")) == 0
        assert await session.scalar(text("SELECT count(*) FROM customers")) == 0

    clock.advance(1)
    created = await client.post("/v1/customers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers  # the handler ran: the 429 was not the answer
    clock.advance(1)
    replayed = await client.post("/v1/customers", json=body, headers=headers)
    assert (replayed.status_code, replayed.headers.get("idempotent-replayed")) == (201, "true")
    assert replayed.json()["id"] == created.json()["id"]


async def test_the_operator_api_and_health_are_not_limited(
    client: Client, admin_headers: dict[str, str], clock: ManualClock
) -> None:
    tenant = await create_tenant(client, admin_headers)
    for _ in range(BURST + 1):
        await client.get("/v1/tenant", headers=tenant.headers)
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 429
    for _ in range(3 * BURST):
        operator = await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)
        assert operator.status_code == 200
        assert "ratelimit-limit" not in operator.headers
        assert (await client.get("/health")).status_code == 200
    assert clock.now == ManualClock().now  # no time passed: the tenant is still over its limit
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 429


async def test_inbound_provider_webhooks_are_not_limited(client: Client, admin_headers: dict[str, str]) -> None:
    app_runtime: Runtime = client.app.state.runtime
    register_fakes(app_runtime.plugins, None, names=("fake",))
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    tenant = await create_tenant(client, admin_headers, "hook")
    account = accounts.add(AccountRow(id=9301, tenant_id=tenant.id, tenant_schema=tenant.schema))
    for _ in range(BURST):
        await client.get("/v1/tenant", headers=tenant.headers)
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 429

    for number in range(3 * BURST):  # a provider's retry storm for a tenant that is over its limit
        event = {
            "event_id": f"evt_{number}",
            "type": "subscription.updated",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "provider_object_id": "sub_1",
            "subscription": {"provider_id": "sub_1", "status": "active"},
        }
        body = json.dumps([event]).encode()
        response = await client.post(
            f"/v1/webhooks/fake/{account.id}",
            content=body,
            headers={"content-type": "application/json", SIGNATURE_HEADER: sign(account.webhook_secret, body)},
        )
        assert response.status_code < 300, response.text


async def test_unknown_keys_and_suspended_tenants_are_refused_before_any_limit(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    for _ in range(BURST + 1):
        await client.get("/v1/tenant", headers=tenant.headers)
    assert (await client.get("/v1/tenant", headers={"Authorization": "Bearer bpk_nope"})).status_code == 401
    assert (await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", headers=admin_headers)).status_code == 200
    assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 403
