"""A burst of events larger than the per-tenant page drains through the queue alone, in order per object."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.events import worker as webhook_worker
from billplane.events.jobs import defer_missing
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import emit_event, pending
from tests.platform.events.receiver import Receiver
from tests.platform.sync_fakes import clear_jobs
from tests.platform.sync_fakes import drain as run_jobs


async def test_more_than_a_page_of_due_deliveries_drains_without_the_next_sweep(
    client: AsyncTestClient[Litestar],
    tenant: CreatedTenant,
    runtime: Runtime,
    hooks: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = replace(FAST, due_per_tenant=3)
    monkeypatch.setattr(webhook_worker, "webhook_options", lambda: options)
    await clear_jobs(runtime)
    body = {"url": hooks.url, "enabled_events": ["invoice.*"]}
    assert (await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)).status_code == 201
    for object_id in range(1, 9):
        await emit_event(runtime, tenant, "invoice.paid", object_id)
    await emit_event(runtime, tenant, "invoice.voided", 1)  # behind invoice 1's first event
    services = webhook_worker.webhook_services(runtime)
    # What one sweep (or one notification) queues: a single page.
    assert await defer_missing(runtime.jobs, await services.sweeper.due([(tenant.id, tenant.schema)])) == 3

    await run_jobs(runtime, sweep=False)  # the worker's jobs only: its periodic sweep is kept out

    assert await pending(runtime, tenant) == 0
    sent = [(json.loads(got.body)["data"]["id"], json.loads(got.body)["type"]) for got in hooks.received]
    assert sorted(sent) == sorted([(n, "invoice.paid") for n in range(1, 9)] + [(1, "invoice.voided")])
    assert sent.index((1, "invoice.paid")) < sent.index((1, "invoice.voided"))
