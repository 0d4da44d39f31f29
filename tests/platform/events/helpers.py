"""Helpers of the outbound-webhook tests: emitting events, running deliveries without a worker."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text, update

from billplane.events.emit import emit
from billplane.events.jobs import DELIVER
from billplane.events.models import WebhookDelivery
from billplane.events.options import WebhookOptions
from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from billplane.sync.listener import asyncpg_dsn
from tests.conftest import CreatedTenant


async def emit_event(runtime: Runtime, tenant: CreatedTenant, type_: str, object_id: int, **data: Any) -> None:
    object_type = type_.split(".", 1)[0]
    async with runtime.database.tenant_session(tenant.schema) as session:
        await emit(session, type_, object_type, object_id, {"id": object_id, **data})


async def fail_deliveries(runtime: Runtime, tenant: CreatedTenant) -> None:
    """Every delivery of the tenant failed: no later sweep of another test sends them."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(update(WebhookDelivery).values(status="failed"))


async def pending(runtime: Runtime, tenant: CreatedTenant) -> int:
    async with runtime.database.tenant_session(tenant.schema) as session:
        query = select(func.count()).where(WebhookDelivery.status == "pending")
        return int(await session.scalar(query.select_from(WebhookDelivery)) or 0)


async def drain(runtime: Runtime, tenant: CreatedTenant, options: WebhookOptions, *, within: float = 10.0) -> list[str]:
    """Attempt due deliveries (as the sweep finds them) until none is pending; the outcomes in order."""
    services = webhook_services(runtime, options)
    outcomes: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while await pending(runtime, tenant):
        assert loop.time() < deadline, f"deliveries still pending after {within} s: {outcomes}"
        refs = await services.sweeper.due([(tenant.id, tenant.schema)])
        outcomes += [await services.deliverer.deliver(ref) for ref in refs]
        if not refs:
            await asyncio.sleep(0.005)
    return outcomes


async def deliver_jobs(runtime: Runtime, tenant: CreatedTenant) -> list[int]:
    """The deliveries of this tenant that have a job (the catch-up sweep also queues other tests' leftovers)."""
    async with runtime.database.transaction() as connection:
        await connection.execute(text("SELECT set_config('search_path', 'billplane_jobs', true)"))
        rows = await connection.execute(
            text(
                "SELECT (args->>'delivery_id')::bigint FROM procrastinate_jobs "
                "WHERE task_name = :task AND args->>'schema' = :schema"
            ),
            {"task": DELIVER, "schema": tenant.schema},
        )
        return [int(value) for value in rows.scalars()]


async def invoice_endpoint(client: AsyncTestClient[Litestar], tenant: CreatedTenant, url: str) -> int:
    """A webhook endpoint at ``url`` taking every invoice event; its id."""
    body = {"url": url, "enabled_events": ["invoice.*"]}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


_BLOCKED_BY = "SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))"


async def blocks(runtime: Runtime, pid: int, *, within: float = 10.0) -> None:
    """Wait until a transaction waits for backend ``pid``'s locks."""
    connection = await asyncpg.connect(asyncpg_dsn(runtime.settings.database.url))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await connection.fetchval(_BLOCKED_BY, pid):
            assert loop.time() < deadline, f"nothing waited for backend {pid} within {within} s"
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
