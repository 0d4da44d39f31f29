"""One attempt's limits: a time limit on the whole attempt, a bounded read of the answer, no
outcome recorded by an attempt that outlived its lease, and a URL httpx cannot send to is a
failed attempt rather than a crashed job."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from billplane.events.models import WebhookDelivery, WebhookEndpoint
from billplane.events.sender import Outcome, post
from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import drain, emit_event
from tests.platform.events.receiver import Received, Receiver, endless_body, trickled_headers

Client = AsyncTestClient[Litestar]
# Guards: before the limits, these attempts never ended.
GUARD = 4.0


async def _endpoint(client: Client, tenant: CreatedTenant, url: str) -> int:
    body = {"url": url, "enabled_events": ["invoice.*"]}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _delivery(runtime: Runtime, tenant: CreatedTenant) -> WebhookDelivery:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return (await session.scalars(select(WebhookDelivery))).one()


async def test_a_trickling_receiver_cannot_stretch_the_attempt(hooks: Receiver) -> None:
    # One header byte every 0.1 s: no single read ever waits 0.5 s.
    hooks.answers["/slow"] = trickled_headers
    options = replace(FAST, timeout_seconds=0.5)
    started = time.monotonic()
    outcome = await asyncio.wait_for(post(hooks.url.replace("/hooks", "/slow"), b"{}", {}, options), GUARD)
    assert outcome == Outcome(None, "timed out after 0.5 s")
    assert time.monotonic() - started < 1.5


async def test_only_an_excerpt_of_a_failed_answer_is_read(hooks: Receiver) -> None:
    hooks.answers["/endless"] = endless_body
    options = replace(FAST, timeout_seconds=3.0)
    started = time.monotonic()
    outcome = await asyncio.wait_for(post(hooks.url.replace("/hooks", "/endless"), b"{}", {}, options), GUARD)
    assert outcome.status_code == 500
    assert outcome.error == "HTTP 500: " + "é" * options.error_excerpt
    assert time.monotonic() - started < 1.5  # read at once, not until the time limit


async def test_a_slow_receiver_costs_one_counted_attempt(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    await _endpoint(client, tenant, hooks.url.replace("/hooks", "/slow"))
    hooks.answers["/slow"] = trickled_headers
    await emit_event(runtime, tenant, "invoice.paid", 1)
    services = webhook_services(runtime, replace(FAST, timeout_seconds=0.5, retry_schedule=(30.0,)))
    [ref] = await services.sweeper.due([(tenant.id, tenant.schema)])

    assert await asyncio.wait_for(services.deliverer.deliver(ref), GUARD) == "retry"

    delivery = await _delivery(runtime, tenant)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "timed out after 0.5 s")


async def test_an_attempt_that_outlived_its_lease_records_nothing(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint_id = await _endpoint(client, tenant, hooks.url)
    await emit_event(runtime, tenant, "invoice.paid", 1)
    services = webhook_services(runtime, replace(FAST, lease_seconds=0.2, timeout_seconds=5.0, retry_schedule=(30.0,)))
    [ref] = await services.sweeper.due([(tenant.id, tenant.schema)])
    arrived, release = threading.Event(), threading.Event()

    def hold_the_first(request: Received) -> None:
        del request
        if not arrived.is_set():
            arrived.set()
            release.wait(GUARD)

    hooks.before_answer = hold_the_first
    hooks.statuses = [500, 500]
    stale = asyncio.create_task(services.deliverer.deliver(ref))
    assert await asyncio.to_thread(arrived.wait, GUARD)
    await asyncio.sleep(0.3)  # the first attempt's lease ends while its receiver still holds it
    assert await services.deliverer.deliver(ref) == "retry"  # claimed again: this one holds it now
    release.set()

    assert await stale == "skipped"  # its 500 came in too late to count
    assert len(hooks.received) == 2
    delivery = await _delivery(runtime, tenant)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    async with runtime.database.tenant_session(tenant.schema) as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert endpoint.consecutive_failures == 1


# Accepted by an earlier billplane, or written by hand: each made every delivery raise.
UNSENDABLE = [
    "http://a\x01b.example.com/h",  # httpx: invalid URL
    "http://x\u200by.example.com/h",  # zero-width space: invalid IDNA
    "http://" + "a" * 64 + ".example.com/h",  # the resolver's IDNA codec: label too long
    "http://a..example.com/h",  # empty label
]


async def test_a_url_that_cannot_be_sent_to_fails_its_attempts(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    only_attempt = replace(FAST, retry_schedule=())
    for url in UNSENDABLE:  # one tenant for every URL: a tenant costs more than the attempts
        endpoint_id = await _endpoint(client, tenant, "http://127.0.0.1:9/h")
        async with runtime.database.tenant_session(tenant.schema) as session:
            await session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(url=url))
        await emit_event(runtime, tenant, "invoice.paid", endpoint_id)

        assert await drain(runtime, tenant, only_attempt) == ["disabled"], url  # counted, then disabled

        async with runtime.database.tenant_session(tenant.schema) as session:
            query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            delivery = (await session.scalars(query)).one()
        assert (delivery.status, delivery.attempts) == ("failed", 1), url
        assert delivery.last_error, url
