"""/v1/webhook-endpoints: CRUD, the secret shown once and sealed at rest, URL rules, replay."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update

from billplane.events.models import WebhookDelivery, WebhookEndpoint
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
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
