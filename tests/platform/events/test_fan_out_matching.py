"""A fan-out locks only the endpoints its events go to (``billplane.events.emit.ENABLED_ENDPOINTS``):
deleting an endpoint that takes none of them does not wait for a writer still running, while one
that takes them still does (and a delivery queued meanwhile goes with it). A delivery queued by a
writer that overlapped a narrowing of its endpoint's filter is not sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.cycle import Event as RunEvent
from billplane.billing.driver import begin_on_driver
from billplane.billing.recording import record
from billplane.events.emit import emit
from billplane.events.models import WebhookDelivery
from billplane.events.schemas import WebhookEndpointUpdate
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST, LOCAL
from tests.platform.events.helpers import blocks, drain, invoice_endpoint
from tests.platform.events.receiver import Receiver

Client = AsyncTestClient[Litestar]
# A writer's transaction, left open: it wrote an invoice event and fanned it out.
Writing = Callable[[Runtime, CreatedTenant], AbstractAsyncContextManager[AsyncSession]]
# Long enough for any delete that waits for nothing; one that waits for the writer never ends in it.
_GUARD = 5.0


@asynccontextmanager
async def _emitted(runtime: Runtime, tenant: CreatedTenant) -> AsyncIterator[AsyncSession]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        await emit(session, "invoice.paid", "invoice", 1, {"id": 1})
        yield session


@asynccontextmanager
async def _billing_run_recorded(runtime: Runtime, tenant: CreatedTenant) -> AsyncIterator[AsyncSession]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        driver = await begin_on_driver(session)
        events = [RunEvent("invoice.created", "invoice", 1, {"id": 1})]
        await record(driver, events, [], (tenant.id, tenant.schema), endpoints=True, resumed=[])
        yield session


async def _endpoint(client: Client, tenant: CreatedTenant, events: str) -> int:
    body = {"url": "https://hooks.example.com/h", "enabled_events": [events]}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _service(runtime: Runtime, tenant: CreatedTenant, session: AsyncSession) -> EndpointService:
    return EndpointService(session, tenant.id, EndpointVault.from_settings(runtime.settings), LOCAL)


async def _delete(runtime: Runtime, tenant: CreatedTenant, endpoint_id: int) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        await _service(runtime, tenant, session).delete(endpoint_id)


async def _deliveries(runtime: Runtime, tenant: CreatedTenant) -> list[int]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        query = select(WebhookDelivery.endpoint_id).order_by(WebhookDelivery.id)
        return [int(endpoint_id) for endpoint_id in (await session.scalars(query)).all()]


@pytest.mark.parametrize("writing", [_emitted, _billing_run_recorded])
async def test_a_fan_out_holds_only_the_endpoints_its_events_go_to(
    *, client: Client, tenant: CreatedTenant, runtime: Runtime, writing: Writing
) -> None:
    taking, other = await _endpoint(client, tenant, "invoice.*"), await _endpoint(client, tenant, "customer.*")
    async with writing(runtime, tenant) as writer:
        # The endpoint its event does not go to is not held: its delete goes through at once.
        async with asyncio.timeout(_GUARD):
            await _delete(runtime, tenant, other)
        # The one it goes to is: its delete waits for the writer, then takes what it queued along.
        deleting = asyncio.create_task(_delete(runtime, tenant, taking))
        await blocks(runtime, int(await writer.scalar(select(func.pg_backend_pid())) or 0))
        assert await writer.scalar(select(func.count()).where(WebhookDelivery.endpoint_id == taking)) == 1
    await deleting
    assert await _deliveries(runtime, tenant) == []


async def test_a_delivery_queued_while_its_endpoint_was_narrowed_is_not_sent(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, hooks.url)
    # The narrowing commits first, while the writer's delivery is not committed yet: it cannot
    # fail that one as it fails the waiting deliveries it sees.
    async with (
        _emitted(runtime, tenant),
        asyncio.timeout(_GUARD),
        runtime.database.tenant_session(tenant.schema) as narrowing,
    ):
        update = WebhookEndpointUpdate(enabled_events=["customer.*"])
        await _service(runtime, tenant, narrowing).update(endpoint_id, update)

    assert await drain(runtime, tenant, FAST) == ["failed"]

    assert hooks.received == []
    async with runtime.database.tenant_session(tenant.schema) as session:
        delivery = (await session.scalars(select(WebhookDelivery))).one()
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert delivery.last_error == "the endpoint no longer subscribes to this event"
