"""An app's state is what ``renew_state`` gives it: the test suite keeps one app per settings and
renews its state before each test, so nothing of one test may reach the next through the app."""

from __future__ import annotations

import asyncio
from typing import cast

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from billplane.app import SERVICES_STATE_KEY, Services, create_app, renew_state
from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.options import WebhookOptions
from billplane.observability.middleware import ObservedApp
from billplane.settings import ObservabilitySettings, Settings
from tests.conftest import create_tenant
from tests.observability.conftest import scrape, value
from tests.observability.test_metrics import TENANTS
from tests.other_process import listening_client


async def test_a_renewed_app_keeps_nothing_of_its_old_state_and_serves_with_the_new(settings: Settings) -> None:
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health")).status_code == 200
    old = app.state[SERVICES_STATE_KEY]
    app.state[OPTIONS_STATE_KEY] = WebhookOptions(allow_http_loopback=True)

    renew_state(app, settings)

    new = app.state[SERVICES_STATE_KEY]
    assert new is not old
    assert (new.runtime, new.key_cache) == (app.state.runtime, app.state.key_cache)
    assert app.state.runtime is not old.runtime
    assert app.state.key_cache is not old.key_cache
    assert app.state.connection_gate is not None
    assert OPTIONS_STATE_KEY not in app.state
    # The startup hook started the new services (their listener hears its own ping) ...
    async with listening_client(app) as client:
        assert new.changes.listening
        assert (await client.get("/health")).status_code == 200
    assert not new.changes.listening  # ... and the shutdown hook stopped them


async def test_a_renewed_app_names_tenants_in_its_metrics_afresh(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    bounded = msgspec.structs.replace(settings, observability=ObservabilitySettings(metrics_tenant_labels=1))
    app = create_app(bounded)
    async with AsyncTestClient(app) as client:
        first = await create_tenant(client, admin_headers, "named")
        assert (await client.get("/v1/tenant", headers=first.headers)).status_code == 200
    renew_state(app, bounded)
    async with AsyncTestClient(app) as client:
        second = await create_tenant(client, admin_headers, "named")
        before = await scrape(client)
        assert (await client.get("/v1/tenant", headers=second.headers)).status_code == 200
        after = await scrape(client)
    # The one label the old metrics had given is the new ones' to give again, and the new
    # metrics wrap the app alone (twice wrapped, each request would count twice).
    assert value(after, TENANTS, tenant=second.slug) - value(before, TENANTS, tenant=second.slug) == 1
    assert not isinstance(cast("ObservedApp", app.asgi_handler).app, ObservedApp)


def _kept(services: Services) -> int:
    """Connections the runtime's pool keeps: none once it is disposed."""
    pool = services.runtime.database.engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedin()


async def test_stopping_closes_the_runtime_even_after_the_in_process_worker_died(settings: Settings) -> None:
    services = Services.build(settings, worker=True)
    async with services.runtime.database.engine.connect() as connection:  # a pooled connection, kept
        await connection.execute(text("SELECT 1"))
    assert _kept(services) == 1

    async def died() -> None:
        raise RuntimeError("the worker's own failure")

    assert services.in_process is not None
    services.in_process.task = asyncio.ensure_future(died())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="the worker's own failure"):
        await services.stop()
    assert _kept(services) == 0  # disposed all the same
