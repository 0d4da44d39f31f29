"""The worker's listener: a committed emit that queued a delivery gets its job without waiting for the sweep."""

from __future__ import annotations

import asyncio
import contextlib

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.events.worker import delivery_listener, webhook_services
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import deliver_jobs, emit_event
from tests.platform.sync_fakes import clear_jobs


async def test_a_notified_delivery_is_queued_at_once(
    client: AsyncTestClient[Litestar], tenant: CreatedTenant, runtime: Runtime
) -> None:
    body = {"url": "http://127.0.0.1:9/h", "enabled_events": ["invoice.*"]}
    assert (await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)).status_code == 201
    await clear_jobs(runtime)
    listener = delivery_listener(runtime, webhook_services(runtime, FAST))
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        assert await deliver_jobs(runtime, tenant) == []
        await emit_event(runtime, tenant, "invoice.paid", 1)
        for _ in range(200):
            if await deliver_jobs(runtime, tenant):
                break
            await asyncio.sleep(0.025)
        assert len(await deliver_jobs(runtime, tenant)) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await clear_jobs(runtime)
