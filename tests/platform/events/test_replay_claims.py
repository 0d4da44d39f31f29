"""A replay and the deliveries to its endpoint: no delivery is claimed while a replay queues older
events, and attempts record their outcomes without waiting for a replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.deliveries import DeliveryRepository
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.events.worker import delivery_listener, webhook_services
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST, LOCAL
from tests.platform.events.helpers import deliver_jobs, drain, emit_event, fail_deliveries, invoice_endpoint
from tests.platform.events.receiver import Receiver
from tests.platform.sync_fakes import clear_jobs

Client = AsyncTestClient[Litestar]


def _service(runtime: Runtime, tenant: CreatedTenant, session: AsyncSession) -> EndpointService:
    return EndpointService(session, tenant.id, EndpointVault.from_settings(runtime.settings), LOCAL)


async def _until(condition: Callable[[], object], *, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"not within {within} s"
        await asyncio.sleep(0.01)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


async def test_a_delivery_due_while_a_replay_runs_goes_after_the_replayed_older_event(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, hooks.url)
    await emit_event(runtime, tenant, "invoice.created", 1)
    await drain(runtime, tenant, FAST)
    await emit_event(runtime, tenant, "invoice.paid", 1)  # due: waiting for its turn, a replay skips it
    services = webhook_services(runtime, FAST)
    [newer] = await services.sweeper.due([(tenant.id, tenant.schema)])
    hooks.received.clear()
    async with runtime.database.tenant_session(tenant.schema) as replaying:
        assert await _service(runtime, tenant, replaying).replay(endpoint_id, _since()) == 1  # invoice.created
        attempt = asyncio.create_task(services.deliverer.deliver(newer))
        # Claimed now, it would reach the receiver before the replayed older event is even committed.
        await _until(lambda: attempt.done() or hooks.received)
    assert await attempt == "skipped"
    # The replay's notification: the listener finds the replayed event due, and the newer one
    # behind it (the job that delivers the older one queues it next).
    [older] = await services.sweeper.due_of_schemas([tenant.schema])
    assert older.delivery_id != newer.delivery_id
    await drain(runtime, tenant, FAST)
    assert [json.loads(got.body)["type"] for got in hooks.received] == ["invoice.created", "invoice.paid"]


async def test_an_attempt_records_its_outcome_while_a_replay_of_its_endpoint_runs(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, hooks.url)
    await emit_event(runtime, tenant, "invoice.paid", 1)
    [due] = await webhook_services(runtime, FAST).sweeper.due([(tenant.id, tenant.schema)])
    async with runtime.database.tenant_session(tenant.schema) as session:
        in_flight = await DeliveryRepository(session).claim(due.delivery_id, lease_seconds=60)
    assert in_flight is not None
    async with runtime.database.tenant_session(tenant.schema) as replaying:
        assert await _service(runtime, tenant, replaying).replay(endpoint_id, _since()) == 1  # in flight: again
        # A long replay that held this back would stall every attempt to the endpoint past its lease.
        async with asyncio.timeout(5), runtime.database.tenant_session(tenant.schema) as recording:
            assert await DeliveryRepository(recording).succeeded(in_flight, 204)
    await fail_deliveries(runtime, tenant)


async def test_a_delivery_skipped_for_a_replay_that_queued_nothing_is_queued_again_at_its_commit(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await invoice_endpoint(client, tenant, hooks.url)
    await emit_event(runtime, tenant, "invoice.paid", 1)  # due: the replay skips it, and queues nothing
    services = webhook_services(runtime, FAST)
    [due] = await services.sweeper.due([(tenant.id, tenant.schema)])
    listener = delivery_listener(runtime, services)
    listening = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        await clear_jobs(runtime)  # the listener's catch-up sweep queued the delivery: as if its job ran
        async with runtime.database.tenant_session(tenant.schema) as replaying:
            assert await _service(runtime, tenant, replaying).replay(endpoint_id, _since()) == 0
            attempt = asyncio.create_task(services.deliverer.deliver(due))
            await _until(lambda: attempt.done() or hooks.received)
        assert await attempt == "skipped"
        # Not left to the next periodic sweep, a minute away.
        for _ in range(200):
            if await deliver_jobs(runtime, tenant):
                break
            await asyncio.sleep(0.025)
        assert await deliver_jobs(runtime, tenant) == [due.delivery_id]
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await clear_jobs(runtime)
        await fail_deliveries(runtime, tenant)
