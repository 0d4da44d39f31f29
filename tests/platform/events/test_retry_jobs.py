"""A failed delivery's retry waits for the sweep, unless it is due before the sweep comes round.

The sweep queues at most a page of one tenant's due deliveries at a time, and every finished job
tops that page up, so a burst drains at the workers' pace beside other tenants' jobs. A retry
deferred as a job of its own bypassed that bound: a burst that failed (a receiver down during a
billing run) came due again as a wave of jobs, ahead of every tenant's newer ones.
"""

from __future__ import annotations

from dataclasses import replace

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import deliver_jobs, emit_event
from tests.platform.events.receiver import Receiver

Client = AsyncTestClient[Litestar]


async def _failed_once(client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver, delay: float) -> int:
    """One delivery, failed once with a retry ``delay`` seconds later; its id."""
    body = {"url": hooks.url, "enabled_events": ["invoice.paid"]}
    assert (await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)).status_code == 201
    hooks.statuses = [500]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    services = webhook_services(runtime, replace(FAST, retry_schedule=(delay,)))
    [ref] = await services.sweeper.due([(tenant.id, tenant.schema)])
    assert await services.deliverer.deliver(ref) == "retry"
    return ref.delivery_id


async def test_a_retry_after_the_next_sweep_is_left_to_the_sweep(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    await _failed_once(client, tenant, runtime, hooks, 300.0)

    assert await deliver_jobs(runtime, tenant) == []


async def test_a_retry_due_before_the_next_sweep_has_its_own_job(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    delivery = await _failed_once(client, tenant, runtime, hooks, 5.0)

    assert await deliver_jobs(runtime, tenant) == [delivery]
