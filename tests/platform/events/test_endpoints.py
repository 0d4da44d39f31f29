"""/v1/webhook-endpoints: CRUD, the secret shown once and sealed at rest, URL rules, replay."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text, update

from billplane.api.problems import ConflictError
from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.models import Event, WebhookDelivery, WebhookEndpoint
from billplane.events.schemas import WebhookEndpointCreate
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import LOCAL
from tests.platform.events.helpers import emit_event
from tests.platform.listable import events_listable

Client = AsyncTestClient[Litestar]
URL = "https://hooks.example.com/billing"


async def _create(client: Client, tenant: CreatedTenant, **body: object) -> dict[str, object]:
    response = await client.post("/v1/webhook-endpoints", json={"url": URL, **body}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_the_secret_is_shown_once_and_sealed_at_rest(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    created = await _create(client, tenant, description="books", enabled_events=["invoice.*"], metadata={"a": "b"})
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert created["enabled_events"] == ["invoice.*"]
    assert created["status"] == "enabled"

    path = f"/v1/webhook-endpoints/{created['id']}"
    later = [
        await client.get(path, headers=tenant.headers),
        await client.get("/v1/webhook-endpoints", headers=tenant.headers),
        await client.patch(path, json={"description": "ledger"}, headers=tenant.headers),
        await client.get("/v1/events", headers=tenant.headers),
    ]
    for response in later:
        assert response.status_code == 200, response.text
        assert "secret" not in response.text
        assert secret.removeprefix("whsec_") not in response.text
    async with runtime.database.tenant_session(tenant.schema) as session:
        row = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert secret.encode() not in row.secret_ciphertext
    assert row.secret_key_id


async def test_rotating_shows_a_new_secret_once(client: Client, tenant: CreatedTenant, runtime: Runtime) -> None:
    created = await _create(client, tenant)
    rotated = await client.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    await events_listable(runtime.settings.database.url)
    events = (await client.get("/v1/events", headers=tenant.headers)).json()["data"]
    assert [event["type"] for event in events] == ["webhook_endpoint.created", "webhook_endpoint.updated"]
    assert events[1]["object_id"] == created["id"]
    assert "secret" not in events[1]["data"]
    for secret in (str(created["secret"]), rotated.json()["secret"]):
        assert secret.removeprefix("whsec_") not in str(events)


async def test_update_and_delete(client: Client, tenant: CreatedTenant, runtime: Runtime) -> None:
    created = await _create(client, tenant)
    path = f"/v1/webhook-endpoints/{created['id']}"
    body = {"url": "https://other.example.com/h", "enabled_events": ["customer.created"], "status": "disabled"}
    updated = await client.patch(path, json=body, headers=tenant.headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["url"] == body["url"]
    assert updated.json()["status"] == "disabled"
    assert updated.json()["disabled_reason"] == "disabled by the tenant"
    enabled = await client.patch(path, json={"status": "enabled"}, headers=tenant.headers)
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["disabled_reason"] is None
    same = await client.patch(path, json={"status": "enabled", "url": body["url"]}, headers=tenant.headers)
    assert same.status_code == 200, same.text  # what it has already: no event (below)
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    await events_listable(runtime.settings.database.url)
    types = [event["type"] for event in (await client.get("/v1/events", headers=tenant.headers)).json()["data"]]
    assert types == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]


async def test_narrowing_the_filter_fails_the_waiting_deliveries_it_no_longer_takes(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    created = await _create(client, tenant, enabled_events=["invoice.*", "customer.*"])
    await emit_event(runtime, tenant, "customer.updated", 1)
    await emit_event(runtime, tenant, "invoice.paid", 2)

    narrowed = {"enabled_events": ["invoice.*"]}
    patched = await client.patch(f"/v1/webhook-endpoints/{created['id']}", json=narrowed, headers=tenant.headers)

    assert patched.status_code == 200, patched.text
    async with runtime.database.tenant_session(tenant.schema) as session:
        found = await session.execute(
            select(Event.type, WebhookDelivery.status, WebhookDelivery.last_error)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .order_by(WebhookDelivery.id)
        )
        deliveries = [tuple(row) for row in found]
    assert deliveries == [
        ("customer.updated", "failed", "the endpoint no longer subscribes to this event"),
        ("invoice.paid", "pending", None),
    ]


FORBIDDEN_URLS = [
    "http://hooks.example.com/h",  # not https
    "ftp://hooks.example.com/h",
    "https://10.1.2.3/h",  # private
    "https://192.168.0.10/h",
    "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "https://[fd00::1]/h",
    "https://[::ffff:10.0.0.1]/h",
    "https://0.0.0.0/h",
    "https://metadata.internal/h",
    "https://intranet/h",
    "https://user:pw@hooks.example.com/h",
    "not a url",
    # Accepted once, then every delivery raised: control characters, invalid IDNA, bad labels.
    "https://hooks\x01.example.com/h",
    "https://ho\u200boks.example.com/h",
    "https://xn--zz.example.com/h",
    "https://hooks..example.com/h",
    "https://" + "a" * 64 + ".example.com/h",
    # IPv4 in disguise (127.0.0.1) and IPv6 carrying a private IPv4 (10.0.0.1).
    "https://127.1/h",
    "https://0x7f.1/h",
    "https://2130706433/h",
    "https://[64:ff9b::a00:1]/h",
    "https://[2002:a00:1::]/h",
    "https://[fec0::1]/h",
]


async def test_a_url_billplane_must_not_call_is_422(client: Client, tenant: CreatedTenant) -> None:
    # One tenant for every URL: a tenant costs more than the requests.
    for url in FORBIDDEN_URLS:
        response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["errors"][0]["field"] == "url"
    assert (await client.get("/v1/webhook-endpoints", headers=tenant.headers)).json()["data"] == []


async def test_loopback_needs_the_setting(client: Client, tenant: CreatedTenant) -> None:
    url = "http://127.0.0.1:8080/h"
    assert (await client.post("/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers)).status_code == 201
    client.app.state["webhook_options"] = None  # back to the environment's default: refused
    response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers)
    assert response.status_code == 422, response.text


async def test_bad_event_patterns_are_422(client: Client, tenant: CreatedTenant) -> None:
    for patterns in (["Invoice.Paid"], ["invoice"], ["invoice.*.paid"], ["*.paid"]):
        body = {"url": URL, "enabled_events": patterns}
        response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
        assert response.status_code == 422, (patterns, response.text)


async def _settle_everything(runtime: Runtime, tenant: CreatedTenant) -> None:
    """As if every delivery so far had succeeded (no receiver needed)."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(update(WebhookDelivery).values(status="succeeded"))


