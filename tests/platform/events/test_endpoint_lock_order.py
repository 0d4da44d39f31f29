"""Lock order between an endpoint and its deliveries: the worker recording an attempt takes the
endpoint's row before the delivery's, as deleting, disabling or narrowing the endpoint does, so
none of them is aborted as a deadlock.

The interleaving is forced with a third transaction holding the endpoint's row (another attempt on
the same endpoint being recorded): the endpoint's change queues for the row first, then the
attempt. Once the row is free the change takes it and goes on to the endpoint's deliveries; an
attempt that had locked its delivery before queueing for the endpoint held what the change needed
next, and one of the two was aborted (deadlock_timeout later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.deliveries import Claimed, DeliveryRepository
from billplane.events.models import WebhookDelivery
from billplane.events.schemas import WebhookEndpointUpdate
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.concurrently import held
from tests.platform.events.conftest import LOCAL
from tests.platform.events.helpers import blocks, emit_event, invoice_endpoint

Client = AsyncTestClient[Litestar]
T = TypeVar("T")
Change = Callable[[EndpointService, int], Awaitable[Any]]
Record = Callable[[DeliveryRepository, Claimed], Awaitable[Any]]


async def _deleted(service: EndpointService, endpoint_id: int) -> None:
    await service.delete(endpoint_id)


async def _disabled(service: EndpointService, endpoint_id: int) -> None:
    await service.update(endpoint_id, WebhookEndpointUpdate(status="disabled"))


async def _narrowed(service: EndpointService, endpoint_id: int) -> None:
    await service.update(endpoint_id, WebhookEndpointUpdate(enabled_events=["customer.*"]))


async def _succeeded(deliveries: DeliveryRepository, claimed: Claimed) -> bool:
    return await deliveries.succeeded(claimed, 204)


async def _failed(deliveries: DeliveryRepository, claimed: Claimed) -> tuple[int, Any] | None:
    return await deliveries.failed(claimed, status_code=500, error="HTTP 500", delay=30.0, final=False)


async def _claimed(runtime: Runtime, tenant: CreatedTenant) -> Claimed:
    await emit_event(runtime, tenant, "invoice.paid", 1)
    async with runtime.database.tenant_session(tenant.schema) as session:
        delivery_id = int(await session.scalar(select(WebhookDelivery.id)) or 0)
        claimed = await DeliveryRepository(session).claim(delivery_id, lease_seconds=60)
    assert claimed is not None
    return claimed


async def _in_transaction(
    runtime: Runtime, tenant: CreatedTenant, pid: asyncio.Future[int], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """``work(session)`` in a transaction of its own, whose backend's pid is told first."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        pid.set_result(int(await session.scalar(select(func.pg_backend_pid())) or 0))
        return await work(session)


def _service(runtime: Runtime, tenant: CreatedTenant, session: AsyncSession) -> EndpointService:
    return EndpointService(session, tenant.id, EndpointVault.from_settings(runtime.settings), LOCAL)


@pytest.mark.parametrize("record", [_succeeded, _failed])
@pytest.mark.parametrize("change", [_deleted, _disabled, _narrowed])
async def test_an_attempt_recorded_while_its_endpoint_changes_does_not_deadlock(
    *, client: Client, tenant: CreatedTenant, runtime: Runtime, database_url: str, change: Change, record: Record
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, "https://hooks.example.com/h")
    claimed = await _claimed(runtime, tenant)
    loop = asyncio.get_running_loop()
    changing_pid: asyncio.Future[int] = loop.create_future()
    holding = f"SELECT FROM webhook_endpoints WHERE id = {endpoint_id} FOR NO KEY UPDATE"
    async with held(database_url, tenant.schema, holding) as other:
        changing = asyncio.create_task(
            _in_transaction(runtime, tenant, changing_pid, lambda s: change(_service(runtime, tenant, s), endpoint_id))
        )
        await blocks(runtime, other.get_server_pid())
        recording = asyncio.create_task(
            _in_transaction(runtime, tenant, loop.create_future(), lambda s: record(DeliveryRepository(s), claimed))
        )
        await blocks(runtime, await changing_pid)  # the attempt queued behind the change
    async with asyncio.timeout(30):
        _, recorded = await asyncio.gather(changing, recording)

    async with runtime.database.tenant_session(tenant.schema) as session:
        rows = (await session.execute(select(WebhookDelivery.status, WebhookDelivery.attempts))).all()
    if change is _deleted:
        # The endpoint and its deliveries were gone when the attempt got the row: nothing recorded.
        assert not recorded
        assert rows == []
    elif record is _failed:
        # The change failed the waiting delivery first: a failed attempt of it is not counted.
        assert recorded is None
        assert [tuple(row) for row in rows] == [("failed", 0)]
    else:
        # A 2xx reached the receiver, whatever the endpoint became meanwhile: the row says so.
        assert recorded
        assert [tuple(row) for row in rows] == [("succeeded", 1)]
