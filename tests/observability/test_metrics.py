"""/metrics after real requests, parsed with prometheus_client's parser: the right numbers move."""

from __future__ import annotations

import urllib.request

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from msgspec.structs import replace

from billplane.app import create_app
from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.options import WebhookOptions
from billplane.observability.metrics import exposition, webhook_delivery
from billplane.observability.worker_metrics import serve_worker_metrics
from billplane.runtime import Runtime
from billplane.settings import ObservabilitySettings, Settings
from billplane.sync.refs import OutboxRef
from tests.conftest import create_tenant
from tests.observability.conftest import parse, scrape, value
from tests.platform.events.helpers import drain as drain_webhooks
from tests.platform.events.receiver import receiver
from tests.platform.sync_fakes import FAST, AccountRow, FakeState, StaticAccounts, clear_jobs, drain

Client = AsyncTestClient[Litestar]
DURATION = "billplane_http_request_duration_seconds_count"
TENANTS = "billplane_tenant_requests_total"


async def test_request_latency_is_counted_by_route_template_method_and_status(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "metrics")
    customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
    route = "/v1/customers/{customer_id}"
    before = await scrape(client)

    for _ in range(3):
        assert (await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)).status_code == 200
    assert (await client.get("/v1/customers/999999", headers=tenant.headers)).status_code == 404
    for path in ("/nothing/here/1", "/nothing/here/2"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(DURATION, route=route, method="GET", status="200") == 3
    assert delta(DURATION, route=route, method="GET", status="404") == 1
    assert delta(DURATION, route="_unmatched", method="GET", status="404") == 2  # one label for any path
    assert not any("/nothing" in str(labels) for _, labels in after)
    assert (
        delta("billplane_http_request_duration_seconds_bucket", route=route, method="GET", status="200", le="+Inf") == 3
    )
    assert delta(TENANTS, tenant=tenant.slug) == 4


async def test_tenant_labels_are_bounded(settings: Settings, admin_headers: dict[str, str]) -> None:
    bounded = replace(settings, observability=ObservabilitySettings(metrics_tenant_labels=1))
    async with AsyncTestClient(create_app(bounded)) as client:
        first, second, third = [await create_tenant(client, admin_headers, "bound") for _ in range(3)]
        before = await scrape(client)
        for tenant in (first, second, third, second):
            assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200
        after = await scrape(client)
    assert value(after, TENANTS, tenant=first.slug) - value(before, TENANTS, tenant=first.slug) == 1
    assert value(after, TENANTS, tenant="_other") - value(before, TENANTS, tenant="_other") == 3
    labelled = {dict(labels).get("tenant") for name, labels in after if name == TENANTS}
    assert second.slug not in labelled
    assert third.slug not in labelled


async def test_queue_depth_and_oldest_age_are_read_at_scrape_time(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    await clear_jobs(runtime)
    tenant = await create_tenant(client, admin_headers, "queue")
    for outbox_id in (1, 2, 3):
        assert await runtime.jobs.defer(OutboxRef(tenant.id, tenant.schema, outbox_id))
    samples = await scrape(client)
    assert value(samples, "billplane_job_queue_jobs", queue="provider_sync", status="todo") == 3
    assert value(samples, "billplane_job_queue_oldest_age_seconds", queue="provider_sync") >= 0
    assert value(samples, "billplane_job_queue_scrape_ok") == 1
    await clear_jobs(runtime)
    empty = await scrape(client)
    assert value(empty, "billplane_job_queue_jobs", queue="provider_sync", status="todo") == 0


async def test_sync_failures_are_counted_by_provider(
    app: Litestar, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    from tests.platform.sync_fakes import register_fakes  # noqa: PLC0415 - the sync fakes' own set-up

    fake = FakeState()
    register_fakes(app.state.runtime.plugins, fake)
    accounts = StaticAccounts(app.state.runtime.plugins)
    app.state.runtime.accounts = runtime.accounts = accounts
    runtime.sync_options = FAST
    await clear_jobs(runtime)
    tenant = await create_tenant(client, admin_headers, "syncfail")
    accounts.add(AccountRow(id=301, tenant_id=tenant.id, tenant_schema=tenant.schema))
    before = await scrape(client)

    fake.failures = [("retryable", "try later"), ("permanent", "refused")]
    await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    await drain(runtime)

    after = await scrape(client)
    name = "billplane_provider_sync_failures_total"
    for outcome in ("retry", "failed"):
        labels = {"provider": "fake", "outcome": outcome}
        assert value(after, name, **labels) - value(before, name, **labels) == 1, outcome


async def test_webhook_delivery_outcomes_are_counted(
    app: Litestar, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    app.state[OPTIONS_STATE_KEY] = WebhookOptions(allow_http_loopback=True)
    tenant = await create_tenant(client, admin_headers, "hooks")
    before = await scrape(client)
    with receiver() as hooks:
        hooks.statuses = [500]
        # One event to deliver: the endpoint's own creation (customers' events are filtered out).
        body = {"url": hooks.url, "enabled_events": ["webhook_endpoint.*"]}
        created = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
        assert created.status_code == 201, created.text
        await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
        options = WebhookOptions(allow_http_loopback=True, retry_schedule=(0.01, 0.01), timeout_seconds=2.0)
        assert await drain_webhooks(runtime, tenant, options) == ["retry", "delivered"]
    after = await scrape(client)
    name = "billplane_webhook_deliveries_total"
    assert value(after, name, outcome="retry") - value(before, name, outcome="retry") == 1
    assert value(after, name, outcome="delivered") - value(before, name, outcome="delivered") == 1


@pytest.mark.parametrize("enabled", [True, False])
async def test_metrics_access_is_a_token_or_off(settings: Settings, *, enabled: bool) -> None:
    token = "t" * 40
    observed = ObservabilitySettings(metrics_token=token, metrics_enabled=enabled)
    async with AsyncTestClient(create_app(replace(settings, observability=observed))) as client:
        refused = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    if enabled:
        assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
        assert "billplane_http_request_duration_seconds" in allowed.text
    else:
        assert (refused.status_code, allowed.status_code) == (404, 404)


async def test_without_a_token_metrics_need_the_admin_key(settings: Settings, admin_headers: dict[str, str]) -> None:
    """Samples name tenants: never open to anyone who reaches the API port, a tenant included."""
    async with AsyncTestClient(create_app(settings)) as client:
        tenant = await create_tenant(client, admin_headers, "scraper")
        anonymous = await client.get("/metrics")
        as_tenant = await client.get("/metrics", headers={"Authorization": f"Bearer {tenant.key}"})
        as_operator = await client.get("/metrics", headers=admin_headers)
    assert (anonymous.status_code, as_tenant.status_code, as_operator.status_code) == (401, 401, 200)


def test_the_worker_serves_its_own_metrics() -> None:
    name = "billplane_webhook_deliveries_total"
    before = value(parse(exposition().decode()), name, outcome="skipped")
    webhook_delivery("skipped")  # as the worker's deliverer counts an attempt
    server = serve_worker_metrics(0, "127.0.0.1")
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            samples = parse(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, name, outcome="skipped") - before == 1
