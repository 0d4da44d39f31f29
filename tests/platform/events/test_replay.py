"""Replays: two at once queue each event once; an event in flight is queued again behind the older ones."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text, update

from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.deliveries import DeliveryRepository
from billplane.events.models import WebhookDelivery
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST, LOCAL
from tests.platform.events.helpers import drain, emit_event, fail_deliveries, invoice_endpoint, pending
from tests.platform.events.receiver import Receiver

Client = AsyncTestClient[Litestar]


async def test_concurrent_replays_queue_each_event_once(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, "https://hooks.example.com/h")
    await emit_event(runtime, tenant, "invoice.paid", 1)
    await emit_event(runtime, tenant, "invoice.paid", 2)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(update(WebhookDelivery).values(status="succeeded"))
    vault = EndpointVault.from_settings(runtime.settings)
    since = datetime.now(UTC) - timedelta(hours=1)

    async def replay_and_commit() -> int:
        async with runtime.database.tenant_session(tenant.schema) as session:
            return await EndpointService(session, tenant.id, vault, LOCAL).replay(endpoint_id, since)

    async with runtime.database.tenant_session(tenant.schema) as first:
        assert await EndpointService(first, tenant.id, vault, LOCAL).replay(endpoint_id, since) == 2
        second = asyncio.create_task(replay_and_commit())
        await asyncio.sleep(0.3)
        waited = not second.done()  # the endpoint's lock holds it until the first commits
    assert waited
    assert await second == 0
    assert await pending(runtime, tenant) == 2
    await fail_deliveries(runtime, tenant)


async def test_a_replay_queues_an_event_in_flight_again_behind_the_older_ones(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, hooks.url)
    await emit_event(runtime, tenant, "invoice.created", 1)
    await drain(runtime, tenant, FAST)
    await emit_event(runtime, tenant, "invoice.paid", 1)
    [ref] = await webhook_services(runtime, FAST).sweeper.due([(tenant.id, tenant.schema)])
    async with runtime.database.tenant_session(tenant.schema) as session:
        in_flight = await DeliveryRepository(session).claim(ref.delivery_id, lease_seconds=60)
    assert in_flight is not None

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    path = f"/v1/webhook-endpoints/{endpoint_id}/replay"
    replayed = await client.post(path, json={"since": since}, headers=tenant.headers)
    assert replayed.json() == {"queued": 2}  # invoice.created, and invoice.paid again
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await DeliveryRepository(session).succeeded(in_flight, 204)  # the attempt in flight got through
    hooks.received.clear()

    await drain(runtime, tenant, FAST)

    # The receiver's last word about invoice 1 is its latest event, not the replayed older one.
    assert [json.loads(got.body)["type"] for got in hooks.received] == ["invoice.created", "invoice.paid"]
    async with runtime.database.tenant_session(tenant.schema) as session:
        query = select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status != "succeeded")
        assert await session.scalar(query) == 0


async def test_a_replay_reaches_back_30_days_at_most(client: Client, tenant: CreatedTenant, runtime: Runtime) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, "https://hooks.example.com/h")
    await emit_event(runtime, tenant, "invoice.paid", 1)
    await emit_event(runtime, tenant, "invoice.paid", 2)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE events SET created_at = now() - interval '40 days' WHERE object_id = 1"))
        await session.execute(text("UPDATE events SET created_at = now() - interval '29 days' WHERE object_id = 2"))
        await session.execute(update(WebhookDelivery).values(status="succeeded"))
    path = f"/v1/webhook-endpoints/{endpoint_id}/replay"
    now = datetime.now(UTC)

    refused = await client.post(path, json={"since": (now - timedelta(days=41)).isoformat()}, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in refused.json()["errors"]] == ["since"]
    assert "30 days" in refused.json()["errors"][0]["message"]
    assert await pending(runtime, tenant) == 0  # nothing queued

    # Exactly "the last 30 days", as a client computed it a moment ago: accepted.
    within = await client.post(path, json={"since": (now - timedelta(days=30)).isoformat()}, headers=tenant.headers)
    assert within.json() == {"queued": 1}, within.text  # invoice 2 only

    client.app.state[OPTIONS_STATE_KEY] = replace(LOCAL, max_replay_days=7)
    shorter = await client.post(path, json={"since": (now - timedelta(days=8)).isoformat()}, headers=tenant.headers)
    assert shorter.status_code == 422, shorter.text
    assert await pending(runtime, tenant) == 1
    await fail_deliveries(runtime, tenant)
