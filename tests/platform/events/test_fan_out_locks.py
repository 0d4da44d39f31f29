"""The endpoint locks of the fan-out (``billplane.events.emit.ENABLED_ENDPOINTS``): a writer skips an
endpoint deleted while it runs instead of failing on its foreign key, nothing deadlocks, and a
replay holds no writer back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from billplane.billing.cycle import Event as RunEvent
from billplane.billing.driver import begin_on_driver
from billplane.billing.recording import record
from billplane.customers.repository import create_customer
from billplane.events import service as endpoint_service
from billplane.events.emit import emit
from billplane.events.models import Event, WebhookDelivery
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.runtime import Runtime
from billplane.sync.repository import queued_insert_params
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import LOCAL
from tests.platform.events.helpers import blocks, emit_event

Client = AsyncTestClient[Litestar]
Writer = Callable[[Runtime, CreatedTenant], Coroutine[Any, Any, None]]


async def _endpoint(client: Client, tenant: CreatedTenant, *, events: str = "*") -> int:
    body = {"url": "https://hooks.example.com/h", "enabled_events": [events]}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _service(runtime: Runtime, tenant: CreatedTenant, session: Any) -> EndpointService:
    return EndpointService(session, tenant.id, EndpointVault.from_settings(runtime.settings), LOCAL)


async def _pid(session: Any) -> int:
    return int(await session.scalar(select(func.pg_backend_pid())))


async def _emitted(runtime: Runtime, tenant: CreatedTenant) -> None:
    await emit_event(runtime, tenant, "invoice.paid", 1)


async def _customer_created(runtime: Runtime, tenant: CreatedTenant) -> None:
    # POST /v1/customers's statement. Not through the test client: it runs the app on another
    # thread and blocks this one's loop until it answers, so the delete could never commit.
    values: dict[str, Any] = {"email": "a@example.com", "name": None, "external_id": None, "metadata": {}}
    async with runtime.database.tenant_session(tenant.schema) as session:
        await create_customer(session, values, queued_insert_params(tenant.id, tenant.schema, []))


async def _billing_run_recorded(runtime: Runtime, tenant: CreatedTenant) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        driver = await begin_on_driver(session)
        events = [RunEvent("invoice.created", "invoice", 1, {"id": 1})]
        await record(driver, events, [], (tenant.id, tenant.schema), endpoints=True, resumed=[])


async def _deliveries(runtime: Runtime, tenant: CreatedTenant) -> list[tuple[int, str]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        query = select(WebhookDelivery.endpoint_id, Event.type).join(Event, Event.id == WebhookDelivery.event_id)
        return [(row.endpoint_id, row.type) for row in await session.execute(query.order_by(WebhookDelivery.id))]


@pytest.mark.parametrize("write", [_emitted, _customer_created, _billing_run_recorded])
async def test_a_writer_that_read_the_endpoint_before_its_delete_committed_skips_it(
    *, client: Client, tenant: CreatedTenant, runtime: Runtime, write: Writer
) -> None:
    deleted, kept = await _endpoint(client, tenant), await _endpoint(client, tenant)
    async with runtime.database.tenant_session(tenant.schema) as deleting:
        await _service(runtime, tenant, deleting).delete(deleted)
        writing = asyncio.create_task(write(runtime, tenant))
        # Its statement began before the delete committed, and waits for it: a foreign key check
        # that found the row gone then failed the writer's whole transaction.
        await blocks(runtime, await _pid(deleting))
    await writing
    deliveries = await _deliveries(runtime, tenant)
    written = [endpoint for endpoint, type_ in deliveries if not type_.startswith("webhook_endpoint.")]
    assert written == [kept]


async def test_a_delete_waits_for_a_writer_that_queued_a_delivery_to_the_endpoint(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    endpoint = await _endpoint(client, tenant)

    async def delete() -> None:
        async with runtime.database.tenant_session(tenant.schema) as session:
            await _service(runtime, tenant, session).delete(endpoint)

    async with runtime.database.tenant_session(tenant.schema) as writing:
        await emit(writing, "invoice.created", "invoice", 1, {"id": 1})
        deleting = asyncio.create_task(delete())
        await blocks(runtime, await _pid(writing))
        # The writer fans out to the endpoint again while the delete waits for it: it holds the
        # endpoint's lock already, so it neither waits for the delete nor skips the endpoint.
        count = select(func.count()).select_from(WebhookDelivery)
        before = int(await writing.scalar(count) or 0)
        await emit(writing, "invoice.paid", "invoice", 1, {"id": 1})
        assert await writing.scalar(count) == before + 1
    await deleting  # the cascade then removed what the writer queued
    assert await _deliveries(runtime, tenant) == []


async def test_two_deletes_at_once_do_not_deadlock(
    client: Client, tenant: CreatedTenant, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await _endpoint(client, tenant), await _endpoint(client, tenant)
    met = asyncio.Event()
    arrived: list[int] = []

    async def meeting(*args: Any) -> None:
        # Each delete's event waits (a while) for the other's delete to have happened: then each
        # transaction holds its endpoint's row and fans its event out to the other's.
        arrived.append(1)
        if len(arrived) == 2:
            met.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(met.wait(), 2.0)
        await emit(*args)

    monkeypatch.setattr(endpoint_service, "emit", meeting)

    async def delete(endpoint_id: int) -> None:
        async with runtime.database.tenant_session(tenant.schema) as session:
            await _service(runtime, tenant, session).delete(endpoint_id)

    async with asyncio.timeout(30):
        await asyncio.gather(delete(first), delete(second))
    assert await _deliveries(runtime, tenant) == []


async def test_an_event_is_written_while_a_replay_of_its_endpoint_runs(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    endpoint = await _endpoint(client, tenant, events="invoice.*")
    async with runtime.database.tenant_session(tenant.schema) as replaying:
        await _service(runtime, tenant, replaying).replay(endpoint, None)
        # A replay that locked out the fan-out would hold every writer of the tenant until it commits.
        async with asyncio.timeout(5):
            await emit_event(runtime, tenant, "invoice.paid", 1)
    assert await _deliveries(runtime, tenant) == [(endpoint, "invoice.paid")]