async def test_replay_requeues_matching_events_since_a_time(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    created = await _create(client, tenant, enabled_events=["invoice.*"])
    path = f"/v1/webhook-endpoints/{created['id']}"
    await emit_event(runtime, tenant, "invoice.paid", 1)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE events SET created_at = now() - interval '2 hours'"))
    since = datetime.now(UTC) - timedelta(hours=1)
    await emit_event(runtime, tenant, "invoice.paid", 2)
    await emit_event(runtime, tenant, "invoice.voided", 3)
    await emit_event(runtime, tenant, "customer.created", 4)  # not subscribed
    await _settle_everything(runtime, tenant)

    replayed = await client.post(f"{path}/replay", json={"since": since.isoformat()}, headers=tenant.headers)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"queued": 2}
    again = await client.post(f"{path}/replay", json={"since": since.isoformat()}, headers=tenant.headers)
    assert again.json() == {"queued": 0}  # still waiting: not queued twice

    waiting = (await client.get(f"{path}/deliveries?status=pending", headers=tenant.headers)).json()["data"]
    await events_listable(runtime.settings.database.url)
    events = (await client.get("/v1/events?type=invoice.*", headers=tenant.headers)).json()["data"]
    assert [event["object_id"] for event in events] == [1, 2, 3]
    assert [delivery["event_id"] for delivery in waiting] == [event["id"] for event in events[1:]]

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await client.post(f"{path}/replay", json={"since": future}, headers=tenant.headers)).status_code == 422
    await client.patch(path, json={"status": "disabled"}, headers=tenant.headers)
    disabled = await client.post(f"{path}/replay", json={"since": since.isoformat()}, headers=tenant.headers)
    assert disabled.status_code == 409
    # Disabling failed what was waiting.
    assert (await client.get(f"{path}/deliveries?status=pending", headers=tenant.headers)).json()["data"] == []


async def _written(runtime: Runtime, tenant: CreatedTenant) -> tuple[int, int]:
    """(endpoints, webhook_endpoint.created events) in the tenant's schema."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        endpoints = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
        created = select(func.count()).select_from(Event).where(Event.type == "webhook_endpoint.created")
        return int(endpoints or 0), int(await session.scalar(created) or 0)


async def test_a_tenant_has_at_most_16_endpoints_and_deleted_ones_do_not_count(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    made = [await _create(client, tenant) for _ in range(16)]
    disabled = await client.patch(
        f"/v1/webhook-endpoints/{made[0]['id']}", json={"status": "disabled"}, headers=tenant.headers
    )
    assert disabled.status_code == 200, disabled.text  # a disabled endpoint still counts

    refused = await client.post("/v1/webhook-endpoints", json={"url": URL}, headers=tenant.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "conflict"
    assert "at most 16 webhook endpoints" in refused.json()["detail"]
    assert "secret" not in refused.json()
    assert await _written(runtime, tenant) == (16, 16)  # no endpoint, no event

    assert (await client.delete(f"/v1/webhook-endpoints/{made[1]['id']}", headers=tenant.headers)).status_code == 204
    await _create(client, tenant)
    assert await _written(runtime, tenant) == (16, 17)


async def test_the_endpoint_cap_comes_from_the_options(client: Client, tenant: CreatedTenant) -> None:
    client.app.state[OPTIONS_STATE_KEY] = replace(LOCAL, max_endpoints=1)
    await _create(client, tenant)
    refused = await client.post("/v1/webhook-endpoints", json={"url": URL}, headers=tenant.headers)
    assert refused.status_code == 409, refused.text
    assert "at most 1 webhook endpoints" in refused.json()["detail"]


async def test_two_creates_at_once_one_below_the_cap_make_one_endpoint(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    for _ in range(15):
        await _create(client, tenant)
    vault = EndpointVault.from_settings(runtime.settings)
    body = WebhookEndpointCreate(url=URL)

    async def create_and_commit() -> str:
        try:
            async with runtime.database.tenant_session(tenant.schema) as session:
                await EndpointService(session, tenant.id, vault, LOCAL).create(body)
        except ConflictError:
            return "refused"
        return "created"

    async with runtime.database.tenant_session(tenant.schema) as first:
        await EndpointService(first, tenant.id, vault, LOCAL).create(body)  # the 16th, not yet committed
        second = asyncio.create_task(create_and_commit())
        await asyncio.sleep(0.3)
        waited = not second.done()  # the tenant's lock holds it until the first commits
    # Both counted 15 without the lock: (False, "created", (17, 17)).
    assert (waited, await second, await _written(runtime, tenant)) == (True, "refused", (16, 16))
